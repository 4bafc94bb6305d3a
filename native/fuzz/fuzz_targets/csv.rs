//! Arbitrary bytes through the numeric CSV fast path: it never panics, what it accepts it reads
//! exactly as the standard library reads each cell, and rows of plain decimal numbers are never
//! left to the slow path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threedpai_native::csv::numeric_columns;

/// A cell the fast path must accept: `[+-]digits[.digits]([eE][+-]digits)?`, finite.
fn plain(cell: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(cell).ok()?;
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let ok_frac = frac.is_empty() && !mantissa.contains('.') || digits(frac);
    let ok_exp = exp.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !(digits(int) && ok_frac && ok_exp) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The reference reading: every line split at commas, every cell plain.
fn reference(text: &[u8], ncols: usize) -> Option<Vec<Vec<f64>>> {
    let mut cols = vec![Vec::new(); ncols];
    if text.is_empty() {
        return Some(cols);
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let cells: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        if cells.len() != ncols {
            return None;
        }
        for (col, cell) in cols.iter_mut().zip(cells) {
            col.push(plain(cell)?);
        }
    }
    Some(cols)
}

fuzz_target!(|data: &[u8]| {
    let ncols = 1 + data.first().map_or(0, |&b| b as usize % 4);
    let text = data.get(1..).unwrap_or(b"");
    let got = numeric_columns(text, 0, ncols, b"");
    let want = reference(text, ncols);
    match (&got, &want) {
        (Some(g), Some(w)) => {
            assert_eq!(g.len(), w.len());
            for (a, b) in g.iter().zip(w) {
                assert_eq!(a.len(), b.len());
                assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{a:?} != {b:?}");
            }
        }
        (None, Some(_)) => panic!("plain rows left to the slow path"),
        (Some(g), None) => {
            // Accepted something the reference calls not plain: only other spellings of plain
            // numbers may be (e.g. ".5" or "5."); each must still be finite.
            assert!(g.iter().flatten().all(|v| v.is_finite()));
        }
        (None, None) => {}
    }
});
