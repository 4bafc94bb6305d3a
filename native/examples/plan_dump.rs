//! Dumps a file's timeline: `cargo run --release --example plan_dump -- FILE CONFIG [FROM TO]`.
use threedpai_native::gcode::{parse, Options, Source};
use threedpai_native::plan::{plan, PlanOptions, PrinterConfig};
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let src = Source::open(a[0].as_ref()).unwrap();
    let parsed = parse(&src, &Options { threads: 1, ..Default::default() });
    let cfg = PrinterConfig::parse(&std::fs::read_to_string(&a[1]).unwrap());
    let p = plan(&parsed, &src.text, &cfg, &PlanOptions { strict: true, ..Default::default() });
    let from: usize = a.get(2).map_or(0, |s| s.parse().unwrap());
    let to: usize = a.get(3).map_or(p.timeline.len(), |s| s.parse().unwrap());
    let t = &p.timeline;
    for i in from..to.min(t.len()) {
        println!("{i} line {} k{} f{} t={:.6} d={:.9} v={:.4}/{:.4}/{:.4} a={} start=({:.3},{:.3},{:.3},{:.5})", t.line[i], t.kind[i], t.flags[i], t.t_start[i], t.duration(i), t.start_v[i], t.cruise_v[i], t.end_v[i], t.accel[i], t.start_x[i], t.start_y[i], t.start_z[i], t.start_e[i]);
    }
    println!("total {:.6} diags {:?}", p.total_time, p.diagnostics.iter().take(5).collect::<Vec<_>>());
}
