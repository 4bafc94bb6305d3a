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
    let (neg, mut i) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    // Up to 19 digits fit a u64 exactly; longer numbers wrap here and take the slow path.
    let (mut mantissa, n) = digit_run(s, i, 0);
    i += n;
    let mut digits = n;
    let mut frac_digits = 0;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        let (m, n) = digit_run(s, i, mantissa);
        mantissa = m;
        i += n;
        frac_digits = n;
        digits += n;
    }
    if digits == 0 {
        return None;
    }
    // Clinger's fast path: both operands exact, so one IEEE division rounds correctly.
    if digits <= 19 && mantissa < (1u64 << 53) && frac_digits < POW10.len() {
        let v = mantissa as f64 / POW10[frac_digits];
        return Some((if neg { -v } else { v }, i));
    }
    slow(&s[..i]).map(|v| (v, i))
}

/// Appends the run of digits at `s[i..]` to `acc` (wrapping past 19 digits); returns the new
/// value and the run's length. Eight bytes are classified and converted at once (SWAR).
#[inline(always)]
fn digit_run(s: &[u8], mut i: usize, mut acc: u64) -> (u64, usize) {
    let start = i;
    while let Some(chunk) = s.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes")).wrapping_sub(0x3030_3030_3030_3030);
        // High bit of each byte set where the byte is not '0'..='9' (a borrow or carry only
        // reaches bytes after the first non-digit, which are not used).
        let non_digit = (x | x.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
        let n = (non_digit.trailing_zeros() / 8) as usize;
        if n == 0 {
            return (acc, i - start);
        }
        let value = eight_digits(if n == 8 { x } else { x << (64 - 8 * n) });
        acc = acc.wrapping_mul(POW10_U64[n]).wrapping_add(value);
        i += n;
        if n < 8 {
            return (acc, i - start);
        }
    }
    while i < s.len() {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        acc = acc.wrapping_mul(10).wrapping_add(d as u64);
        i += 1;
    }
    (acc, i - start)
}

const POW10_U64: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Eight digit values (0..=9, first digit in the lowest byte) to their number.
#[inline(always)]
fn eight_digits(x: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    ((x & MASK).wrapping_mul(MUL1).wrapping_add(((x >> 16) & MASK).wrapping_mul(MUL2))) >> 32
}

/// The common number (`-12.345`, `.5`, `7`): an optional `-` and at most seven digits and a
/// point, classified with one eight-byte load (longer ones take one load per digit run). None
/// when `s[i..]` is not such a number or `s` ends too soon for the loads (then `scan` reads it).
/// Values and lengths equal `scan`'s wherever this gives one.
#[inline(always)]
pub fn scan_short(s: &[u8], i: usize) -> Option<(f64, usize)> {
    let neg = *s.get(i)? == b'-';
    let j = i + neg as usize;
    let chunk: [u8; 8] = s.get(j..j + 8)?.try_into().expect("8 bytes");
    let raw = u64::from_le_bytes(chunk);
    // XOR turns digits into their values (no borrows, unlike a subtraction, so the bytes after
    // the point are read right). A byte is no digit when its value is over 9: the add sets its
    // high bit, or it was set already. Only a byte of 0x8A or more carries into the next
    // byte's test, and such a byte is no digit and not the point, so the number ends at it or
    // before: the bytes that a carry can reach are not used.
    let x = raw ^ 0x3030_3030_3030_3030;
    let non_digit = (x.wrapping_add(0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080;
    if non_digit == 0 {
        return None; // eight digits or more
    }
    let point = (non_digit.trailing_zeros() / 8) as usize;
    // The byte at `point` taken from the register, not from a copy of the chunk in memory.
    let (mantissa, frac, len) = if (raw >> (8 * point)) as u8 != b'.' {
        if point == 0 {
            return None;
        }
        (eight_digits(x << (64 - 8 * point)), 0, point)
    } else {
        // The first non-digit after the point ends the number.
        // Two shifts, each under 64 (point < 8): all ones above the point's byte.
        let after = non_digit & ((u64::MAX << (8 * point)) << 8);
        if after == 0 {
            return scan_runs(s, j, point).map(|(v, n)| (if neg { -v } else { v }, n + neg as usize));
        }
        let end = (after.trailing_zeros() / 8) as usize;
        let digits = end - 1;
        if digits == 0 {
            return None;
        }
        // Close the gap the point leaves: bytes after it move down by one.
        let below = (1u64 << (8 * point)) - 1;
        let joined = (x & below) | ((x >> 8) & !below);
        (eight_digits(joined << (64 - 8 * digits)), digits - point, end)
    };
    // At most 14 digits: exact in a double, so one division rounds correctly (as in `scan`).
    // Through i64, which converts in one instruction (u64 needs a sign test on x86-64); at
    // most seven fraction digits.
    let v = mantissa as i64 as f64 / POW10[frac & 7];
    Some((if neg { -v } else { v }, len + neg as usize))
}

/// `int.frac` at `s[j..]` with the point at `j + point` and a fraction running past the first
/// eight bytes: one load per run, each under eight digits.
#[inline(never)]
fn scan_runs(s: &[u8], j: usize, point: usize) -> Option<(f64, usize)> {
    let (int, n) = run8(s, j)?;
    debug_assert_eq!(n, point);
    let (f, k) = run8(s, j + n + 1)?;
    let v = (int * POW10_U64[k] + f) as f64 / POW10[k];
    Some((v, n + 1 + k))
}

/// The digits at `s[i..]` (fewer than eight) and their count; None for eight or more, or when
/// `s` ends within eight bytes.
#[inline(always)]
pub fn run8(s: &[u8], i: usize) -> Option<(u64, usize)> {
    let chunk: [u8; 8] = s.get(i..i + 8)?.try_into().expect("8 bytes");
    let x = u64::from_le_bytes(chunk).wrapping_sub(0x3030_3030_3030_3030);
    let non_digit = (x | x.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
    if non_digit == 0 {
        return None;
    }
    let n = (non_digit.trailing_zeros() / 8) as usize;
    // The digits moved to the top bytes, zeros below them; two shifts, each under 64, so that
    // no digits at all (a shift by 64) give zero.
    Some((eight_digits((x << (63 - 8 * n)) << 1), n))
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
        while x < 1_000_000_000 {
            let t = format!("{}.{:05}", x / 100_000, x % 100_000);
            assert_eq!(scan(t.as_bytes()).unwrap().0, reference(&t), "{t}");
            x += 99_991;
        }
    }

    #[test]
    fn digit_runs_of_every_length_and_position() {
        for len in 0..24 {
            for pad in 0..10 {
                let digits: String = (0..len).map(|k| char::from(b'0' + ((k * 7 + 3) % 10) as u8)).collect();
                let text = format!("{digits}x{}", "9".repeat(pad));
                let (v, n) = digit_run(text.as_bytes(), 0, 0);
                assert_eq!(n, len, "{text}");
                if len <= 19 {
                    assert_eq!(v, digits.parse::<u64>().unwrap_or(0), "{text}");
                }
            }
        }
    }

    #[test]
    fn short_numbers_equal_scan() {
        let mut forms = vec![String::new()];
        for _ in 0..9 {
            let mut next = Vec::new();
            for f in &forms {
                for c in ["1", "7", "0", "9", "."] {
                    next.push(format!("{f}{c}"));
                }
            }
            forms.extend(next.into_iter().filter(|f| f.len() <= 9));
            forms.sort();
            forms.dedup();
        }
        let mut checked = 0;
        for f in &forms {
            for sign in ["", "-"] {
                // Tails next to the digits' byte range, and bytes whose low seven bits are digits.
                for tail in ["", " ", "\n", "X1", ";", ".5", "/", ":", "\u{b0}", "\u{b9}1"] {
                    let t = format!("{sign}{f}{tail}          ");
                    if let Some((v, n)) = scan_short(t.as_bytes(), 0) {
                        let (w, m) = scan(t.as_bytes()).expect("scan reads what scan_short reads");
                        assert_eq!((v.to_bits(), n), (w.to_bits(), m), "{t:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn uint() {
        assert_eq!(scan_uint(b"123*"), Some((123, 3)));
        assert_eq!(scan_uint(b"x"), None);
        assert_eq!(scan_uint(b"99999999999999999999999").unwrap().0, u64::MAX);
    }
}
