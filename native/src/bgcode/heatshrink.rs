//! Heatshrink (LZSS) decoder.
//!
//! Bit stream format (bits are read most-significant-bit first from each byte):
//! * tag bit `1`: a literal; the next 8 bits are the byte to output.
//! * tag bit `0`: a back-reference; the next `window_bits` bits hold
//!   `distance - 1`, then `lookahead_bits` bits hold `length - 1`.
//!   The copy may overlap the bytes it produces.
//!
//! The decoder's window starts out filled with zeros, so a back-reference
//! reaching before the start of the output yields `0` bytes. The stream is
//! padded with zero bits up to a byte boundary; an incomplete trailing token
//! is padding and is ignored.
//!
//! Prusa binary G-code uses `(window_bits, lookahead_bits)` = `(11, 4)` and
//! `(12, 4)`.

/// Errors from [`decode_into`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeatshrinkError {
    /// Window/lookahead sizes outside what heatshrink allows
    /// (4 <= window <= 15, 3 <= lookahead < window).
    #[error(
        "invalid heatshrink parameters: window {window_bits} bits, lookahead {lookahead_bits} bits"
    )]
    BadParams { window_bits: u8, lookahead_bits: u8 },
    /// The stream decodes to more than the allowed number of bytes.
    #[error("heatshrink output exceeds the limit of {limit} bytes (input byte {input_offset})")]
    OutputLimit { limit: usize, input_offset: usize },
}

/// Most bytes that `input_len` bytes of heatshrink data can decode to.
pub fn max_output_len(input_len: usize, window_bits: u8, lookahead_bits: u8) -> usize {
    // The most expansive token is a back-reference: 1 + W + L bits for 2^L bytes.
    let bits_per_token = 1 + window_bits as usize + lookahead_bits as usize;
    let tokens = input_len.saturating_mul(8) / bits_per_token.max(1);
    tokens.saturating_mul(1usize << lookahead_bits.min(15))
}

/// MSB-first bit reader over a byte slice, buffered in a `u64`.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            buf: 0,
            nbits: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        while self.nbits <= 56 {
            match self.data.get(self.pos) {
                Some(&b) => {
                    self.buf |= u64::from(b) << (56 - self.nbits);
                    self.nbits += 8;
                    self.pos += 1;
                }
                None => break,
            }
        }
    }

    /// Reads `n` bits (1..=16). `None` when fewer than `n` bits are left.
    #[inline]
    fn read(&mut self, n: u32) -> Option<u32> {
        debug_assert!((1..=16).contains(&n));
        if self.nbits < n {
            self.refill();
            if self.nbits < n {
                return None;
            }
        }
        let v = (self.buf >> (64 - n)) as u32;
        self.buf <<= n;
        self.nbits -= n;
        Some(v)
    }

    /// Byte offset of the next unread bit (for error messages).
    fn byte_offset(&self) -> usize {
        self.pos - (self.nbits as usize / 8)
    }
}

/// Decodes `input` and appends the result to `out`, producing at most `limit`
/// bytes. Returns the number of bytes appended. Back-references only see
/// bytes appended by this call (plus the zero-filled initial window).
pub fn decode_into(
    input: &[u8],
    window_bits: u8,
    lookahead_bits: u8,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<usize, HeatshrinkError> {
    if !(4..=15).contains(&window_bits) || lookahead_bits < 3 || lookahead_bits >= window_bits {
        return Err(HeatshrinkError::BadParams {
            window_bits,
            lookahead_bits,
        });
    }
    let base = out.len();
    out.reserve(limit.min(max_output_len(input.len(), window_bits, lookahead_bits)));
    let (w, l) = (u32::from(window_bits), u32::from(lookahead_bits));
    let mut br = BitReader::new(input);
    while let Some(tag) = br.read(1) {
        let produced = out.len() - base;
        if tag == 1 {
            let Some(byte) = br.read(8) else { break };
            if produced >= limit {
                return Err(HeatshrinkError::OutputLimit {
                    limit,
                    input_offset: br.byte_offset(),
                });
            }
            out.push(byte as u8);
        } else {
            let Some(index) = br.read(w) else { break };
            let Some(count) = br.read(l) else { break };
            let dist = index as usize + 1;
            let len = count as usize + 1;
            if len > limit - produced {
                return Err(HeatshrinkError::OutputLimit {
                    limit,
                    input_offset: br.byte_offset(),
                });
            }
            copy_backref(out, base, dist, len);
        }
    }
    Ok(out.len() - base)
}

/// Appends `len` bytes copied from `dist` bytes back (overlap allowed).
#[inline]
fn copy_backref(out: &mut Vec<u8>, base: usize, dist: usize, len: usize) {
    let produced = out.len() - base;
    if dist <= produced {
        let start = out.len() - dist;
        if dist >= len {
            out.extend_from_within(start..start + len);
        } else {
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    } else {
        // Reaches into the zero-filled initial window.
        for _ in 0..len {
            let produced = out.len() - base;
            let b = if dist <= produced {
                out[out.len() - dist]
            } else {
                0
            };
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test helper: builds a heatshrink stream token by token.
    struct BitWriter {
        bytes: Vec<u8>,
        nbits: usize,
    }
    impl BitWriter {
        fn new() -> Self {
            BitWriter {
                bytes: Vec::new(),
                nbits: 0,
            }
        }
        fn bits(&mut self, value: u32, n: u32) {
            for i in (0..n).rev() {
                if self.nbits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                if (value >> i) & 1 == 1 {
                    *self.bytes.last_mut().unwrap() |= 0x80 >> (self.nbits % 8);
                }
                self.nbits += 1;
            }
        }
        fn literal(&mut self, b: u8) {
            self.bits(1, 1);
            self.bits(u32::from(b), 8);
        }
        fn backref(&mut self, w: u32, l: u32, dist: u32, len: u32) {
            self.bits(0, 1);
            self.bits(dist - 1, w);
            self.bits(len - 1, l);
        }
    }

    fn dec(input: &[u8], w: u8, l: u8) -> Vec<u8> {
        let mut out = Vec::new();
        decode_into(input, w, l, usize::MAX, &mut out).unwrap();
        out
    }

    #[test]
    fn reference_vectors_from_heatshrink_test_suite() {
        // "aaaaa", window 8, lookahead 7: literal 'a' then backref dist 1 len 4.
        assert_eq!(dec(&[0xb0, 0x80, 0x01, 0x80], 8, 7), b"aaaaa");
        // "abcdabcd", window 8, lookahead 3.
        assert_eq!(
            dec(&[0xb0, 0xd8, 0xac, 0x76, 0x40, 0x1b], 8, 3),
            b"abcdabcd"
        );
        assert_eq!(
            dec(&[0xb0, 0xd8, 0xac, 0x76, 0x40, 0x1b, 0xb2, 0x80], 8, 3),
            b"abcdabcde"
        );
    }

    #[test]
    fn hand_built_stream_11_4_and_12_4() {
        for w in [11u32, 12] {
            let mut bw = BitWriter::new();
            for &b in b"G1 X" {
                bw.literal(b);
            }
            bw.backref(w, 4, 4, 4); // "G1 X"
            bw.backref(w, 4, 1, 16); // 16 x 'X' (overlapping copy)
            bw.literal(b'\n');
            let out = dec(&bw.bytes, w as u8, 4);
            assert_eq!(out, b"G1 XG1 XXXXXXXXXXXXXXXXX\n".to_vec());
        }
    }

    #[test]
    fn backref_before_start_reads_zeros() {
        let mut bw = BitWriter::new();
        bw.literal(b'a');
        bw.backref(11, 4, 3, 4); // two bytes before start (zeros), then 'a', then 0
        assert_eq!(dec(&bw.bytes, 11, 4), vec![b'a', 0, 0, b'a', 0]);
    }

    #[test]
    fn padding_and_truncation_are_not_errors() {
        assert_eq!(dec(&[], 11, 4), b"");
        // A lone tag bit 1 with 7 bits of literal: incomplete -> ignored.
        assert_eq!(dec(&[0x80], 11, 4), b"");
        // Zero padding looks like an incomplete back-reference.
        assert_eq!(dec(&[0xb0, 0x80, 0x00], 11, 4), b"a");
    }

    #[test]
    fn limit_and_params() {
        let mut out = Vec::new();
        let r = decode_into(&[0xb0, 0x80, 0x01, 0x80], 8, 7, 3, &mut out);
        assert!(matches!(
            r,
            Err(HeatshrinkError::OutputLimit { limit: 3, .. })
        ));
        assert!(decode_into(&[], 3, 2, 10, &mut out).is_err());
        assert!(decode_into(&[], 11, 11, 10, &mut out).is_err());
        assert!(decode_into(&[], 16, 4, 10, &mut out).is_err());
    }

    #[test]
    fn appends_after_existing_bytes() {
        let mut out = b"xyz".to_vec();
        let n = decode_into(&[0xb0, 0x80, 0x01, 0x80], 8, 7, 100, &mut out).unwrap();
        assert_eq!(n, 5);
        assert_eq!(out, b"xyzaaaaa");
    }
}
