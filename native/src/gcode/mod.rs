//! G-code parsing: line-local lexing into Arrow-layout columns (parallel over pieces of a file),
//! then modal context and the file summary resolved in file order.

pub mod arrow;
pub mod columns;
pub mod context;
pub mod dict;
pub mod lexer;
pub mod number;
pub mod summary;

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use context::{Context, ContextCols, LayerSource};
pub use lexer::{lex, Lexed, WORD_COLUMNS};
pub use summary::SummaryBuilder;

use crate::bgcode;
use crate::slicer::producer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

/// A problem found on one line; lenient parsing records it and goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's start (in the decoded text for `.bgcode`).
    pub offset: u64,
    pub severity: Severity,
    /// A short stable code (`checksum`, `unbalanced-quote`, ...).
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GcodeError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: binary G-code: {source}")]
    Bgcode { path: String, source: bgcode::BgcodeError },
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads for lexing; 0 uses every core.
    pub threads: usize,
    /// Bytes per piece (the unit of parallel work and of one record batch); 0 chooses by the
    /// number of threads (see `plan_pieces`).
    pub chunk_bytes: usize,
    /// Diagnostics kept (the total is always counted).
    pub max_diagnostics: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { threads: 0, chunk_bytes: 0, max_diagnostics: 10_000 }
    }
}

/// A stream holds back at most this much input while a layer waits for its Z.
pub const HOLD_BYTES: usize = 256 << 20;
/// Layer markers are looked for in this much of the file's start to choose the layer source.
pub const MARKER_WINDOW: u64 = 4 << 20;
const HEAD_TAIL: usize = 64 << 10;

/// One parsed piece: the lexed columns and its context columns.
pub struct Batch {
    pub lexed: Lexed,
    pub context: ContextCols,
}

pub struct Parsed {
    pub batches: Vec<Batch>,
    pub context: Context,
    pub diagnostics: Vec<Diagnostic>,
    pub diagnostics_total: u64,
}

/// G-code text, mapped or decoded from a container.
pub enum Text {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Text {
    /// Bytes `a..b`; of a mapped file, faulted in with one call first (a fault per page costs
    /// more, and faulting the whole map in up front was serial work before the threads start:
    /// 0.9 ms of a 14 MB file).
    fn piece(&self, a: usize, b: usize) -> &[u8] {
        #[cfg(target_os = "linux")]
        if let Text::Mapped(m) = self {
            // Only advice: on failure the pages fault in as they are read.
            let _ = m.advise_range(memmap2::Advice::PopulateRead, a, b - a);
        }
        &self[a..b]
    }
}

impl std::ops::Deref for Text {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Text::Mapped(m) => m,
            Text::Owned(v) => v,
        }
    }
}

/// A file's G-code text plus what its container says about it.
pub struct Source {
    pub text: Text,
    pub file_bytes: u64,
    pub bgcode: Option<bgcode::BgcodeFile>,
}

impl Source {
    pub fn open(path: &Path) -> Result<Source, GcodeError> {
        let io = |source| GcodeError::Io { path: path.display().to_string(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let text = if len == 0 {
            Text::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only; a file truncated underneath us is the caller's risk,
            // as with every memory-mapped reader. Each piece is faulted in by its worker
            // (`Text::piece`).
            Text::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Source::from_text(text, &path.display().to_string())
    }

    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Source, GcodeError> {
        Source::from_text(Text::Owned(bytes), name)
    }

    fn from_text(text: Text, name: &str) -> Result<Source, GcodeError> {
        let file_bytes = text.len() as u64;
        if bgcode::is_bgcode(&text) {
            let mut file = bgcode::read(&text)
                .map_err(|source| GcodeError::Bgcode { path: name.to_string(), source })?;
            let gcode = std::mem::take(&mut file.gcode);
            return Ok(Source { text: Text::Owned(gcode), file_bytes, bgcode: Some(file) });
        }
        Ok(Source { text, file_bytes, bgcode: None })
    }
}

/// Cuts `text` into pieces of about `size` bytes that end on line boundaries.
pub fn split_lines(text: &[u8], size: usize) -> Vec<(usize, usize)> {
    split_lines_by(text, |_| size)
}

/// Cuts `text` into pieces that end on line boundaries, each about `size(bytes left)` long.
fn split_lines_by(text: &[u8], size: impl Fn(usize) -> usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let target = start + size(text.len() - start).max(1);
        if target >= text.len() {
            out.push((start, text.len()));
            break;
        }
        let end = match memchr::memchr(b'\n', &text[target..]) {
            Some(k) => target + k + 1,
            None => match memchr::memchr(b'\r', &text[target..]) {
                Some(k) => target + k + 1,
                None => text.len(),
            },
        };
        out.push((start, end));
        start = end;
    }
    out
}

fn threads(opts: &Options) -> usize {
    if opts.threads > 0 {
        opts.threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The pieces `parse` lexes: of `chunk_bytes`, or when that is 0, of 4 MiB on one thread and on
/// several of 1 MiB that shrink towards the end of the text. Smaller pieces balance the workers
/// and let the sequential resolving of one piece overlap the lexing of the next (two threads on
/// 30 MB: 1.8x one thread, against 1.5x with 4 MiB pieces); on one thread they only add
/// per-piece work. Near the end a piece is half of what is left per worker (at least 128 KiB),
/// so the workers finish together: with even pieces one of two idled for half a piece,
/// about 5 % of a two-thread parse of 14 MB.
fn plan_pieces(text: &[u8], opts: &Options, threads: usize) -> Vec<(usize, usize)> {
    let size = piece_bytes(opts, threads);
    if opts.chunk_bytes > 0 || threads <= 1 {
        return split_lines(text, size);
    }
    split_lines_by(text, |left| (left / (2 * threads)).clamp(128 << 10, size))
}

/// The piece size for `chunk_bytes` and `threads` (see `plan_pieces`).
pub fn piece_bytes(opts: &Options, threads: usize) -> usize {
    match opts.chunk_bytes {
        0 if threads > 1 => 1 << 20,
        0 => 4 << 20,
        n => n,
    }
}

/// Lexes pieces on `threads` workers (the calling thread is one of them) and hands them to
/// `consume` in file order as soon as each is ready. Whichever worker finds the next piece ready
/// runs `consume` itself, then goes back to lexing: a separate consuming thread would make three
/// threads on two cores, and when the scheduler left it waiting the resolving piled up into a
/// serial tail (two threads over one: 1.27-1.71x end to end before, 1.68-1.94x with this).
fn lex_pieces_in_order(text: &Text, pieces: &[(usize, usize)], threads: usize, mut consume: impl FnMut(Lexed) + Send) {
    if threads <= 1 || pieces.len() <= 1 {
        pieces.iter().for_each(|&(a, b)| consume(lex(text.piece(a, b), a as u64, 1)));
        return;
    }
    let next = AtomicUsize::new(0);
    let state = Mutex::new(Handover { ready: Default::default(), want: 0, consuming: false });
    let consume = Mutex::new(consume); // only ever locked by the worker that set `consuming`
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&(a, b)) = pieces.get(i) else { break };
        let lx = lex(text.piece(a, b), a as u64, 1);
        let mut s = lock(&state);
        s.ready.insert(i, lx);
        if s.consuming {
            continue; // the consuming worker looks for this piece before it stops
        }
        s.consuming = true;
        loop {
            let want = s.want;
            let Some(lx) = s.ready.remove(&want) else { break };
            s.want += 1;
            drop(s);
            lock(&consume)(lx);
            s = lock(&state);
        }
        s.consuming = false;
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.min(pieces.len()) {
            // A thread the system refuses only means fewer workers: the rest take its pieces.
            let _ = std::thread::Builder::new().spawn_scoped(scope, work);
        }
        work();
    });
    debug_assert_eq!(lock(&state).want, pieces.len(), "every piece consumed");
}

/// Lexed pieces waiting for their turn, the piece `consume` wants next, and whether a worker is
/// consuming (it clears this only under the lock, having found the wanted piece missing).
struct Handover {
    ready: std::collections::BTreeMap<usize, Lexed>,
    want: usize,
    consuming: bool,
}

/// Locks a mutex that a panicking worker may have poisoned (the panic itself propagates out of
/// the thread scope).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn layer_source(lexed: &[Lexed], base_offsets: impl Iterator<Item = u64>) -> LayerSource {
    for (lx, base) in lexed.iter().zip(base_offsets) {
        if base >= MARKER_WINDOW {
            break;
        }
        for (row, e) in &lx.events {
            if matches!(e, lexer::Event::LayerChange(_)) && lx.offset[*row as usize] < MARKER_WINDOW as i64 {
                return LayerSource::Markers;
            }
        }
    }
    LayerSource::Z
}

fn head_tail(text: &[u8]) -> (&[u8], &[u8]) {
    let head = &text[..text.len().min(HEAD_TAIL)];
    let tail = &text[text.len().saturating_sub(HEAD_TAIL)..];
    (head, tail)
}

fn start_summary(ctx: &mut Context, source: &Source) {
    let s = &mut ctx.summary;
    s.bytes = source.file_bytes;
    s.container = if source.bgcode.is_some() { "bgcode" } else { "text" };
    if let Some(b) = &source.bgcode {
        for (block, kv) in [
            ("file", &b.file_metadata),
            ("printer", &b.printer_metadata),
            ("print", &b.print_metadata),
            ("slicer", &b.slicer_metadata),
        ] {
            for (k, v) in kv {
                s.bgcode_metadata.push((block.to_string(), k.clone(), v.clone()));
            }
        }
        // The print and printer blocks state estimates and filament as `key=value`; the slicer
        // block is the configuration.
        for (k, v) in b.print_metadata.iter().chain(&b.printer_metadata) {
            for f in crate::slicer::meta::facts(format!(" {k} = {v}").as_bytes()) {
                s.add_fact(f);
            }
        }
        ctx.add_settings(b.slicer_metadata.iter().cloned());
        let s = &mut ctx.summary;
        for t in &b.thumbnails {
            s.thumbnails.push(summary::Thumbnail {
                format: t.format.name(),
                width: t.width as u32,
                height: t.height as u32,
                data: t.data.clone(),
            });
        }
    }
}

/// Producer and flavour from the text's head and tail, completed from `.bgcode` metadata.
fn detect_producer(ctx: &mut Context, bgcode: Option<&bgcode::BgcodeFile>, head: &[u8], tail: &[u8]) {
    let s = &mut ctx.summary;
    s.producer = producer::detect(head, tail);
    s.flavour = producer::flavour(head, tail);
    let Some(b) = bgcode else { return };
    if s.flavour.is_none() {
        let flavor = b.slicer_metadata.iter().find(|(k, _)| k == "gcode_flavor");
        s.flavour = flavor.map(|(_, v)| v.to_ascii_lowercase());
    }
    // PrusaSlicer puts its name in the bgcode file metadata ("Producer=PrusaSlicer 2.9.1").
    if s.producer.is_none() {
        if let Some((_, v)) = b.file_metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case("producer")) {
            let mut parts = v.splitn(2, ' ');
            let name = parts.next().unwrap_or_default().to_string();
            s.producer = Some(producer::Producer { name, version: parts.next().map(str::to_string) });
        }
    }
}

/// Writes the Z of layers that learned it after their marker into their earlier rows, in the
/// batches that hold them (the latest batches: they are walked from the end).
fn fill_layer_z<'a>(batches: impl IntoIterator<Item = &'a mut Batch, IntoIter: DoubleEndedIterator>, fills: Vec<(u64, u64, f64)>) {
    let Some(from) = fills.iter().map(|f| f.0).min() else { return };
    for b in batches.into_iter().rev() {
        let first = b.lexed.first_line - 1;
        let last = first + b.lexed.rows as u64;
        for &(start, end, z) in &fills {
            for row in start.max(first)..end.min(last) {
                b.context.z.put((row - first) as usize, z);
            }
        }
        if first <= from {
            break;
        }
    }
}

/// Parses a whole source, lexing pieces in parallel.
pub fn parse(source: &Source, opts: &Options) -> Parsed {
    let text: &[u8] = &source.text;
    let threads = threads(opts);
    let pieces = plan_pieces(text, opts, threads);
    // Pieces wait here until those starting inside the marker window are lexed and the layer
    // source is chosen; after that each piece is resolved as soon as it arrives.
    let window = pieces.iter().take_while(|p| (p.0 as u64) < MARKER_WINDOW).count();
    let mut waiting: Vec<Lexed> = Vec::new();
    let mut ctx: Option<Context> = None;
    let mut batches = Vec::with_capacity(pieces.len());
    let mut diagnostics = Vec::new();
    let mut total = 0u64;
    let mut resolve = |ctx: &mut Context, mut lx: Lexed| {
        let context = ctx.resolve(&mut lx);
        total += lx.diagnostics.len() as u64;
        let room = opts.max_diagnostics.saturating_sub(diagnostics.len());
        diagnostics.extend(lx.diagnostics.drain(..).take(room));
        batches.push(Batch { lexed: lx, context });
        fill_layer_z(&mut batches, ctx.take_z_fills());
    };
    let start = |waiting: &[Lexed]| {
        let bases = pieces.iter().map(|p| p.0 as u64);
        let mut c = Context::new(layer_source(waiting, bases));
        start_summary(&mut c, source);
        let (head, tail) = head_tail(text);
        detect_producer(&mut c, source.bgcode.as_ref(), head, tail);
        c
    };
    lex_pieces_in_order(&source.text, &pieces, threads, |lx| match ctx.as_mut() {
        Some(c) => resolve(c, lx),
        None => {
            waiting.push(lx);
            if waiting.len() >= window {
                let mut c = start(&waiting);
                waiting.drain(..).for_each(|lx| resolve(&mut c, lx));
                ctx = Some(c);
            }
        }
    });
    let mut ctx = ctx.unwrap_or_else(|| start(&waiting));
    ctx.finish();
    Parsed { batches, context: ctx, diagnostics, diagnostics_total: total }
}

/// Parses a stream piece by piece, for inputs larger than memory: each `next()` gives a batch
/// and the context carries over. Output equals `parse` on the same bytes.
pub struct Stream<R: Read> {
    reader: R,
    opts: Options,
    carry: Vec<u8>,
    offset: u64,
    eof: bool,
    ctx: Option<Context>,
    pending: std::collections::VecDeque<Lexed>,
    /// Resolved batches held back while a layer that starts in them waits for its Z.
    held: std::collections::VecDeque<Batch>,
    done: bool,
    head: Vec<u8>,
    tail: Vec<u8>,
    pub diagnostics_total: u64,
}

impl<R: Read> Stream<R> {
    pub fn new(reader: R, opts: Options) -> Self {
        Stream {
            reader,
            opts,
            carry: Vec::new(),
            offset: 0,
            eof: false,
            ctx: None,
            pending: Default::default(),
            held: Default::default(),
            done: false,
            head: Vec::new(),
            tail: Vec::new(),
            diagnostics_total: 0,
        }
    }

    /// Reads and lexes the next piece; None at the end.
    fn lex_next(&mut self) -> std::io::Result<Option<Lexed>> {
        let want = piece_bytes(&self.opts, 1);
        loop {
            // Cut at the last complete line the buffer holds.
            if self.carry.len() >= want || self.eof {
                let cut = if self.eof {
                    self.carry.len()
                } else {
                    match memchr::memrchr(b'\n', &self.carry) {
                        Some(k) => k + 1,
                        None => match memchr::memrchr(b'\r', &self.carry[..self.carry.len() - 1]) {
                            Some(k) => k + 1,
                            None => 0,
                        },
                    }
                };
                if cut > 0 {
                    let rest = self.carry.split_off(cut);
                    let piece = std::mem::replace(&mut self.carry, rest);
                    let lx = lex(&piece, self.offset, 1);
                    self.offset += piece.len() as u64;
                    if self.head.len() < HEAD_TAIL {
                        let take = (HEAD_TAIL - self.head.len()).min(piece.len());
                        self.head.extend_from_slice(&piece[..take]);
                    }
                    let keep = piece.len().min(HEAD_TAIL);
                    self.tail.extend_from_slice(&piece[piece.len() - keep..]);
                    let drop = self.tail.len().saturating_sub(HEAD_TAIL);
                    self.tail.drain(..drop);
                    return Ok(Some(lx));
                }
                if self.eof {
                    return Ok(None);
                }
            }
            let old = self.carry.len();
            self.carry.resize(old + want, 0);
            let n = self.reader.read(&mut self.carry[old..])?;
            self.carry.truncate(old + n);
            if n == 0 {
                self.eof = true;
            }
        }
    }

    /// The next batch, or None when the input is exhausted. A batch is handed out once its rows'
    /// context is final: a layer whose Z comes only after its marker fills that Z back into its
    /// rows, so batches holding such a layer's start wait for it, up to `HOLD_BYTES` of input
    /// (then they go out without it, the one case where streaming differs from `parse`).
    pub fn next_batch(&mut self) -> std::io::Result<Option<Batch>> {
        let cap = (HOLD_BYTES / piece_bytes(&self.opts, 1)).max(4);
        loop {
            if let Some(front) = self.held.front() {
                let end = front.lexed.first_line - 1 + front.lexed.rows as u64;
                let waits = self.ctx.as_ref().and_then(Context::layer_waiting_for_z).is_some_and(|start| start < end);
                if !waits || self.done || self.held.len() > cap {
                    return Ok(self.held.pop_front());
                }
            }
            if self.done {
                return Ok(None);
            }
            match self.resolve_next()? {
                Some(batch) => {
                    self.held.push_back(batch);
                    let fills = self.ctx.as_mut().expect("set by resolve_next").take_z_fills();
                    fill_layer_z(self.held.iter_mut(), fills);
                }
                None => self.done = true,
            }
        }
    }

    fn resolve_next(&mut self) -> std::io::Result<Option<Batch>> {
        if self.ctx.is_none() {
            // Look ahead far enough to choose the layer source exactly as `parse` does.
            let mut seen = 0u64;
            while seen < MARKER_WINDOW {
                match self.lex_next()? {
                    Some(lx) => {
                        seen = self.offset;
                        self.pending.push_back(lx);
                    }
                    None => break,
                }
            }
            let bases: Vec<u64> = self.pending.iter().map(|l| l.offset.first().copied().unwrap_or(0) as u64).collect();
            let lexed: Vec<Lexed> = self.pending.drain(..).collect();
            let mut ctx = Context::new(layer_source(&lexed, bases.into_iter()));
            self.pending.extend(lexed);
            ctx.summary.container = "text";
            self.ctx = Some(ctx);
        }
        let mut lx = match self.pending.pop_front() {
            Some(lx) => lx,
            None => match self.lex_next()? {
                Some(lx) => lx,
                None => return Ok(None),
            },
        };
        let ctx = self.ctx.as_mut().expect("context set above");
        let context = ctx.resolve(&mut lx);
        self.diagnostics_total += lx.diagnostics.len() as u64;
        Ok(Some(Batch { lexed: lx, context }))
    }

    /// The context so far (None before the first batch).
    pub fn context(&self) -> Option<&Context> {
        self.ctx.as_ref()
    }

    /// The finished context (dictionaries and summary) once every batch has been taken.
    pub fn finish(mut self) -> Context {
        let mut ctx = self.ctx.take().unwrap_or_else(|| Context::new(LayerSource::Z));
        ctx.summary.bytes = self.offset;
        detect_producer(&mut ctx, None, &self.head, &self.tail);
        ctx.finish();
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type ContextRow = (Option<i32>, Option<i32>, Option<i32>, Option<u64>);

    fn context_rows(batches: &[Batch]) -> Vec<ContextRow> {
        let mut rows = Vec::new();
        for b in batches {
            let c = &b.context;
            for r in 0..b.lexed.rows {
                let get = |col: &columns::IdCol| col.valid.get(r).then(|| col.values[r]);
                rows.push((get(&c.layer), get(&c.feature), get(&c.object), c.z.get(r).map(f64::to_bits)));
            }
        }
        rows
    }

    /// Context carried from piece to piece, parsed or streamed, equals one piece's (found by
    /// hypothesis and the fuzzer: an M486 id waiting for its name at a piece's end; a layer
    /// whose Z comes only in a later piece).
    #[test]
    fn context_is_the_same_in_pieces() {
        let text = b";LAYER:0\n%N0*91\n%N0*91\nM486S.0*58\n%N0\nG1 X1\nM486 S1\nG1 X2\n;TYPE:Perimeter\nG1 Z.2\n\
                     ;LAYER:1\nG1 X1\n;TYPE:Skirt\nG1 X2 E1\nG1 Z0.4\nG1 X3\n";
        let source = Source::from_bytes(text.to_vec(), "t").expect("text");
        let context = |chunk_bytes| context_rows(&parse(&source, &Options { threads: 1, chunk_bytes, ..Options::default() }).batches);
        let whole = context(1 << 20);
        assert_eq!(whole[4].2, Some(0), "the object named by M486 S0 on the row after it");
        assert_eq!(whole[0].3, Some(0.2f64.to_bits()), "layer 0's Z, filled back to its marker");
        assert_eq!(whole[11].3, Some(0.4f64.to_bits()), "layer 1's Z, filled back to its marker");
        for chunk in 1..24 {
            assert_eq!(context(chunk), whole, "parse, chunk {chunk}");
            let mut stream = Stream::new(&text[..], Options { chunk_bytes: chunk, ..Options::default() });
            let mut batches = Vec::new();
            while let Some(b) = stream.next_batch().expect("in memory") {
                batches.push(b);
            }
            assert_eq!(context_rows(&batches), whole, "stream, chunk {chunk}");
        }
    }

    #[test]
    fn piece_size_follows_the_thread_count() {
        let text = b"G1 X1.5 Y2.25 E.0125\n".repeat(500_000); // 11 MB
        let source = Source::from_bytes(text, "t").expect("text");
        let batches = |threads, chunk_bytes| parse(&source, &Options { threads, chunk_bytes, ..Options::default() }).batches;
        assert_eq!(batches(1, 0).len(), 3, "4 MiB pieces on one thread");
        assert_eq!(batches(2, 2 << 20).len(), 6, "a size given is kept");
        let shared = batches(2, 0);
        let sizes: Vec<usize> = shared.iter().map(|b| b.lexed.rows * 21).collect();
        let line = 21;
        assert!(sizes[..7].iter().all(|&s| s.abs_diff(1 << 20) < line), "1 MiB pieces on two threads: {sizes:?}");
        assert!(sizes.windows(2).all(|w| w[1] <= w[0] + line), "then shrinking: {sizes:?}");
        let last = &sizes[sizes.len() - 2..];
        assert!(last[0].abs_diff(128 << 10) < line && last[1] <= 128 << 10, "down to 128 KiB: {sizes:?}");
        let rows: usize = shared.iter().map(|b| b.lexed.rows).sum();
        assert_eq!(rows, 500_000);
    }

    /// Workers take turns at consuming; every piece arrives once and in file order, however
    /// the lexing and the consuming interleave.
    #[test]
    fn workers_hand_pieces_over_in_file_order() {
        let text = Text::Owned((0..3000).flat_map(|i| format!("G1 X{i}\n").into_bytes()).collect());
        let pieces = split_lines(&text, 64);
        for threads in 1..6 {
            for slow_every in [1, 3, 7] {
                let mut seen = Vec::new();
                lex_pieces_in_order(&text, &pieces, threads, |lx| {
                    if seen.len() % slow_every == 0 {
                        std::thread::yield_now(); // let other workers pile pieces up meanwhile
                    }
                    seen.push(lx.offset[0] as usize);
                });
                let starts: Vec<usize> = pieces.iter().map(|p| p.0).collect();
                assert_eq!(seen, starts, "threads {threads}, slow every {slow_every}");
            }
        }
    }

    #[test]
    fn split_is_on_line_boundaries() {
        let text = b"G1 X1\nG1 X2\r\nG1 X3\rG1 X4";
        for size in 1..text.len() + 2 {
            let pieces = split_lines(text, size);
            let joined: Vec<u8> = pieces.iter().flat_map(|&(a, b)| text[a..b].to_vec()).collect();
            assert_eq!(joined, text);
            let lines: usize = pieces.iter().map(|&(a, b)| lexer::count_lines(&text[a..b]).0).sum();
            assert_eq!(lines, 4, "size {size}");
        }
    }
}
