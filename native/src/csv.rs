//! The fast path for numeric CSV logs (`sensors.csv`, Prunt's `motion.csv`): rows of plain
//! comma-separated numbers into one `f64` column each. It only accepts what it can read exactly;
//! anything else (quotes, empty cells, words, a row of the wrong width, a blank line) returns
//! `None`, and the caller reads the file with a general CSV reader that names the problem.

use crate::gcode::number::scan;

/// The columns of `text` after its first `skip_lines` lines: each line is `prefix` (e.g.
/// `DATA OUTPUT,`, or empty) and then exactly `ncols` numbers separated by commas, ended by `\n`
/// or `\r\n` (the last line may lack it). Numbers are decimal with an optional sign, point and
/// exponent, rounded exactly; `nan`, `inf` and empty cells are not plain.
pub fn numeric_columns(text: &[u8], skip_lines: usize, ncols: usize, prefix: &[u8]) -> Option<Vec<Vec<f64>>> {
    if ncols == 0 {
        return None;
    }
    let mut at = 0;
    for _ in 0..skip_lines {
        at = memchr::memchr(b'\n', &text[at..]).map(|i| at + i + 1)?;
    }
    let body = &text[at..];
    // Rows estimated from the first line's length, so the columns rarely grow.
    let first = memchr::memchr(b'\n', body).unwrap_or(body.len()).max(1);
    let mut cols: Vec<Vec<f64>> = (0..ncols).map(|_| Vec::with_capacity(body.len() / first + 1)).collect();
    for line in Lines(body) {
        let mut rest = line.strip_suffix(b"\r").unwrap_or(line).strip_prefix(prefix)?;
        for (c, col) in cols.iter_mut().enumerate() {
            let (value, used) = field(rest)?;
            col.push(value);
            rest = &rest[used..];
            if c + 1 < ncols {
                rest = rest.strip_prefix(b",")?;
            }
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(cols)
}

/// Lines of `text`; a final `\n` does not start an empty line.
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', self.0).unwrap_or(self.0.len());
        let line = &self.0[..end];
        self.0 = &self.0[(end + 1).min(self.0.len())..];
        Some(line)
    }
}

/// One number at the start of `s` (up to the next comma or the end): value and bytes used.
#[inline]
fn field(s: &[u8]) -> Option<(f64, usize)> {
    match scan(s) {
        // The scanner stops at the first byte that is not part of a decimal: the cell must end
        // there. A digit string too long for a double is infinite: not plain (found by fuzzing).
        Some((v, n)) if s.get(n).is_none_or(|&b| b == b',') => v.is_finite().then_some((v, n)),
        // An exponent (`1e-05`, as writers print small values): the standard library's exact
        // parser, for the rare cell; it also rejects words such as `nan` and `inf`.
        Some((_, n)) if matches!(s.get(n), Some(b'e' | b'E')) => {
            let end = memchr::memchr(b',', s).unwrap_or(s.len());
            let v: f64 = std::str::from_utf8(&s[..end]).ok()?.parse().ok()?;
            v.is_finite().then_some((v, end))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rows_become_columns() {
        let text = b"t,a\n0,1.5\n0.02,-2\r\n0.04,+3e-2\n";
        let cols = numeric_columns(text, 1, 2, b"").unwrap();
        assert_eq!(cols, vec![vec![0.0, 0.02, 0.04], vec![1.5, -2.0, 0.03]]);
        let last_without_newline = numeric_columns(b"1,2\n3,4", 0, 2, b"").unwrap();
        assert_eq!(last_without_newline, vec![vec![1.0, 3.0], vec![2.0, 4.0]]);
    }

    #[test]
    fn a_prefix_is_required_on_every_line() {
        let text = b"DATA OUTPUT,1,2,3,4\nDATA OUTPUT,5,6,7,8\n";
        let cols = numeric_columns(text, 0, 4, b"DATA OUTPUT,").unwrap();
        assert_eq!(cols[3], vec![4.0, 8.0]);
        assert!(numeric_columns(b"DATA OUTPUT,1,2,3,4\nSTEP,1\n", 0, 4, b"DATA OUTPUT,").is_none());
    }

    #[test]
    fn anything_not_plain_is_left_to_the_general_reader() {
        for text in [
            &b"1,\n"[..],           // empty cell
            b"1,2,3\n",             // too wide
            b"1\n",                 // too narrow
            b"1,x\n",               // a word
            b"1,nan\n",             // NaN spelled out
            b"1,inf\n",             // infinity
            b"1,\"2\"\n",           // quotes
            b"1,2\n\n3,4\n",        // a blank line
            b"1, 2\n",              // a space
            b"1,1e400\n",           // overflow
            b"1,2e\n",              // a broken exponent
        ] {
            assert!(numeric_columns(text, 0, 2, b"").is_none(), "{:?}", std::str::from_utf8(text));
        }
        let huge = format!("1,1{}\n", "0".repeat(400)); // no exponent, yet past f64::MAX
        assert!(numeric_columns(huge.as_bytes(), 0, 2, b"").is_none(), "{huge}");
        assert!(numeric_columns(b"header only\n", 1, 2, b"").unwrap()[0].is_empty());
        assert!(numeric_columns(b"no newline", 1, 2, b"").is_none());
    }

    #[test]
    fn values_are_exactly_rounded() {
        let cells = ["209.93339700000001", "0.1", "-123456.789012345678901", "5e-324", "1.7976931348623157e308"];
        let text: String = cells.iter().map(|c| format!("{c}\n")).collect();
        let cols = numeric_columns(text.as_bytes(), 0, 1, b"").unwrap();
        let want: Vec<f64> = cells.iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(cols[0], want);
    }
}
