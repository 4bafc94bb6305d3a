//! Arbitrary bytes through the whole text path: the line lexer (fast path against general), the full parse (pieces, context,
//! summary) and the binary G-code reader. Nothing may panic; lenient parsing always yields one
//! row per line, with the same context, whatever the piece size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threedpai_native::{bgcode, gcode};

fuzz_target!(|data: &[u8]| {
    // The line count against a byte loop: `\n`, `\r\n` and a lone `\r` end a line, and so does
    // the end of input after a final unterminated line.
    let mut lines = data.iter().enumerate().filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n'))).count();
    lines += data.last().is_some_and(|&b| b != b'\n' && b != b'\r') as usize;
    assert_eq!(gcode::lexer::count_lines(data), (lines, data.contains(&b'\r')));
    let lexed = gcode::lex(data, 0, 1);
    assert_eq!(lexed.rows, lines);
    assert_eq!(lexed.offset.len(), lexed.rows);
    // The plain-line fast path writes what the general path writes.
    assert_eq!(lexed.fingerprint(), gcode::lexer::lex_with(data, 0, 1, false).fingerprint());

    let _ = bgcode::read(data);

    // Broken binary G-code is an Err, not a panic; text always parses.
    let Ok(source) = gcode::Source::from_bytes(data.to_vec(), "fuzz") else { return };
    let whole = gcode::parse(&source, &Default::default());
    let rows: usize = whole.batches.iter().map(|b| b.lexed.rows).sum();
    if source.bgcode.is_none() {
        assert_eq!(rows, lexed.rows);
    }
    // Small pieces on several threads: the same rows and diagnostics.
    let chunk = 1 + data.first().map_or(0, |&b| b as usize % 64);
    let opts = gcode::Options { threads: 2, chunk_bytes: chunk, ..Default::default() };
    let pieces = gcode::parse(&source, &opts);
    assert_eq!(pieces.batches.iter().map(|b| b.lexed.rows).sum::<usize>(), rows);
    assert_eq!(pieces.diagnostics_total, whole.diagnostics_total);
    assert!(context_rows(&whole).iter().enumerate().all(|(i, r)| r.0 == i as i64 + 1), "lines numbered 1, 2, ...");
    assert_eq!(context_rows(&pieces), context_rows(&whole), "context differs in pieces of {chunk}");
});

/// Line number, layer, feature, object and Z of every row.
fn context_rows(p: &gcode::Parsed) -> Vec<(i64, Option<i32>, Option<i32>, Option<i32>, Option<u64>)> {
    let mut out = Vec::new();
    for b in &p.batches {
        let c = &b.context;
        for r in 0..b.lexed.rows {
            let get = |col: &gcode::columns::IdCol| col.valid.get(r).then(|| col.values[r]);
            out.push((c.line[r], get(&c.layer), get(&c.feature), get(&c.object), c.z.get(r).map(f64::to_bits)));
        }
    }
    out
}
