//! Line-local tokenizing of G-code text into columns.
//!
//! Everything here depends on one line only, so a file can be cut at line boundaries and the
//! pieces lexed in parallel; modal context (layers, features, objects) is resolved afterwards
//! in `context`, in file order, from the events recorded here.

use super::columns::{fill_offsets, push_short_ascii, push_utf8, Bitmap, F64Col, StrCol};
use super::dict::{CommandClass, CommandDict};
use super::number::{run8, scan, scan_short, scan_uint, starts_number};
use super::{Diagnostic, Severity};
use crate::slicer::tags::{classify, Tag};

/// The words that get a float64 column of their own, in column order.
pub const WORD_COLUMNS: [u8; 12] = *b"XYZEFIJKRPST";

/// `WORD_SLOT` of a byte that is no word letter: a bit that the plain-line loop's set of words
/// seen starts with, so one test rejects both a repeated word and a byte that is no word.
const NOT_A_WORD: u8 = 15;
const _: () = assert!(WORD_COLUMNS.len() < NOT_A_WORD as usize);

const fn word_slots() -> [u8; 256] {
    let mut t = [NOT_A_WORD; 256];
    let mut i = 0;
    while i < WORD_COLUMNS.len() {
        t[WORD_COLUMNS[i] as usize] = i as u8;
        t[WORD_COLUMNS[i].to_ascii_lowercase() as usize] = i as u8;
        i += 1;
    }
    t
}
static WORD_SLOT: [u8; 256] = word_slots();

/// `1 << WORD_SLOT[b]`: the plain-line loop's bit for byte `b`, without a shift by a variable
/// (its slot is the bit's position).
static WORD_BIT: [u16; 256] = {
    let (slots, mut t, mut b) = (word_slots(), [0u16; 256], 0);
    while b < 256 {
        t[b] = 1 << slots[b];
        b += 1;
    }
    t
};

/// A slicer tag found on a comment-only line, owned so it outlives the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    LayerChange(Option<f64>),
    LayerZ(f64),
    Height(f64),
    Width(f64),
    Feature(Vec<u8>),
    ObjectStart(Vec<u8>),
    ObjectEnd,
    ThumbnailBegin { width: u32, height: u32 },
    ThumbnailEnd,
    ConfigBegin,
    ConfigEnd,
    HeaderBegin,
    HeaderEnd,
}

impl Event {
    fn from_tag(tag: Tag<'_>) -> Event {
        match tag {
            Tag::LayerChange => Event::LayerChange(None),
            Tag::LayerChangeAt(z) => Event::LayerChange(Some(z)),
            Tag::LayerZ(z) => Event::LayerZ(z),
            Tag::Height(h) => Event::Height(h),
            Tag::Width(w) => Event::Width(w),
            Tag::Feature(f) => Event::Feature(f.to_vec()),
            Tag::ObjectStart(o) => Event::ObjectStart(o.to_vec()),
            Tag::ObjectEnd => Event::ObjectEnd,
            Tag::ThumbnailBegin { width, height, .. } => Event::ThumbnailBegin { width, height },
            Tag::ThumbnailEnd => Event::ThumbnailEnd,
            Tag::ConfigBegin => Event::ConfigBegin,
            Tag::ConfigEnd => Event::ConfigEnd,
            Tag::HeaderBegin => Event::HeaderBegin,
            Tag::HeaderEnd => Event::HeaderEnd,
        }
    }
}

/// Key/value parameters per row, as an Arrow map: `offsets` index into `keys`/`values`. Like
/// `StrCol`, offsets are only written at rows with parameters (the rows in between are filled
/// a run at a time), and stay empty while no row has any.
#[derive(Debug, Clone)]
pub struct ParamCol {
    pub offsets: Vec<i32>,
    pub keys: StrCol,
    pub values: StrCol,
    pub valid: Bitmap,
}

impl ParamCol {
    fn with_rows(rows: usize) -> Self {
        ParamCol { offsets: Vec::new(), keys: StrCol::with_rows(0), values: StrCol::with_rows(0), valid: Bitmap::zeros(rows) }
    }
    fn entries(&self) -> usize {
        self.keys.valid.len
    }
    /// Appends an entry to `row` (rows in order).
    #[inline]
    fn push(&mut self, row: usize, key: &[u8], value: &[u8]) -> bool {
        let i = self.entries();
        grow_bitmap(&mut self.keys.valid, i + 1);
        grow_bitmap(&mut self.values.valid, i + 1);
        let mut ok = push_utf8(&mut self.keys.data, key);
        self.keys.close_row(i);
        ok &= push_utf8(&mut self.values.data, value);
        self.values.close_row(i);
        if self.valid.get(row) {
            *self.offsets.last_mut().expect("the row has an entry") = i as i32 + 1;
        } else {
            fill_offsets(&mut self.offsets, self.valid.len, row);
            self.valid.set(row);
            self.offsets.push(i as i32 + 1);
        }
        ok
    }
    fn finish(&mut self) {
        if !self.offsets.is_empty() {
            fill_offsets(&mut self.offsets, self.valid.len, self.valid.len);
        }
        self.keys.finish();
        self.values.finish();
    }
    /// The parameters of `row` as (key, value) byte pairs.
    pub fn row(&self, row: usize) -> impl Iterator<Item = (&[u8], &[u8])> {
        let (a, b) = if self.valid.get(row) { (self.offsets[row] as usize, self.offsets[row + 1] as usize) } else { (0, 0) };
        (a..b).map(move |e| (self.keys.row(e).unwrap_or(b""), self.values.row(e).unwrap_or(b"")))
    }
    /// The value of `key` in `row`, if present.
    pub fn get(&self, row: usize, key: &[u8]) -> Option<&[u8]> {
        self.row(row).find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

fn grow_bitmap(b: &mut Bitmap, len: usize) {
    if b.bytes.len() * 8 < len {
        b.bytes.resize(len.div_ceil(8).max(b.bytes.len() * 2), 0);
    }
    b.len = len;
}

/// The columns of one lexed piece of a file. Context columns are filled by `context`.
#[derive(Debug)]
pub struct Lexed {
    pub first_line: u64,
    pub rows: usize,
    pub offset: Vec<i64>,
    pub command: Vec<i32>,
    pub command_valid: Bitmap,
    pub commands: CommandDict,
    /// `N` line numbers; empty until the piece has one.
    pub n: Vec<i64>,
    pub n_valid: Bitmap,
    pub checksum_ok: Bitmap,
    pub checksum_valid: Bitmap,
    pub words: Vec<F64Col>,
    pub params: ParamCol,
    pub text: StrCol,
    pub comment: StrCol,
    /// Rows whose line holds nothing but comments (where slicer tags live).
    pub comment_only: Bitmap,
    pub events: Vec<(u32, Event)>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Lexed {
    /// Every column and the diagnostics as text, for telling two lexings apart (the command
    /// index, a hash map in random order, is left out; the command names are in).
    pub fn fingerprint(&self) -> String {
        let columns = (&self.offset, &self.command, &self.command_valid, &self.n, &self.n_valid, &self.checksum_ok, &self.checksum_valid);
        let commands = (&self.commands.dict.values, &self.commands.class);
        let rest = (&self.words, &self.params, &self.text, &self.comment, &self.comment_only, &self.events, &self.diagnostics);
        format!("{:?}", (self.rows, columns, commands, rest))
    }
}

/// Number of lines in `text` (`\n`, `\r\n` and a lone `\r` each end one; a final line without
/// a terminator counts too), and whether any `\r` occurs (the line reader needs to know).
pub fn count_lines(text: &[u8]) -> (usize, bool) {
    let Some(&last) = text.last() else { return (0, false) };
    let lf = count_lf_unless_cr(text);
    let has_cr = lf.is_none();
    let mut n = if let Some(lf) = lf {
        lf
    } else {
        let mut n = 0;
        let mut prev_cr = false;
        for pos in memchr::memchr2_iter(b'\n', b'\r', text) {
            let is_lf = text[pos] == b'\n';
            if !(is_lf && prev_cr && pos > 0 && text[pos - 1] == b'\r') {
                n += 1;
            }
            prev_cr = !is_lf;
        }
        n
    };
    if last != b'\n' && last != b'\r' {
        n += 1;
    }
    (n, has_cr)
}

/// The number of `\n` in `text`, or None when it holds a `\r`: one pass over the piece where a
/// count and a search for `\r` (two `memchr` passes) read it twice.
fn count_lf_unless_cr(text: &[u8]) -> Option<usize> {
    let (blocks, tail) = text.as_chunks::<64>();
    let mut n = 0;
    // Per-byte counters of 255 blocks fit in a byte.
    for group in blocks.chunks(255) {
        n += count_lf_in_blocks(group)?;
    }
    if tail.contains(&b'\r') {
        return None;
    }
    Some(n + tail.iter().filter(|&&b| b == b'\n').count())
}

/// `count_lf_unless_cr` for at most 255 blocks.
#[cfg(target_arch = "x86_64")]
fn count_lf_in_blocks(blocks: &[[u8; 64]]) -> Option<usize> {
    use std::arch::x86_64::*;
    debug_assert!(blocks.len() <= 255);
    // SAFETY: SSE2 is part of x86_64; each load reads 16 bytes of a 64-byte block.
    unsafe {
        let (lf, cr, zero) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b'\r' as i8), _mm_setzero_si128());
        let mut counts = [zero; 4]; // a compare's -1 subtracted: +1 in the byte that matched
        let mut any_cr = zero;
        for block in blocks {
            for (k, count) in counts.iter_mut().enumerate() {
                let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast());
                *count = _mm_sub_epi8(*count, _mm_cmpeq_epi8(v, lf));
                any_cr = _mm_or_si128(any_cr, _mm_cmpeq_epi8(v, cr));
            }
        }
        if _mm_movemask_epi8(any_cr) != 0 {
            return None;
        }
        // Each byte counter into the two 64-bit halves (sum of absolute differences from 0).
        let sums = counts.iter().fold(zero, |s, &c| _mm_add_epi64(s, _mm_sad_epu8(c, zero)));
        Some((_mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums))) as usize)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn count_lf_in_blocks(blocks: &[[u8; 64]]) -> Option<usize> {
    let bytes = blocks.as_flattened();
    (!bytes.contains(&b'\r')).then(|| memchr::memchr_iter(b'\n', bytes).count())
}

/// The end of the line starting at `pos` and the start of the next (`\n`, `\r\n` or a lone
/// `\r` ends a line when `has_cr`; the last line may have no terminator).
fn next_line(text: &[u8], pos: usize, has_cr: bool) -> (usize, usize) {
    let rest = &text[pos..];
    let found = if has_cr { memchr::memchr2(b'\n', b'\r', rest) } else { memchr::memchr(b'\n', rest) };
    match found {
        Some(k) => {
            let crlf = rest[k] == b'\r' && rest.get(k + 1) == Some(&b'\n');
            (pos + k, pos + k + 1 + crlf as usize)
        }
        None => (text.len(), text.len()),
    }
}

/// Bytes the plain-line path loads at once: a line must end within the first `LINE_WINDOW`,
/// and the rest lets a number's eight-byte load run past the line's end.
const LINE_WINDOW: usize = 64;
const WINDOW: usize = LINE_WINDOW + 16;

/// The end of the line that starts window `w` and the start of the next, when the line ends
/// within `LINE_WINDOW - 1` bytes (line ends as in `next_line`). Worked out from the masks
/// alone: reading `w[end]` back let the compiler rebuild every compared byte as a boolean.
#[inline(always)]
fn window_line(w: &[u8; WINDOW], has_cr: bool) -> Option<(usize, usize)> {
    let (a, b) = (w[..32].try_into().expect("32"), w[32..64].try_into().expect("32"));
    let lf = byte_mask32(a, b'\n') as u64 | (byte_mask32(b, b'\n') as u64) << 32;
    let cr = if has_cr { byte_mask32(a, b'\r') as u64 | (byte_mask32(b, b'\r') as u64) << 32 } else { 0 };
    // The last byte is left out so that a `\r` ending the line has its next byte in the masks.
    let ends = (lf | cr) & (u64::MAX >> 1);
    if ends == 0 {
        return None;
    }
    let end = ends.trailing_zeros() as usize;
    let crlf = (cr >> end) & (lf >> (end + 1)) & 1;
    Some((end, end + 1 + crlf as usize))
}

/// Bit `j` set where `block[j] == byte`.
#[inline(always)]
fn byte_mask32(block: &[u8; 32], byte: u8) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
        // SAFETY: SSE2 is part of x86_64; the two unaligned loads read the 32-byte block.
        unsafe {
            let b = _mm_set1_epi8(byte as i8);
            let lo = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(block.as_ptr() as *const __m128i), b)) as u32;
            let hi = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(block.as_ptr().add(16) as *const __m128i), b)) as u32;
            lo | (hi << 16)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block.iter().enumerate().fold(0, |m, (j, &b)| m | (((b == byte) as u32) << j))
    }
}

#[inline(always)]
fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while let Some(&b) = s.get(i) {
        if b != b' ' && b != b'\t' {
            break;
        }
        i += 1;
    }
    i
}

#[inline(always)]
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn trim(s: &[u8]) -> &[u8] {
    let (a, b) = trim_range(s, 0, s.len());
    &s[a..b]
}

/// `start..end` of `s` without its surrounding ASCII whitespace.
#[inline(always)]
fn trim_range(s: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && s[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && s[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    (start, end)
}

/// Lexes `text` (whole lines) whose first byte is at `base_offset` of the file and whose first
/// line is number `first_line` (1-based).
pub fn lex(text: &[u8], base_offset: u64, first_line: u64) -> Lexed {
    lex_with(text, base_offset, first_line, true)
}

/// `lex` with the plain-line fast path on or off (off: every line takes the general path, which
/// tests and the fuzzer hold equal to the fast one).
pub fn lex_with(text: &[u8], base_offset: u64, first_line: u64, fast: bool) -> Lexed {
    let (rows, has_cr) = count_lines(text);
    let mut out = Lexed {
        first_line,
        rows,
        offset: Vec::with_capacity(rows),
        command: Vec::with_capacity(rows),
        command_valid: Bitmap::zeros(rows),
        commands: CommandDict::default(),
        n: Vec::new(),
        n_valid: Bitmap::zeros(rows),
        checksum_ok: Bitmap::zeros(rows),
        checksum_valid: Bitmap::zeros(rows),
        words: (0..WORD_COLUMNS.len()).map(|_| F64Col::lazy(rows)).collect(),
        params: ParamCol::with_rows(rows),
        text: StrCol::with_rows(rows),
        // Slicers that comment moves (`; perimeter`) comment nearly every line: room for a
        // quarter of the piece up front saves the copies of growing step by step (memory that
        // is never written is never touched).
        comment: StrCol { data: Vec::with_capacity(text.len() / 4), ..StrCol::with_rows(rows) },
        comment_only: Bitmap::zeros(rows),
        events: Vec::new(),
        diagnostics: Vec::new(),
    };
    let mut lx = LineLexer { out: &mut out, row: 0, line: &[], piece: text, base_offset, start: 0, last_plain: LastCommand::NONE, word_bufs: WordBufs::NONE };
    let (mut pos, mut row) = (0, 0);
    while row < rows {
        if fast {
            (pos, row) = lx.plain_run(pos, row, has_cr);
            if row == rows {
                break;
            }
        }
        let (end, next) = next_line(text, pos, has_cr);
        lx.row = row;
        lx.start = pos;
        lx.line = &text[pos..end];
        lx.out.offset.push((base_offset + pos as u64) as i64);
        lx.lex_line();
        (pos, row) = (next, row + 1);
    }
    out.params.finish();
    out.text.finish();
    out.comment.finish();
    if out.comment.data.len() < out.comment.data.capacity() / 2 {
        out.comment.data.shrink_to_fit(); // the room a piece with few comments did not use
    }
    out
}

struct LineLexer<'a, 'o> {
    out: &'o mut Lexed,
    row: usize,
    line: &'a [u8],
    /// The whole piece, from which numbers are scanned: a line's terminator stops a number as
    /// any non-digit does, and the bytes past it let the eight-at-a-time digit scan run to the
    /// line's last number instead of falling back to a byte loop near its end.
    piece: &'a [u8],
    base_offset: u64,
    start: usize,
    /// The previous plain line's command: most lines repeat it (`G1 `).
    last_plain: LastCommand,
    /// Where word values are written: no column lookup, lazy-allocation test or bounds check
    /// per word. The buffers are sized to the piece's rows when allocated, and nothing else
    /// touches them while the piece is lexed.
    word_bufs: WordBufs,
}

/// A command as the first bytes of its line through the space after it (`key`, the bytes that
/// `mask` keeps of a line's first eight, `len` of them), and its id: one compare of a line's
/// first eight bytes then stands for reading its command.
#[derive(Clone, Copy)]
struct LastCommand {
    key: u64,
    mask: u64,
    len: usize,
    id: i32,
}

impl LastCommand {
    /// Matches no line.
    const NONE: LastCommand = LastCommand { key: 1, mask: 0, len: 0, id: -1 };
}

/// Pointers to each word column's value and validity buffers, by slot (null before the
/// column's first value). Two arrays of 16, not one of pairs: any slot indexes them without
/// a check, and a pointer is one scaled load.
#[derive(Clone, Copy)]
struct WordBufs {
    values: [*mut f64; 16],
    valid: [*mut u8; 16],
}

impl WordBufs {
    const NONE: WordBufs = WordBufs { values: [std::ptr::null_mut(); 16], valid: [std::ptr::null_mut(); 16] };
    #[inline(always)]
    fn get(&self, slot: usize) -> (*mut f64, *mut u8) {
        (self.values[slot & 15], self.valid[slot & 15])
    }
    fn set(&mut self, slot: usize, (values, valid): (*mut f64, *mut u8)) {
        (self.values[slot & 15], self.valid[slot & 15]) = (values, valid);
    }
    /// Writes `v` to row `row` of column `slot`; false when the column has no buffers yet.
    ///
    /// # Safety
    /// `row` is below the piece's row count (the buffers' size), and no reference to the
    /// buffers exists while the piece is lexed.
    #[inline(always)]
    unsafe fn write(&self, slot: usize, row: usize, v: f64) -> bool {
        let (values, valid) = self.get(slot);
        if values.is_null() {
            return false;
        }
        *values.add(row) = v;
        *valid.add(row >> 3) |= 1 << (row & 7);
        true
    }
}

/// What the rest of the line is parsed as, once the command is known.
enum Mode {
    Words,
    Text,
    Extended,
}

impl<'a> LineLexer<'a, '_> {
    fn diag(&mut self, code: &'static str, message: String) {
        let line = self.out.first_line + self.row as u64;
        let offset = self.base_offset + self.start as u64;
        self.out.diagnostics.push(Diagnostic { line, offset, severity: Severity::Error, code, message });
    }

    /// Any line (the general path; `plain_line` takes the common ones first).
    #[inline(never)]
    fn lex_line(&mut self) {
        let s = self.line;
        let row = self.row;
        let mut command = -1i32;
        let mut comments = 0usize;
        let mut content = false; // anything other than comments on the line
        let mut mode = Mode::Words;
        let mut i = skip_ws(s, 0);

        if s.get(i) == Some(&b'%') {
            command = self.out.commands.intern(b"%", false);
            content = true;
            i += 1;
        } else if matches!(s.get(i), Some(b'N' | b'n')) {
            let k = skip_ws(s, i + 1);
            if let Some((n, used)) = s.get(k..).and_then(scan_uint) {
                if self.out.n.is_empty() {
                    self.out.n = vec![0; self.out.rows]; // allocated by the first line number
                }
                self.out.n[row] = n.min(i64::MAX as u64) as i64;
                self.out.n_valid.set(row);
                content = true;
                i = k + used;
            }
        }
        i = skip_ws(s, i);

        // The command: a letter and a number (`G1`, `m862.3`, `T 0`) or an identifier (`SET_VELOCITY_LIMIT`).
        if let Some(&c) = s.get(i) {
            if c.is_ascii_alphabetic() || c == b'_' {
                let letter = c.to_ascii_uppercase();
                let k = skip_ws(s, i + 1);
                let at = s.get(k).copied().unwrap_or(0);
                let digit_after_point = at == b'.' && s.get(k + 1).is_some_and(u8::is_ascii_digit);
                if matches!(letter, b'G' | b'M' | b'T') && (at.is_ascii_digit() || digit_after_point) {
                    let (id, used) = self.classic_command(letter, &s[k..]);
                    command = id;
                    content = true;
                    i = k + used;
                    if self.out.commands.class[id as usize] == CommandClass::Text {
                        mode = Mode::Text;
                    }
                } else if c == b'_' || (is_ident(s.get(i + 1).copied().unwrap_or(0)) && !starts_number(at)) {
                    let end = i + s[i..].iter().position(|&b| !is_ident(b)).unwrap_or(s.len() - i);
                    let name: Vec<u8> = s[i..end].iter().map(u8::to_ascii_uppercase).collect();
                    command = self.out.commands.intern(&name, true);
                    content = true;
                    i = end;
                    mode = Mode::Extended;
                }
            }
        }

        match mode {
            Mode::Words => self.words(command, i, &mut comments, &mut content),
            Mode::Text => self.free_text(i, &mut comments),
            Mode::Extended => self.extended(i, &mut comments),
        }

        self.out.command.push(command);
        if command >= 0 {
            self.out.command_valid.set(row);
        }
        // Text and parameter rows were closed where their values were written.
        if comments > 0 {
            self.out.comment.close_row(row);
            if !content {
                self.comment_only(row);
            }
        }
    }

    /// Marks `row`, whose comment is closed, as comment-only, with the event of its slicer tag.
    fn comment_only(&mut self, row: usize) {
        self.out.comment_only.set(row);
        let start = self.out.comment.offsets[row] as usize;
        if let Some(tag) = classify(&self.out.comment.data[start..]) {
            self.out.events.push((row as u32, Event::from_tag(tag)));
        }
    }

    /// Lexes the common lines, `G1 X1.5 Y-2 E.03` with an optional `;` comment, from byte `pos`
    /// (row `row`) on, for as long as they come: a command seen before that takes words, then
    /// column words with short numbers, one or more spaces apart, within `LINE_WINDOW` bytes.
    /// Returns where the first other line starts (the general path reads it) or the piece's
    /// end. What this writes equals what the general path would. The state lives in locals
    /// and each line is read from one fixed-size window, so the loop keeps to registers and
    /// its loads need no bounds checks.
    fn plain_run(&mut self, mut pos: usize, mut row: usize, has_cr: bool) -> (usize, usize) {
        let text = self.piece;
        let mut bufs = self.word_bufs;
        let mut last = self.last_plain;
        let rows = self.out.rows;
        // Offsets and commands are written in place and their lengths set once at the end: the
        // rows before `row` are written (by either path), and both have room for `rows`.
        debug_assert!(self.out.offset.len() == row && self.out.command.len() == row);
        debug_assert!(self.out.offset.capacity() >= rows && self.out.command.capacity() >= rows);
        let (offsets, commands) = (self.out.offset.as_mut_ptr(), self.out.command.as_mut_ptr());
        let valid = self.out.command_valid.bytes.as_mut_ptr();
        'lines: while let Some(w) = text.get(pos..pos + WINDOW).filter(|_| row < rows) {
            let w: &[u8; WINDOW] = w.try_into().expect("WINDOW bytes");
            let Some((end, next)) = window_line(w, has_cr) else { break };
            let head = u64::from_le_bytes(w[..8].try_into().expect("8 bytes"));
            let (command, mut i) = if head & last.mask == last.key {
                (last.id, last.len)
            } else {
                let letter = w[0];
                if !matches!(letter, b'G' | b'M' | b'T') {
                    if letter != b';' && end > 0 {
                        break;
                    }
                    // A blank line, or a comment-only line (where slicers put their tags).
                    // SAFETY: as for the other rows, below.
                    unsafe {
                        offsets.add(row).write((self.base_offset + pos as u64) as i64);
                        commands.add(row).write(-1);
                    }
                    if end > 0 {
                        self.window_comment(w, 1, end, pos, row);
                        self.comment_only(row);
                    }
                    pos += next;
                    row += 1;
                    continue;
                }
                let Some((number, digits)) = run8(w, 1) else { break };
                let i = 1 + digits;
                if digits == 0 || w[i] == b'.' {
                    break;
                }
                let Some(command) = self.out.commands.lookup(letter, number) else { break };
                if !matches!(self.out.commands.class[command as usize], CommandClass::Words { .. }) {
                    break;
                }
                if w[i] == b' ' && i < 8 {
                    let mask = u64::MAX >> (56 - 8 * i);
                    last = LastCommand { key: head & mask, mask, len: i + 1, id: command };
                }
                (command, i)
            };
            let mut seen = 1u16 << NOT_A_WORD;
            let mut comment = None;
            while i < end {
                // A word letter not seen on the line yet, the common case, is told by one test.
                let bit = WORD_BIT[w[i] as usize];
                if seen & bit != 0 {
                    match w[i] {
                        b' ' => {
                            i += 1;
                            continue;
                        }
                        b';' => {
                            comment = Some(i + 1);
                            break;
                        }
                        _ => break 'lines,
                    }
                }
                let Some((v, used)) = scan_short(w, i + 1) else { break 'lines };
                i += 1 + used;
                // A number must end at a space (passed here), a comment or the line's end, before
                // it is written: the general path reads `X1,5` as text and would leave a value
                // written here.
                if i < end {
                    match w[i] {
                        b' ' => i += 1,
                        b';' => {}
                        _ => break 'lines,
                    }
                }
                seen |= bit;
                let slot = bit.trailing_zeros() as usize;
                // Written at once: should the line still turn out not plain, the general path
                // writes the same value here again.
                // SAFETY: `row < rows` (the loop's condition); `first_word` allocated the buffers.
                if !unsafe { bufs.write(slot, row, v) } {
                    bufs.set(slot, self.first_word(slot, row, v));
                }
            }
            // SAFETY: `row < rows`, the capacity of both vectors and the bitmap's bit count.
            unsafe {
                offsets.add(row).write((self.base_offset + pos as u64) as i64);
                commands.add(row).write(command);
                *valid.add(row >> 3) |= 1 << (row & 7);
            }
            if let Some(k) = comment {
                self.window_comment(w, k, end, pos, row);
            }
            pos += next;
            row += 1;
        }
        // SAFETY: rows up to `row` are written (above, and by the general path before).
        unsafe {
            self.out.offset.set_len(row);
            self.out.command.set_len(row);
        }
        self.word_bufs = bufs;
        self.last_plain = last;
        (pos, row)
    }

    /// The plain path's comment, `w[k..end]` of the line at `pos` (row `row`), as the general
    /// path reads it: trimmed, short ASCII ones copied in one store.
    #[inline(always)]
    fn window_comment(&mut self, w: &[u8; WINDOW], k: usize, end: usize, pos: usize, row: usize) {
        let (a, b) = trim_range(w, k, end);
        if !push_short_ascii(&mut self.out.comment.data, w, a, b) {
            (self.row, self.start) = (row, pos);
            self.comment(&w[k..end], &mut 0);
        }
        self.out.comment.close_row(row);
    }

    /// Writes the first value of word column `slot` (allocating it) and returns its buffers.
    #[cold]
    fn first_word(&mut self, slot: usize, row: usize, v: f64) -> (*mut f64, *mut u8) {
        let col = &mut self.out.words[slot];
        col.put(row, v);
        (col.values.as_mut_ptr(), col.valid.bytes.as_mut_ptr())
    }

    /// Interns `G1`, `G01`, `m862.3`: the number is written without leading zeros.
    fn classic_command(&mut self, letter: u8, s: &[u8]) -> (i32, usize) {
        let digits = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
        let mut used = digits;
        let mut frac = 0;
        if s.get(digits) == Some(&b'.') {
            frac = 1 + s[digits + 1..].iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len() - digits - 1);
            used += frac;
        } else if digits <= 4 {
            // The common case: a command seen before, found without building its name.
            let n = s[..digits].iter().fold(0u64, |a, &b| a * 10 + (b - b'0') as u64);
            if let Some(id) = self.out.commands.lookup(letter, n) {
                return (id, used);
            }
        }
        let int_text = &s[..digits];
        let trimmed = match int_text.iter().position(|&b| b != b'0') {
            Some(p) => &int_text[p..],
            None if digits > 0 => b"0",
            None => b"",
        };
        let mut key = [0u8; 48];
        let frac_text = &s[digits..digits + frac];
        let len = 1 + trimmed.len() + frac_text.len();
        if len > key.len() || trimmed.len() > 18 {
            let mut v = vec![letter];
            v.extend_from_slice(trimmed);
            v.extend_from_slice(frac_text);
            return (self.out.commands.intern(&v, false), used);
        }
        key[0] = letter;
        key[1..1 + trimmed.len()].copy_from_slice(trimmed);
        key[1 + trimmed.len()..len].copy_from_slice(frac_text);
        let int = (frac == 0).then(|| trimmed.iter().fold(0u64, |a, &b| a * 10 + (b - b'0') as u64));
        (self.out.commands.classic(letter, int, &key[..len]), used)
    }

    /// The general path's word write, through the same buffers as `plain_run`'s.
    fn put_word(&mut self, slot: usize, v: f64) {
        let row = self.row;
        assert!(row < self.out.rows);
        // SAFETY: `row < rows`, checked above.
        if !unsafe { self.word_bufs.write(slot, row, v) } {
            let bufs = self.first_word(slot, row, v);
            self.word_bufs.set(slot, bufs);
        }
    }

    fn comment(&mut self, text: &[u8], comments: &mut usize) {
        if *comments > 0 {
            self.out.comment.data.push(b' ');
        }
        *comments += 1;
        if !push_utf8(&mut self.out.comment.data, trim(text)) {
            self.diag("invalid-utf8", "comment is not valid UTF-8; invalid bytes replaced".into());
        }
    }

    /// `*NN` after the content: the XOR of every byte before the `*` must equal NN.
    fn checksum(&mut self, star: usize) -> usize {
        let s = self.line;
        let row = self.row;
        match s.get(star + 1..).and_then(scan_uint) {
            Some((expected, used)) => {
                let actual = s[..star].iter().fold(0u8, |a, &b| a ^ b) as u64;
                self.out.checksum_valid.set(row);
                if actual == expected {
                    self.out.checksum_ok.set(row);
                } else {
                    self.diag("checksum", format!("checksum mismatch: line says {expected}, content gives {actual}"));
                }
                star + 1 + used
            }
            None => {
                self.diag("checksum", "'*' without a checksum number".into());
                star + 1
            }
        }
    }

    fn words(&mut self, command: i32, mut i: usize, comments: &mut usize, content: &mut bool) {
        let s = self.line;
        let class = if command >= 0 { self.out.commands.class[command as usize] } else { CommandClass::Words { move_: false } };
        let is_move = class == CommandClass::Words { move_: true };
        let is_m486 = class == CommandClass::M486;
        let mut seen: u16 = 0;
        while i < s.len() {
            let c = s[i];
            match c {
                b' ' | b'\t' => i += 1,
                b';' => {
                    self.comment(&s[i + 1..], comments);
                    return;
                }
                b'(' => match memchr::memchr(b')', &s[i + 1..]) {
                    Some(k) => {
                        self.comment(&s[i + 1..i + 1 + k], comments);
                        i += k + 2;
                    }
                    None => {
                        self.diag("unbalanced-paren", "'(' comment is not closed on this line".into());
                        self.comment(&s[i + 1..], comments);
                        return;
                    }
                },
                b'*' => {
                    i = self.checksum(i);
                }
                _ if c.is_ascii_alphabetic() => {
                    *content = true;
                    let letter = c.to_ascii_uppercase();
                    let k = skip_ws(s, i + 1);
                    let at = s.get(k).copied().unwrap_or(0);
                    if at == b'"' {
                        i = self.quoted_param(letter, k);
                    } else if is_m486 && letter == b'A' {
                        // `M486 A3DBenchy.stl`: the object name runs to the end of the content.
                        let end = k + s[k..].iter().position(|&b| b == b';' || b == b'*').unwrap_or(s.len() - k);
                        self.param(&[letter], trim(&s[k..end]));
                        i = end;
                    } else if let Some((v, used)) = if starts_number(at) { scan(&self.piece[self.start + k..]) } else { None } {
                        let after = s.get(k + used).copied().unwrap_or(b' ');
                        if !matches!(after, b' ' | b'\t' | b';' | b'(' | b'*') && !after.is_ascii_alphabetic() {
                            // Not a plain number (`M115 U3.11.0`, `X1,5`): the token is text.
                            let end = k + token_len(&s[k..]);
                            self.param(&[letter], &s[k..end]);
                            if is_move {
                                let shown = String::from_utf8_lossy(&s[k..end.min(k + 24)]).into_owned();
                                self.diag("not-a-number", format!("word {} has {shown:?}, not a number", letter as char));
                            }
                            i = end;
                            continue;
                        }
                        let slot = WORD_SLOT[letter as usize];
                        if slot != NOT_A_WORD {
                            if seen & (1 << slot) != 0 {
                                self.diag("repeated-word", format!("word {} appears twice; the last value is kept", letter as char));
                            }
                            seen |= 1 << slot;
                            self.put_word(slot as usize, v);
                        } else {
                            let text = &s[k..k + used];
                            self.param(&[letter], text);
                        }
                        i = k + used;
                    } else {
                        // A word without a number: a flag (`G28 X`, `M84 E`); NaN in its column.
                        let slot = WORD_SLOT[letter as usize];
                        if slot != NOT_A_WORD {
                            self.put_word(slot as usize, f64::NAN);
                        } else {
                            self.param(&[letter], b"");
                        }
                        if is_move {
                            self.diag("missing-number", format!("word {} has no number", letter as char));
                        }
                        i = if starts_number(at) { k + 1 } else { i + 1 };
                    }
                }
                _ => {
                    *content = true;
                    // Skip the rest of the token (`{machine_depth}`), reported once.
                    let end = (i + token_len(&s[i..])).max(i + 1);
                    let shown = String::from_utf8_lossy(&s[i..end.min(i + 16)]).into_owned();
                    self.diag("unexpected", format!("unexpected text {shown:?} skipped"));
                    i = end;
                }
            }
        }
    }

    fn param(&mut self, key: &[u8], value: &[u8]) {
        if !self.out.params.push(self.row, key, value) {
            self.diag("invalid-utf8", "parameter is not valid UTF-8; invalid bytes replaced".into());
        }
    }

    /// A RepRapFirmware-style quoted string (`P"MK3S"`, `""` is a literal quote).
    fn quoted_param(&mut self, letter: u8, open: usize) -> usize {
        let s = self.line;
        let mut value = Vec::new();
        let mut i = open + 1;
        loop {
            match s.get(i) {
                None => {
                    self.diag("unbalanced-quote", "quoted string is not closed on this line".into());
                    break;
                }
                Some(b'"') if s.get(i + 1) == Some(&b'"') => {
                    value.push(b'"');
                    i += 2;
                }
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(&b) => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        self.param(&[letter], &value);
        i
    }

    /// `M117 Printing...`: the text runs to a `;` comment or a `*` checksum.
    fn free_text(&mut self, i: usize, comments: &mut usize) {
        let s = self.line;
        let mut end = memchr::memchr(b';', &s[i..]).map_or(s.len(), |k| i + k);
        let star = memchr::memrchr(b'*', &s[i..end]).map(|k| i + k);
        let after = if let Some(st) = star.filter(|&st| s[st + 1..end].iter().all(|b| b.is_ascii_digit() || *b == b' ') && st + 1 < end) {
            let next = self.checksum(st);
            let e = end;
            end = st;
            Some((next, e))
        } else {
            None
        };
        if !push_utf8(&mut self.out.text.data, trim(&s[i..end])) {
            self.diag("invalid-utf8", "text is not valid UTF-8; invalid bytes replaced".into());
        }
        self.out.text.close_row(self.row);
        let comment_at = after.map_or(end, |(_, e)| e);
        if comment_at < s.len() {
            self.comment(&s[comment_at + 1..], comments);
        }
    }

    /// Klipper extended parameters: `KEY=VALUE` words with shell-style quoting; `;` and `#`
    /// outside quotes start a comment, `*` a checksum.
    fn extended(&mut self, mut i: usize, comments: &mut usize) {
        let s = self.line;
        let mut key = Vec::new();
        let mut value = Vec::new();
        loop {
            i = skip_ws(s, i);
            let Some(&c) = s.get(i) else { return };
            match c {
                b';' | b'#' => {
                    self.comment(&s[i + 1..], comments);
                    return;
                }
                b'*' if s.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                    i = self.checksum(i);
                    continue;
                }
                _ => {}
            }
            // One shell word.
            key.clear();
            value.clear();
            let mut has_eq = false;
            let mut quote_error = false;
            while let Some(&b) = s.get(i) {
                match b {
                    b' ' | b'\t' | b';' | b'#' => break,
                    b'\'' => match memchr::memchr(b'\'', &s[i + 1..]) {
                        Some(k) => {
                            push_part(&mut key, &mut value, has_eq, &s[i + 1..i + 1 + k]);
                            i += k + 2;
                        }
                        None => {
                            quote_error = true;
                            push_part(&mut key, &mut value, has_eq, &s[i + 1..]);
                            i = s.len();
                        }
                    },
                    b'"' => {
                        i += 1;
                        loop {
                            match s.get(i) {
                                None => {
                                    quote_error = true;
                                    break;
                                }
                                Some(b'"') => {
                                    i += 1;
                                    break;
                                }
                                Some(b'\\') if matches!(s.get(i + 1), Some(b'"' | b'\\' | b'$' | b'`')) => {
                                    push_part(&mut key, &mut value, has_eq, &s[i + 1..i + 2]);
                                    i += 2;
                                }
                                Some(_) => {
                                    push_part(&mut key, &mut value, has_eq, &s[i..i + 1]);
                                    i += 1;
                                }
                            }
                        }
                    }
                    b'\\' if i + 1 < s.len() => {
                        push_part(&mut key, &mut value, has_eq, &s[i + 1..i + 2]);
                        i += 2;
                    }
                    b'=' if !has_eq => {
                        has_eq = true;
                        i += 1;
                    }
                    _ => {
                        push_part(&mut key, &mut value, has_eq, &s[i..i + 1]);
                        i += 1;
                    }
                }
            }
            if quote_error {
                self.diag("unbalanced-quote", "quoted value is not closed on this line".into());
            }
            if !has_eq {
                let shown = String::from_utf8_lossy(&key).into_owned();
                self.diag("malformed-parameter", format!("parameter {shown:?} is not KEY=VALUE"));
            }
            key.make_ascii_uppercase();
            let (k, v) = (std::mem::take(&mut key), std::mem::take(&mut value));
            self.param(&k, &v);
            key = k;
            value = v;
        }
    }
}

/// Length of the token at the start of `s`: up to a blank, or a `;`, `(` or `*`, which start a
/// comment or a checksum wherever they are.
fn token_len(s: &[u8]) -> usize {
    s.iter().position(|&b| matches!(b, b' ' | b'\t' | b';' | b'(' | b'*')).unwrap_or(s.len())
}

#[inline]
fn push_part(key: &mut Vec<u8>, value: &mut Vec<u8>, has_eq: bool, part: &[u8]) {
    if has_eq {
        value.extend_from_slice(part)
    } else {
        key.extend_from_slice(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Lexed {
        lex(line.as_bytes(), 0, 1)
    }

    /// The fast path's comment copy (trim_range, then push_short_ascii) against trim and push.
    #[test]
    fn short_comment_equals_trim_and_push() {
        let texts: [&[u8]; 9] = [b" perimeter", b"", b"  ", b" a ", b"\tx\r", b"0123456789abcdef", b" 0123456789abcdefg", b"caf\xc3\xa9", b"x\x80"];
        for t in texts {
            let mut s = t.to_vec();
            s.extend_from_slice(&[b'#'; 20]);
            let mut fast = b"ab".to_vec();
            let (a, b) = trim_range(&s, 0, t.len());
            let took = push_short_ascii(&mut fast, &s, a, b);
            let a = t.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(t.len());
            let b = t.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(a, |p| p + 1);
            let want = &t[a..b];
            assert_eq!(trim(t), want, "{t:?}");
            assert_eq!(took, want.len() <= 16 && want.is_ascii(), "{t:?}");
            if took {
                assert_eq!(&fast[2..], want, "{t:?}");
            } else {
                assert_eq!(fast, b"ab", "{t:?}");
            }
        }
    }
    fn cmd(l: &Lexed, row: usize) -> Option<String> {
        let id = l.command[row];
        (id >= 0).then(|| String::from_utf8(l.commands.dict.values[id as usize].clone()).unwrap())
    }
    fn word(l: &Lexed, row: usize, w: u8) -> Option<f64> {
        let slot = WORD_COLUMNS.iter().position(|&c| c == w).unwrap();
        l.words[slot].get(row)
    }
    fn params(l: &Lexed, row: usize) -> Vec<(String, String)> {
        l.params
            .row(row)
            .map(|(k, v)| (String::from_utf8(k.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    }
    fn comment(l: &Lexed, row: usize) -> Option<String> {
        l.comment.row(row).map(|c| String::from_utf8(c.to_vec()).unwrap())
    }

    #[test]
    fn newline_mask_matches_a_byte_loop() {
        let mut block = [b'x'; 32];
        for (k, j) in [0usize, 1, 15, 16, 17, 31].into_iter().enumerate() {
            block[j] = if k % 2 == 0 { b'\n' } else { b'\r' };
            let expected = block.iter().enumerate().fold(0u32, |m, (i, &b)| m | (((b == b'\n') as u32) << i));
            assert_eq!(byte_mask32(&block, b'\n'), expected);
        }
    }

    #[test]
    fn line_endings() {
        assert_eq!(count_lines(b""), (0, false));
        assert_eq!(count_lines(b"a"), (1, false));
        assert_eq!(count_lines(b"a\n"), (1, false));
        assert_eq!(count_lines(b"a\r\nb\rc\n\n"), (4, true));
        assert_eq!(count_lines(b"\r\r\n\r"), (3, true));
        // Past the 64-byte blocks and the 255-block groups of the counting loop, with a `\r`
        // in the last group or in the tail.
        for len in [63usize, 64, 65, 64 * 255 - 1, 64 * 255, 64 * 255 + 70, 64 * 600 + 5] {
            let text: Vec<u8> = (0..len).map(|i| if i % 7 == 3 { b'\n' } else { b'x' }).collect();
            let lf = text.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(count_lines(&text), (lf + 1, false), "{len}");
            for at in [len - 1, len.saturating_sub(len % 64 + 1), len.saturating_sub(70)] {
                let mut t = text.clone();
                t[at] = b'\r';
                assert!(count_lines(&t).1, "{len} {at}");
            }
        }
        let l = lex(b"G1 X1\r\nG1 X2\rG1 X3\n\nG1 X4", 10, 5);
        assert_eq!(l.rows, 5);
        assert_eq!(l.offset, vec![10, 17, 23, 29, 30]);
        assert_eq!(word(&l, 2, b'X'), Some(3.0));
        assert_eq!(cmd(&l, 3), None);
        assert_eq!(word(&l, 4, b'X'), Some(4.0));
    }

    #[test]
    fn classic_words() {
        let l = one("g01x1.5Y-2 e.0461 F+1200 ; move\n");
        assert_eq!(cmd(&l, 0).as_deref(), Some("G1"));
        assert_eq!(word(&l, 0, b'X'), Some(1.5));
        assert_eq!(word(&l, 0, b'Y'), Some(-2.0));
        assert_eq!(word(&l, 0, b'E'), Some(0.0461));
        assert_eq!(word(&l, 0, b'F'), Some(1200.0));
        assert_eq!(comment(&l, 0).as_deref(), Some("move"));
        assert!(l.diagnostics.is_empty());
    }

    #[test]
    fn exponent_is_a_new_word() {
        let l = one("G1 X1e2");
        assert_eq!(word(&l, 0, b'X'), Some(1.0));
        assert_eq!(word(&l, 0, b'E'), Some(2.0));
    }

    #[test]
    fn dotted_commands_and_quoted_strings() {
        let l = one("M862.3 P \"MK3S\" ; printer model check");
        assert_eq!(cmd(&l, 0).as_deref(), Some("M862.3"));
        assert_eq!(params(&l, 0), vec![("P".into(), "MK3S".into())]);
        let l = one("M550 P\"my \"\"best\"\" printer\"");
        assert_eq!(params(&l, 0), vec![("P".into(), "my \"best\" printer".into())]);
    }

    #[test]
    fn text_commands() {
        let l = one("M117 Layer 1/20 (50%) ; progress");
        assert_eq!(cmd(&l, 0).as_deref(), Some("M117"));
        assert_eq!(l.text.row(0), Some(&b"Layer 1/20 (50%)"[..]));
        assert_eq!(comment(&l, 0).as_deref(), Some("progress"));
        let l = one("M486 A3DBenchy.stl");
        assert_eq!(params(&l, 0), vec![("A".into(), "3DBenchy.stl".into())]);
        let l = one("M486 S1");
        assert_eq!(word(&l, 0, b'S'), Some(1.0));
    }

    #[test]
    fn extended_commands() {
        let l = one("EXCLUDE_OBJECT_DEFINE NAME='a b' CENTER=1,2 POLYGON=[[0,0],[1,1]] ; def");
        assert_eq!(cmd(&l, 0).as_deref(), Some("EXCLUDE_OBJECT_DEFINE"));
        assert_eq!(
            params(&l, 0),
            vec![
                ("NAME".into(), "a b".into()),
                ("CENTER".into(), "1,2".into()),
                ("POLYGON".into(), "[[0,0],[1,1]]".into())
            ]
        );
        assert_eq!(comment(&l, 0).as_deref(), Some("def"));
        let l = one("set_velocity_limit accel=5000 # why");
        assert_eq!(cmd(&l, 0).as_deref(), Some("SET_VELOCITY_LIMIT"));
        assert_eq!(params(&l, 0), vec![("ACCEL".into(), "5000".into())]);
        let l = one("PRINT_START");
        assert_eq!(cmd(&l, 0).as_deref(), Some("PRINT_START"));
        assert!(params(&l, 0).is_empty());
    }

    #[test]
    fn line_numbers_and_checksums() {
        // XOR of "N1 G1 X1" is computed here independently of the lexer.
        let body = "N1 G1 X1";
        let ck = body.bytes().fold(0u8, |a, b| a ^ b);
        let text = format!("{body}*{ck}\n{body}*{}\n", ck ^ 1);
        let l = lex(text.as_bytes(), 0, 1);
        assert_eq!(l.n[0], 1);
        assert!(l.checksum_valid.get(0) && l.checksum_ok.get(0));
        assert!(l.checksum_valid.get(1) && !l.checksum_ok.get(1));
        assert_eq!(word(&l, 1, b'X'), Some(1.0), "a bad checksum is flagged, not dropped");
        assert_eq!(l.diagnostics.len(), 1);
        assert_eq!(l.diagnostics[0].line, 2);
    }

    #[test]
    fn paren_comments_and_markers() {
        let l = one("%\nG1 X1 (first) Y2 (second)\n(unclosed");
        assert_eq!(cmd(&l, 0).as_deref(), Some("%"));
        assert_eq!(word(&l, 1, b'Y'), Some(2.0));
        assert_eq!(comment(&l, 1).as_deref(), Some("first second"));
        assert_eq!(comment(&l, 2).as_deref(), Some("unclosed"));
        assert_eq!(l.diagnostics[0].code, "unbalanced-paren");
    }

    /// Lines that end on either side of the plain path's window, with every line ending.
    #[test]
    fn plain_lines_at_the_window_edge() {
        for eol in ["\n", "\r\n", "\r"] {
            for len in 40..72 {
                let mut line = "G1 X1.5 Y-2 E.03 ;".to_string();
                line.push_str(&"c".repeat(len - line.len()));
                let comment_only = format!(";TYPE:{}", "c".repeat(len - 6));
                let t = format!("{line}{eol}{comment_only}{eol}").repeat(3) + &"G1 X2\n".repeat(20);
                let (fast, general) = (lex_with(t.as_bytes(), 0, 1, true), lex_with(t.as_bytes(), 0, 1, false));
                assert_eq!(fast.fingerprint(), general.fingerprint(), "{eol:?} {len}");
                assert_eq!(fast.rows, 26);
            }
        }
    }

    /// Random lines near the plain shape (and just past it): the fast path must write exactly
    /// what the general path writes, line by line and in whole texts.
    #[test]
    fn fast_path_equals_general_path() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let pick = |k: usize, xs: &[&'static str]| xs[k % xs.len()];
        let commands = ["G1", "G0", "G92", "M104", "M486", "M117", "T0", "G01", "g1", "M862.3", "G28", "N7 G1", " G1", "G1\t"];
        let letters = "XYZEFSPTIJKRAxye";
        let seps = [" ", " ", " ", "  ", "\t", ""];
        // Long comments put line ends on both sides of the plain path's 64-byte window.
        let ends = ["", "", " ;c", ";x y", " *12", " (p)", " ", "  ; WIDTH:0.4", " ; a comment as long as a wipe move's note", " ;                                   x"];
        // Blank and comment-only lines (slicer tags among them) between the commands.
        let comment_lines = ["", ";", ";   ", ";TYPE:Perimeter", "; TYPE:External perimeter", ";LAYER_CHANGE", ";Z:0.4", ";WIDTH:0.45",
            "; printing object box id:0 copy 0", ";\t x  ", "; a comment-only line longer than sixteen bytes", ";é non-ascii", ";(p) ;x"];
        let mut text = String::new();
        for _ in 0..20_000 {
            if next(6) == 0 {
                text.push_str(pick(next(100), &comment_lines));
                text.push_str(pick(next(8), &["\n", "\n", "\n", "\n", "\n", "\n", "\r\n", "\r"]));
            }
            text.push_str(pick(next(100), &commands));
            for _ in 0..next(5) {
                text.push_str(pick(next(6), &seps));
                text.push(letters.as_bytes()[next(letters.len())] as char);
                match next(12) {
                    0 => text.push('+'),
                    1..=4 => text.push('-'),
                    _ => {}
                }
                for _ in 0..[0, 1, 1, 2, 3, 3, 4, 7, 8, 9][next(10)] {
                    text.push((b'0' + next(10) as u8) as char);
                }
                if next(3) > 0 {
                    text.push('.');
                    for _ in 0..[0, 1, 2, 3, 5, 6, 7, 8, 12][next(9)] {
                        text.push((b'0' + next(10) as u8) as char);
                    }
                }
                if next(40) == 0 {
                    text.push_str(pick(next(4), &[",5", ".3", "e2", "x"]));
                }
            }
            text.push_str(pick(next(8), &ends));
            text.push_str(match next(40) {
                0 | 1 => "\r\n",
                2 => "\r",
                _ => "\n",
            });
        }
        let show = Lexed::fingerprint;
        // Line by line first (each followed by more, so that the plain path's window fits), for
        // a short message naming the line; then the whole text.
        let more = "G1 X2 Y3\n".repeat(12);
        for line in text.split_inclusive('\n') {
            let t = format!("G1 X1\n{line}{more}");
            let (fast, general) = (lex_with(t.as_bytes(), 0, 1, true), lex_with(t.as_bytes(), 0, 1, false));
            assert_eq!(show(&fast), show(&general), "{line:?}");
        }
        let t = text.as_bytes();
        assert_eq!(show(&lex_with(t, 0, 1, true)), show(&lex_with(t, 0, 1, false)));
    }

    #[test]
    fn regressions_found_by_fuzzing_and_the_reference() {
        // A command number too long for the fast table used to panic.
        let l = one("G1234567890123456789012 X1\nM1.23456789012345678901234567890123456789012345678901");
        assert_eq!(cmd(&l, 0).as_deref(), Some("G1234567890123456789012"));
        assert_eq!(word(&l, 0, b'X'), Some(1.0));
        assert!(cmd(&l, 1).unwrap().starts_with("M1.2345"));
        // `G.` has no number: no command, G is a flag.
        let l = one("G. X1");
        assert_eq!(cmd(&l, 0), None);
        assert_eq!(word(&l, 0, b'X'), Some(1.0));
        // A token that is not a plain number is text; it stops before a `( )` comment or a `*`
        // checksum.
        let l = one("G1 X1.2.3(c)\nG1 X1.5.5*12\nM115 U3.11.0+10073 ; fw");
        assert_eq!(comment(&l, 0).as_deref(), Some("c"));
        assert_eq!((word(&l, 0, b'X'), params(&l, 0)), (None, vec![("X".into(), "1.2.3".into())]));
        assert!(l.checksum_valid.get(1) && !l.checksum_ok.get(1));
        assert_eq!(params(&l, 2), vec![("U".into(), "3.11.0+10073".into())]);
        let codes: Vec<_> = l.diagnostics.iter().map(|d| (d.line, d.code)).collect();
        assert_eq!(codes, vec![(1, "not-a-number"), (2, "not-a-number"), (2, "checksum")]);
    }

    #[test]
    fn flags_and_garbage() {
        let l = lex(b"G28 X Y\nM84 E\n\x00\x01garbage\xff X1\nG1 Xnan", 0, 1);
        assert!(word(&l, 0, b'X').unwrap().is_nan());
        assert!(word(&l, 1, b'E').unwrap().is_nan());
        assert_eq!(word(&l, 2, b'X'), Some(1.0));
        assert!(l.diagnostics.iter().any(|d| d.line == 3));
        assert!(l.diagnostics.iter().any(|d| d.line == 4 && d.code == "missing-number"));
    }
}
