//! MeatPack decoder, as used by Prusa binary G-code (encodings 1 and 2).
//!
//! Format:
//! * `0xFF 0xFF <cmd>` is a command: `0xFB` enable packing, `0xFA` disable
//!   packing, `0xF9` reset (packing off), `0xF7` enable no-spaces mode,
//!   `0xF6` disable it; others (e.g. `0xF8` query config) are ignored.
//! * With packing off, bytes are copied through (bgcode uses this for
//!   comment lines in encoding 2, "MeatPack with comments").
//! * With packing on, each byte holds two 4-bit codes, low nibble first:
//!   `0-9 . <space> \n G X` for codes 0..=14; in no-spaces mode code 11
//!   means `E` instead of a space. Code `0xF` means "this character is
//!   sent in full": it follows as a whole byte (`0xFF` = both characters
//!   follow, first then second). A `\n` in the low nibble ends the line and
//!   the high nibble is padding.
//!
//! The encoder strips spaces from G lines, so like libbgcode's
//! `MeatPack::unbinarize`, this decoder puts a space back before each
//! parameter letter (`X Y Z E F I J R S G P W H C A`) on lines starting with
//! `G`, and drops a `\n` that directly follows another `\n`. The state
//! (packing, no-spaces, line start) starts fresh on each call.

const SIGNAL: u8 = 0xFF;
const CMD_ENABLE_PACKING: u8 = 251;
const CMD_DISABLE_PACKING: u8 = 250;
const CMD_RESET_ALL: u8 = 249;
const CMD_ENABLE_NO_SPACES: u8 = 247;
const CMD_DISABLE_NO_SPACES: u8 = 246;

const fn param_table() -> [bool; 256] {
    let mut t = [false; 256];
    let chars = b"XYZEFIJRSGPWHCA";
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    t
}
static IS_PARAM: [bool; 256] = param_table();

const CHARS_SPACE: [u8; 16] = *b"0123456789. \nGX\0";
const CHARS_NO_SPACE: [u8; 16] = *b"0123456789.E\nGX\0";

struct Decoder<'o> {
    out: &'o mut Vec<u8>,
    packing: bool,
    no_spaces: bool,
    /// Number of full-width characters still expected (0..=2).
    full_pending: u8,
    /// Packed character that must follow the next full-width character.
    held: Option<u8>,
    // Output post-processing state.
    add_space: bool,
    last: Option<u8>,
}

impl Decoder<'_> {
    #[inline]
    fn command(&mut self, cmd: u8) {
        match cmd {
            CMD_ENABLE_PACKING => self.packing = true,
            CMD_DISABLE_PACKING | CMD_RESET_ALL => self.packing = false,
            CMD_ENABLE_NO_SPACES => self.no_spaces = true,
            CMD_DISABLE_NO_SPACES => self.no_spaces = false,
            _ => {}
        }
    }

    #[inline]
    fn nibble_char(&self, n: u8) -> u8 {
        let table = if self.no_spaces {
            &CHARS_NO_SPACE
        } else {
            &CHARS_SPACE
        };
        table[usize::from(n & 0xF)]
    }

    /// Appends one decoded character, restoring spaces on G lines.
    #[inline]
    fn emit(&mut self, c: u8) {
        let mut line_start_g = false;
        if c == b'G' && matches!(self.last, None | Some(b'\n')) {
            self.add_space = true;
            line_start_g = true;
        } else if c == b'\n' {
            self.add_space = false;
        }
        if !line_start_g && self.add_space && self.last != Some(b' ') && IS_PARAM[usize::from(c)] {
            self.out.push(b' ');
            self.last = Some(b' ');
        }
        if c != b'\n' || self.last != Some(b'\n') {
            self.out.push(c);
            self.last = Some(c);
        }
    }

    #[inline]
    fn receive(&mut self, c: u8) {
        if !self.packing {
            self.emit(c);
        } else if self.full_pending > 0 {
            self.emit(c);
            if let Some(h) = self.held.take() {
                self.emit(h);
            }
            self.full_pending -= 1;
        } else {
            let (lo, hi) = (c & 0xF, c >> 4);
            if lo == 0xF {
                self.full_pending = 1;
                if hi == 0xF {
                    self.full_pending = 2;
                } else {
                    self.held = Some(self.nibble_char(hi));
                }
            } else {
                let first = self.nibble_char(lo);
                self.emit(first);
                if first != b'\n' {
                    if hi == 0xF {
                        self.full_pending = 1;
                    } else {
                        let second = self.nibble_char(hi);
                        self.emit(second);
                    }
                }
            }
        }
    }
}

/// Decodes one MeatPack-encoded G-code block and appends the text to `out`.
/// Never fails: every byte sequence decodes to something.
pub fn decode_into(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len().saturating_mul(2));
    let mut d = Decoder {
        out,
        packing: false,
        no_spaces: false,
        full_pending: 0,
        held: None,
        add_space: false,
        last: None,
    };
    // Signal-byte handling mirrors the reference decoder: two 0xFF start a
    // command; a single 0xFF followed by another byte is data.
    let mut signal_seen = false;
    let mut command_next = false;
    for &b in input {
        if b == SIGNAL {
            if signal_seen {
                command_next = true;
                signal_seen = false;
            } else {
                signal_seen = true;
            }
        } else if command_next {
            d.command(b);
            command_next = false;
        } else {
            if signal_seen {
                d.receive(SIGNAL);
                signal_seen = false;
            }
            d.receive(b);
        }
    }
}

/// Convenience wrapper around [`decode_into`].
pub fn decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    decode_into(input, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: [u8; 3] = [0xFF, 0xFF, CMD_ENABLE_PACKING];
    const OFF: [u8; 3] = [0xFF, 0xFF, CMD_DISABLE_PACKING];
    const NOSP: [u8; 3] = [0xFF, 0xFF, CMD_ENABLE_NO_SPACES];
    const RESET: [u8; 3] = [0xFF, 0xFF, CMD_RESET_ALL];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn raw_bytes_pass_through_when_packing_off() {
        assert_eq!(decode(b"M104 S200\n"), b"M104 S200\n");
        assert_eq!(decode(b""), b"");
    }

    #[test]
    fn packed_pairs() {
        // "G1 X10\n": (G,1)=0x1D (' ',X)=0xEB (1,0)=0x01 (\n,pad)=0xCC
        let input = cat(&[&ON, &[0x1D, 0xEB, 0x01, 0xCC]]);
        assert_eq!(decode(&input), b"G1 X10\n");
    }

    #[test]
    fn full_width_characters() {
        // "M104 S200\n": (M,1): low=F, high=1 -> 0x1F 'M'; (0,4)=0x40;
        // (' ',S): low=B, high=F -> 0xFB 'S'; (2,0)=0x02; (0,\n)=0xC0
        let input = cat(&[&ON, &[0x1F, b'M', 0x40, 0xFB, b'S', 0x02, 0xC0]]);
        assert_eq!(decode(&input), b"M104 S200\n");
        // Both characters unpackable: 0xFF then the two bytes in order.
        let input = cat(&[&ON, &[0xFF, b'M', b'8', 0xCC]]);
        assert_eq!(decode(&input), b"M8\n");
    }

    #[test]
    fn no_spaces_mode_and_space_restoration() {
        // "G1X1E2\n" with code 11 meaning 'E': (G,1)=0x1D (X,1)=0x1E (E,2)=0x2B (\n,pad)=0xCC
        let input = cat(&[&ON, &NOSP, &[0x1D, 0x1E, 0x2B, 0xCC]]);
        assert_eq!(decode(&input), b"G1 X1 E2\n");
        // Without no-spaces mode code 11 is a literal space.
        let input = cat(&[&ON, &[0x1D, 0x1E, 0x2B, 0xCC]]);
        assert_eq!(decode(&input), b"G1 X1 2\n");
        // F is full-width; a space is restored before it, too.
        // "G1XF9\n": (G,1)=0x1D (X,F): low=E, high=F -> 0xFE 'F'; (9,\n)=0xC9
        let input = cat(&[&ON, &NOSP, &[0x1D, 0xFE, b'F', 0xC9]]);
        assert_eq!(decode(&input), b"G1 X F9\n");
    }

    #[test]
    fn comment_mode_switches_packing() {
        // Encoding 2 keeps comment lines: packing off, raw line, packing on.
        let input = cat(&[
            &ON,
            &NOSP,
            &[0x1D, 0xCC],
            &OFF,
            b";LAYER:1\n",
            &ON,
            &[0x1D, 0xCC],
            &RESET,
        ]);
        assert_eq!(decode(&input), b"G1\n;LAYER:1\nG1\n");
        // After reset the packing is off again.
        let input = cat(&[&ON, &RESET, b"ok\n"]);
        assert_eq!(decode(&input), b"ok\n");
    }

    #[test]
    fn duplicate_newlines_are_dropped() {
        assert_eq!(decode(b"a\n\n\nb\n"), b"a\nb\n");
        let input = cat(&[&ON, &[0xCC, 0xCC, 0x1D, 0xCC]]);
        assert_eq!(decode(&input), b"\nG1\n");
    }

    #[test]
    fn unknown_command_and_lone_signal_byte() {
        // 0xF8 (query config) is ignored.
        let input = cat(&[&[0xFF, 0xFF, 0xF8], b"x\n"]);
        assert_eq!(decode(&input), b"x\n");
        // A lone 0xFF with packing off is data.
        assert_eq!(decode(&[b'a', 0xFF, b'b']), vec![b'a', 0xFF, b'b']);
        // A trailing lone 0xFF is dropped.
        assert_eq!(decode(&[b'a', 0xFF]), b"a");
    }
}
