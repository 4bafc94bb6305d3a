//! Parses files and prints rows, diagnostics and throughput: `cargo run --release --example
//! parse_file -- FILE... [--threads N] [--repeat K]` (used for profiling the core without Python).
use std::time::Instant;

use threedpai_native::gcode::{parse, Options, Source};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opt = |name: &str, default: usize| -> usize {
        match args.iter().position(|a| a == name) {
            Some(i) => {
                let v = args[i + 1].parse().expect("a number");
                args.drain(i..i + 2);
                v
            }
            None => default,
        }
    };
    let threads = opt("--threads", 1);
    let repeat = opt("--repeat", 5);
    let chunk = opt("--chunk-kb", 0) << 10; // 0: the library's choice
    for path in &args {
        let opts = Options { threads, chunk_bytes: chunk, ..Options::default() };
        let mut best = f64::MAX;
        let (mut rows, mut diags, mut bytes) = (0, 0, 0);
        for _ in 0..repeat {
            let t = Instant::now();
            // Opened each time, as a user's parse does (mapping and faulting in are part of it).
            let source = Source::open(path.as_ref()).expect("readable file");
            bytes = source.text.len();
            let parsed = parse(&source, &opts);
            best = best.min(t.elapsed().as_secs_f64());
            rows = parsed.batches.iter().map(|b| b.lexed.rows).sum::<usize>();
            diags = parsed.diagnostics_total;
        }
        let mb = bytes as f64 / 1e6;
        println!("{path}: {rows} rows, {diags} diagnostics, {:.1} ms, {:.0} MB/s", best * 1e3, mb / best);
    }
}
