//! Criterion benchmarks of the Rust core on the largest real corpus file (skipped when
//! `../shared/corpus` is absent). `cargo bench --bench parse`. Each result is checked first.
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use threedpai_native::gcode::{lex, parse, Options, Source};

fn corpus(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus").join(name);
    p.exists().then_some(p)
}

fn bench(c: &mut Criterion) {
    let Some(path) = corpus("sliced/ps_voron2_torus_x4_0.2_fwretract_labels.gcode") else {
        eprintln!("skipping: the corpus (../shared/corpus) is absent");
        return;
    };
    let source = Source::open(&path).expect("readable");
    let text: &[u8] = &source.text;
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    let mut g = c.benchmark_group("gcode");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    assert_eq!(lex(text, 0, 1).rows, lines, "lexer must see every line");
    g.bench_function("lex (1 thread, no context)", |b| b.iter(|| lex(text, 0, 1).rows));
    for threads in [1, 2] {
        let opts = Options { threads, ..Options::default() };
        let parsed = parse(&source, &opts);
        assert_eq!(parsed.batches.iter().map(|b| b.lexed.rows).sum::<usize>(), lines);
        assert_eq!(parsed.context.summary.layers.len(), text.windows(14).filter(|w| w == b"\n;LAYER_CHANGE").count());
        g.bench_function(format!("parse ({threads} threads)"), |b| b.iter(|| parse(&source, &opts).batches.len()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
