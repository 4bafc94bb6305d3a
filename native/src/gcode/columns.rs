//! Column buffers in Arrow's memory layout, so the binding layer hands them over without copying.

/// A validity (or boolean) bitmap, least significant bit first, as Arrow lays it out.
#[derive(Debug, Clone, Default)]
pub struct Bitmap {
    pub bytes: Vec<u8>,
    pub len: usize,
}

impl Bitmap {
    pub fn zeros(len: usize) -> Self {
        Bitmap { bytes: vec![0; len.div_ceil(8)], len }
    }
    #[inline(always)]
    pub fn set(&mut self, i: usize) {
        self.bytes[i >> 3] |= 1u8 << (i & 7);
    }
    /// Number of bits set (counted, not tracked: setting stays one instruction).
    pub fn count(&self) -> usize {
        recount(&self.bytes, self.len)
    }
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.bytes[i >> 3] & (1 << (i & 7)) != 0
    }
    /// Sets bits `start..end`, whole bytes at a time.
    pub fn set_range(&mut self, start: usize, end: usize) {
        if start >= end {
            return;
        }
        let (first, last) = (start >> 3, (end - 1) >> 3);
        let bytes = &mut self.bytes[first..=last];
        let head = 0xFFu8 << (start & 7);
        let tail = 0xFFu8 >> (7 - ((end - 1) & 7));
        if first == last {
            bytes[0] |= head & tail;
        } else {
            bytes[0] |= head;
            let n = bytes.len();
            bytes[1..n - 1].fill(0xFF);
            bytes[n - 1] |= tail;
        }
    }
    pub fn null_count(&self) -> usize {
        self.len - self.count()
    }
}

/// A nullable float64 column, sized up front; rows not written stay null.
#[derive(Debug, Clone, Default)]
pub struct F64Col {
    pub values: Vec<f64>,
    pub valid: Bitmap,
}

impl F64Col {
    /// A column whose buffers are only allocated by its first value: most words (I J K R P T,
    /// and Z in most pieces) never occur in a piece, and zeroing their memory was a fifth of
    /// the parse. `is_all_null` tells the binding layer to hand over an all-null array.
    pub fn lazy(len: usize) -> Self {
        F64Col { values: Vec::new(), valid: Bitmap { bytes: Vec::new(), len } }
    }
    pub fn is_all_null(&self) -> bool {
        self.values.len() < self.valid.len
    }
    #[inline(always)]
    pub fn put(&mut self, row: usize, v: f64) {
        if self.values.len() != self.valid.len {
            self.values = vec![0.0; self.valid.len];
            self.valid.bytes = vec![0; self.valid.len.div_ceil(8)];
        }
        self.values[row] = v;
        self.valid.set(row);
    }
    pub fn get(&self, row: usize) -> Option<f64> {
        (!self.is_all_null() && self.valid.get(row)).then(|| self.values[row])
    }
    /// An empty column to be grown with `extend`.
    pub fn with_capacity(len: usize) -> Self {
        F64Col { values: Vec::with_capacity(len), valid: Bitmap::zeros(len) }
    }
    /// Appends `n` rows of `v`; NaN appends nulls.
    pub fn extend(&mut self, n: usize, v: f64) {
        let start = self.values.len();
        if v.is_nan() {
            self.values.extend(std::iter::repeat_n(0.0, n));
        } else {
            self.values.extend(std::iter::repeat_n(v, n));
            self.valid.set_range(start, start + n);
        }
    }
    pub fn truncate(&mut self, len: usize) {
        self.values.truncate(len);
        self.valid.bytes.truncate(len.div_ceil(8));
        self.valid.len = len;
    }
}

/// A nullable int32 column (dictionary indices, layer numbers), grown a run at a time; -1 is
/// stored under null rows.
#[derive(Debug, Clone, Default)]
pub struct IdCol {
    pub values: Vec<i32>,
    pub valid: Bitmap,
}

impl IdCol {
    pub fn with_capacity(len: usize) -> Self {
        IdCol { values: Vec::with_capacity(len), valid: Bitmap::zeros(len) }
    }
    /// Appends `n` rows of `v` (negative: null).
    pub fn extend(&mut self, n: usize, v: i32) {
        let start = self.values.len();
        self.values.extend(std::iter::repeat_n(v, n));
        if v >= 0 {
            self.valid.set_range(start, start + n);
        }
    }
}

/// A nullable UTF-8 column with int32 offsets, closed only at rows that have a value: most rows
/// of sliced G-code have no text, parameters or comment, and a per-row offset push was a fixed
/// cost of every line. Offsets of the rows in between are filled when the next value is closed
/// (a run at a time), and by `finish`; a column that never got a value keeps no offsets at all
/// (the binding hands over zeros).
#[derive(Debug, Clone)]
pub struct StrCol {
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
    pub valid: Bitmap,
}

impl StrCol {
    pub fn with_rows(rows: usize) -> Self {
        StrCol { offsets: Vec::new(), data: Vec::new(), valid: Bitmap::zeros(rows) }
    }
    /// Makes `row` the bytes appended to `data` since the previous value ended (rows must be
    /// closed in order); rows never closed are null.
    #[inline(always)]
    pub fn close_row(&mut self, row: usize) {
        if self.offsets.len() != row + 1 {
            fill_offsets(&mut self.offsets, self.valid.len, row);
        }
        self.valid.set(row);
        self.offsets.push(self.data.len() as i32);
    }
    /// Completes the offsets of every row, unless no row has a value (then `offsets` stays empty).
    pub fn finish(&mut self) {
        if !self.offsets.is_empty() {
            fill_offsets(&mut self.offsets, self.valid.len, self.valid.len);
        }
    }
    pub fn is_all_null(&self) -> bool {
        self.offsets.is_empty()
    }
    pub fn row(&self, row: usize) -> Option<&[u8]> {
        if !self.valid.get(row) {
            return None;
        }
        Some(&self.data[self.offsets[row] as usize..self.offsets[row + 1] as usize])
    }
}

/// Offsets of rows before `row` that have no value (of `rows` in all): empty, ending where the
/// last value ended; an untouched `offsets` first gets its leading zero and all its capacity.
pub fn fill_offsets(offsets: &mut Vec<i32>, rows: usize, row: usize) {
    if offsets.is_empty() {
        offsets.reserve_exact(rows + 1);
        offsets.push(0);
    }
    let end = *offsets.last().expect("pushed above");
    offsets.resize(row + 1, end);
}

fn recount(bytes: &[u8], len: usize) -> usize {
    if bytes.is_empty() {
        return 0; // a lazy column that never got a value
    }
    let full = len / 8;
    // Eight bytes at a time: without a POPCNT instruction (the baseline x86-64 target) each
    // count is a dozen instructions, so counting bytes one by one cost 8x more.
    let (words, rest) = bytes[..full].as_chunks::<8>();
    let mut n: usize = words.iter().map(|w| u64::from_le_bytes(*w).count_ones() as usize).sum();
    n += rest.iter().map(|b| b.count_ones() as usize).sum::<usize>();
    if !len.is_multiple_of(8) {
        n += (bytes[full] & ((1u8 << (len % 8)) - 1)).count_ones() as usize;
    }
    n
}

/// Appends `s` to `out` as valid UTF-8, replacing invalid sequences with U+FFFD.
/// Returns false when a replacement was needed.
#[inline]
pub fn push_utf8(out: &mut Vec<u8>, s: &[u8]) -> bool {
    if s.is_ascii() {
        out.extend_from_slice(s);
        return true;
    }
    match std::str::from_utf8(s) {
        Ok(_) => {
            out.extend_from_slice(s);
            true
        }
        Err(_) => {
            out.extend_from_slice(String::from_utf8_lossy(s).as_bytes());
            false
        }
    }
}

/// Appends `s[start..end]` when it is at most 16 ASCII bytes and `s` has 16 bytes from `start`:
/// one load, one check and one store instead of a UTF-8 check and a `memcpy` (verbose slicers
/// comment nearly every move, `; perimeter`). Returns false, appending nothing, otherwise.
#[inline(always)]
pub fn push_short_ascii(out: &mut Vec<u8>, s: &[u8], start: usize, end: usize) -> bool {
    let n = end - start;
    if n > 16 {
        return false;
    }
    let Some(chunk) = s.get(start..start + 16) else { return false };
    let chunk: [u8; 16] = chunk.try_into().expect("16 bytes");
    let kept = u128::MAX.checked_shr(128 - 8 * n as u32).unwrap_or(0);
    if u128::from_le_bytes(chunk) & kept & (u128::MAX / 255 * 0x80) != 0 {
        return false;
    }
    out.reserve(16);
    let len = out.len();
    for (slot, &b) in out.spare_capacity_mut()[..16].iter_mut().zip(&chunk) {
        slot.write(b);
    }
    // SAFETY: the first n <= 16 spare bytes were just written (reserve made room for 16).
    unsafe { out.set_len(len + n) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_counts_and_truncates() {
        let mut c = F64Col::lazy(20);
        assert!(c.is_all_null() && c.get(3).is_none() && c.valid.count() == 0);
        c.put(0, 1.0);
        assert!(!c.is_all_null());
        c.put(9, 2.0);
        c.put(17, 3.0);
        assert_eq!(c.valid.count(), 3);
        c.truncate(10);
        assert_eq!(c.valid.count(), 2);
        assert_eq!(c.get(9), Some(2.0));
        assert_eq!(c.get(5), None);
    }

    #[test]
    fn count_equals_bit_by_bit() {
        for len in 0..200 {
            let mut b = Bitmap::zeros(len);
            for i in (0..len).filter(|i| (i * 7 + len) % 3 != 0) {
                b.set(i);
            }
            let bits = (0..len).filter(|&i| b.get(i)).count();
            assert_eq!(b.count(), bits, "len {len}");
            assert_eq!(b.null_count(), len - bits, "len {len}");
        }
    }

    #[test]
    fn set_range_matches_bitwise_sets() {
        for len in [1usize, 7, 8, 9, 17, 64, 100] {
            for a in 0..len {
                for b in a..=len {
                    let mut fast = Bitmap::zeros(len);
                    let mut slow = Bitmap::zeros(len);
                    fast.set(0);
                    slow.set(0);
                    fast.set_range(a, b);
                    (a..b).for_each(|i| slow.set(i));
                    assert_eq!(fast.bytes, slow.bytes);
                    assert_eq!(fast.count(), slow.count(), "{len} {a} {b}");
                }
            }
        }
    }

    #[test]
    fn id_columns_mark_non_negative_runs() {
        let mut c = IdCol::with_capacity(21);
        for (n, v) in [(3, -1), (5, 2), (9, -1), (4, 0)] {
            c.extend(n, v);
        }
        assert_eq!(c.values.len(), 21);
        for (i, v) in c.values.iter().enumerate() {
            assert_eq!(c.valid.get(i), *v >= 0, "{i}");
        }
    }

    #[test]
    fn short_ascii_equals_push() {
        let texts: [&[u8]; 8] = [b"perimeter", b"", b"a b", b"0123456789abcdef", b"0123456789abcdefg", b"caf\xc3\xa9", b"x\x80", b"\x80"];
        for t in texts {
            let mut s = t.to_vec();
            s.extend_from_slice(&[b'#'; 20]);
            let mut fast = b"ab".to_vec();
            let took = push_short_ascii(&mut fast, &s, 0, t.len());
            assert_eq!(took, t.len() <= 16 && t.is_ascii(), "{t:?}");
            if took {
                assert_eq!(&fast[2..], t, "{t:?}");
            } else {
                assert_eq!(fast, b"ab", "{t:?}");
            }
        }
        // Too close to the end of `s` for the load: declined.
        assert!(!push_short_ascii(&mut Vec::new(), b"; abc", 2, 5));
    }

    #[test]
    fn utf8_is_repaired() {
        let mut out = Vec::new();
        assert!(!push_utf8(&mut out, b"a\xffb"));
        assert_eq!(std::str::from_utf8(&out).unwrap(), "a\u{fffd}b");
    }
}
