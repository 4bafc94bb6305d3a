//! Decimal numbers as G-code writes them: `[+-]digits[.digits]`, no exponent.
//!
//! Firmware splits words at letters, so `X1e2` is `X1` followed by `E2`; the scanner
//! therefore stops at the first byte that is not a digit or the single decimal point.
//! Values are exactly rounded (the same float64 as `float()` gives for the same text).

/// Powers of ten that are exact in float64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// True when `b` can start a number.
#[inline(always)]
pub fn starts_number(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+'
}

/// Scans a number at the start of `s`. Returns the value and the bytes consumed, or
/// `None` when `s` does not start with at least one digit (after an optional sign and point).
#[inline]
pub fn scan(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let neg = match s.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0usize; // significant digits accumulated (leading zeros skipped)
    let mut seen_digit = false;
    let mut frac_digits = 0usize;
    let mut overflow = false;
    // Integer part.
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        seen_digit = true;
        if mantissa != 0 || d != 0 {
            if digits < 19 {
                mantissa = mantissa * 10 + d as u64;
            } else {
                overflow = true;
            }
            digits += 1;
        }
        i += 1;
    }
    let int_end = i;
    if s.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&b) = s.get(i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            seen_digit = true;
            if mantissa != 0 || d != 0 {
                if digits < 19 {
                    mantissa = mantissa * 10 + d as u64;
                } else {
                    overflow = true;
                }
                digits += 1;
            }
            if !overflow {
                frac_digits += 1;
            }
            i += 1;
        }
    }
    if !seen_digit {
        return None;
    }
    // Clinger's fast path: both operands exact, so one IEEE division rounds correctly.
    if !overflow && mantissa < (1u64 << 53) && frac_digits < POW10.len() {
        let v = mantissa as f64 / POW10[frac_digits];
        return Some((if neg { -v } else { v }, i));
    }
    let _ = int_end;
    slow(&s[..i]).map(|v| (v, i))
}

/// Exact fallback for long mantissas (std's parser is correctly rounded).
#[cold]
fn slow(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse::<f64>().ok()
}

/// Scans an unsigned integer (line numbers, checksums). Saturates instead of overflowing.
#[inline]
pub fn scan_uint(s: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.saturating_mul(10).saturating_add(d as u64);
        i += 1;
    }
    (i > 0).then_some((v, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(t: &str) -> f64 {
        t.parse::<f64>().unwrap()
    }

    #[test]
    fn forms() {
        for (t, n) in [
            ("1", 1),
            ("-1.5", 4),
            ("+2.", 3),
            (".0461", 5),
            ("-.5", 3),
            ("0.1", 3),
            ("123.456789", 10),
            ("00012", 5),
        ] {
            let (v, used) = scan(t.as_bytes()).unwrap();
            assert_eq!(used, n, "{t}");
            assert_eq!(v.to_bits(), reference(t).to_bits(), "{t}");
        }
    }

    #[test]
    fn stops_at_letters_and_second_point() {
        assert_eq!(scan(b"1e2"), Some((1.0, 1)));
        assert_eq!(scan(b"1.2.3"), Some((1.2, 3)));
        assert_eq!(scan(b"12X"), Some((12.0, 2)));
    }

    #[test]
    fn rejects_non_numbers() {
        for t in ["", "-", "+", ".", "-.", "abc", "+-1"] {
            assert_eq!(scan(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn long_mantissas_are_exactly_rounded() {
        for t in [
            "0.1000000000000000055511151231257827",
            "123456789012345678901234567890",
            "9007199254740993",
            "0.30000000000000004",
            "-0.000000000000000000000000000001",
            "179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let (v, used) = scan(t.as_bytes()).unwrap();
            assert_eq!(used, t.len());
            assert_eq!(v.to_bits(), reference(t).to_bits(), "{t}");
        }
    }

    #[test]
    fn exhaustive_small_decimals_match_std() {
        // Every value with up to 4 integer and 5 fraction digits on a stride.
        let mut x: u64 = 0;
        while x < 10_000_000_00 {
            let t = format!("{}.{:05}", x / 100_000, x % 100_000);
            assert_eq!(scan(t.as_bytes()).unwrap().0, reference(&t), "{t}");
            x += 99_991;
        }
    }

    #[test]
    fn uint() {
        assert_eq!(scan_uint(b"123*"), Some((123, 3)));
        assert_eq!(scan_uint(b"x"), None);
        assert_eq!(scan_uint(b"99999999999999999999999").unwrap().0, u64::MAX);
    }
}
