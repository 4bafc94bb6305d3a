//! Compares the planner with real Klipper (batch mode) on the corpus:
//! `cargo run --release --example plan_accuracy [-- --ref DIR] [--filter TEXT] [-v]
//! [--timer off|batch|reads] [--bench]`.
//!
//! For every file with a row in `reference.csv`, under both reference configs (with the row's
//! `config_override`), it plans the file in strict mode (stopping where Klipper stops) and
//! prints Klipper's time, ours and the relative error; for traced files also the per-move
//! start-time error (p50/p99/max, ms) against `traces/<stem>__<config>.csv.gz`, rows matched in
//! order (a Klipper XYZ move and its extruder part are one row, as in ours). Notes flag G28,
//! unknown-command and M204 counts that differ from Klipper's log.
//!
//! Other modes: `--throughput FILE` (parse + plan speed on one core), `--dump FILE
//! [--config ref_fast] [--from N] [--to M]` (one file's rows).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use threedpai_native::gcode::{parse, Options, Source};
use threedpai_native::plan::{kind, plan, plan_reusing, FlushTimer, PlanOptions, PrinterConfig};

/// Minimal CSV reader (RFC 4180 quoting).
fn read_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Inflates a single-member gzip file (header skipped by hand, raw deflate by miniz_oxide).
fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 18 || data[0] != 0x1f || data[1] != 0x8b || data[2] != 8 {
        return None;
    }
    let flags = data[3];
    let mut i = 10;
    if flags & 4 != 0 {
        let xlen = u16::from_le_bytes([data[i], data[i + 1]]) as usize;
        i += 2 + xlen;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            while i < data.len() && data[i] != 0 {
                i += 1;
            }
            i += 1;
        }
    }
    if flags & 2 != 0 {
        i += 2;
    }
    miniz_oxide::inflate::decompress_to_vec(data.get(i..)?).ok()
}

struct TraceRow {
    kind: u8,
    print_time: f64,
    move_t: f64,
}

fn read_trace(path: &Path) -> Option<Vec<TraceRow>> {
    let raw = std::fs::read(path).ok()?;
    let text = String::from_utf8(gunzip(&raw)?).ok()?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let mut f = line.split(',');
        let k = f.next()?.bytes().next()?;
        let pt: f64 = f.next()?.parse().ok()?;
        let mt: f64 = f.next()?.parse().ok()?;
        out.push(TraceRow { kind: k, print_time: pt, move_t: mt });
    }
    Some(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let ref_dir = PathBuf::from(arg("--ref").unwrap_or_else(|| "/work/shared/klipper-reference".into()));
    let corpus = ref_dir.parent().map(|p| p.join("corpus")).unwrap_or_default();
    let filter = arg("--filter");
    let timer = match arg("--timer").as_deref() {
        Some("off") => FlushTimer::Off,
        Some("batch") => FlushTimer::Batch,
        _ => FlushTimer::Reads(4096),
    };
    let verbose = args.iter().any(|a| a == "-v");
    let bench = args.iter().any(|a| a == "--bench");
    if let Some(path) = arg("--dump") {
        // `--dump FILE [--config ref_fast] [--from N] [--to M]`: the rows of one file.
        dump(&path, &ref_dir.join(format!("{}.cfg", arg("--config").unwrap_or_else(|| "ref_cartesian".into()))), &arg);
        return;
    }
    if let Some(path) = arg("--throughput") {
        throughput(&path, &ref_dir.join("ref_cartesian.cfg"));
        return;
    }
    let Ok(csv) = std::fs::read_to_string(ref_dir.join("reference.csv")) else {
        eprintln!("no reference.csv under {}", ref_dir.display());
        return;
    };
    let rows = read_csv(&csv);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("column {name}"));
    let (c_file, c_corpus, c_config, c_override, c_status) =
        (col("file"), col("corpus"), col("config"), col("config_override"), col("status"));
    let (c_time, c_err_time, c_trace) = (col("klipper_print_time_s"), col("print_time_at_error_s"), col("trace_file"));
    let (c_g28n, c_g28s, c_unknown, c_m204) =
        (col("g28_count"), col("g28_s"), col("unknown_cmds"), col("invalid_m204"));
    let mut configs: HashMap<String, String> = HashMap::new();
    for name in ["ref_cartesian", "ref_fast"] {
        configs.insert(name.into(), std::fs::read_to_string(ref_dir.join(format!("{name}.cfg"))).expect("config file"));
    }
    let mut parsed_cache: HashMap<String, (Source, threedpai_native::gcode::Parsed)> = HashMap::new();

    println!(
        "{:<46} {:<13} {:>3} {:>11} {:>11} {:>9} {:>7} {:>8} {:>8} {:>8}  notes",
        "file", "config", "st", "klipper_s", "ours_s", "err_%", "rows", "p50_ms", "p99_ms", "max_ms"
    );
    let (mut n_ok, mut n_goal, mut n_total_goal) = (0, 0, 0);
    let mut worst: Vec<(f64, String)> = Vec::new();
    let (mut max_abs_s, mut max_p99) = (0.0f64, 0.0f64);
    for r in rows.iter().skip(1) {
        if r.len() < header.len() {
            continue;
        }
        let file = &r[c_file];
        if let Some(f) = &filter {
            if !file.contains(f.as_str()) {
                continue;
            }
        }
        let path = corpus.join(&r[c_corpus]).join(file);
        if !parsed_cache.contains_key(file) {
            let Ok(source) = Source::open(&path) else {
                println!("{file}: not found at {}", path.display());
                continue;
            };
            let parsed = parse(&source, &Options { threads: 1, ..Default::default() });
            parsed_cache.insert(file.clone(), (source, parsed));
        }
        let (source, parsed) = &parsed_cache[file];
        let cfg_name = &r[c_config];
        let cfg = PrinterConfig::parse_with_overrides(&configs[cfg_name], &r[c_override]);
        let opts = PlanOptions { strict: true, flush_timer: timer, ..Default::default() };
        let t0 = Instant::now();
        let p = plan(parsed, &source.text, &cfg, &opts);
        let plan_s = t0.elapsed().as_secs_f64();
        let status = &r[c_status];
        let klipper: f64 = if status == "ok" {
            r[c_time].parse().unwrap_or(f64::NAN)
        } else {
            r[c_err_time].parse().unwrap_or(f64::NAN)
        };
        let err_pct = (p.total_time - klipper) / klipper * 100.0;
        // Per-move start times against the trace.
        let mut trace_cols = String::new();
        let mut notes = Vec::new();
        let mut p99 = f64::NAN;
        if !r[c_trace].is_empty() {
            if let Some(trace) = read_trace(&ref_dir.join(&r[c_trace])) {
                let tl = &p.timeline;
                let ours: Vec<usize> =
                    (0..tl.len()).filter(|&i| !matches!(tl.kind[i], kind::DWELL | kind::WAIT)).collect();
                let n = ours.len().min(trace.len());
                let mut errs: Vec<f64> = Vec::with_capacity(n);
                let mut kind_mismatch = 0;
                let mut first_bad: Option<(usize, f64)> = None;
                for k in 0..n {
                    let i = ours[k];
                    let tr = &trace[k];
                    let our_kind = if tl.flags[i] & threedpai_native::plan::flag::DRIP != 0 {
                        b'h'
                    } else if tl.flags[i] & threedpai_native::plan::flag::KINEMATIC != 0 {
                        b'k'
                    } else {
                        b'e'
                    };
                    if our_kind != tr.kind {
                        kind_mismatch += 1;
                    }
                    let e = (tl.t_start[i] - tr.print_time).abs() * 1e3;
                    if first_bad.is_none() && (e > 1.0 || (tl.duration(i) - tr.move_t).abs() > 1e-3) {
                        first_bad = Some((k, e));
                    }
                    errs.push(e);
                }
                errs.sort_by(|a, b| a.total_cmp(b));
                p99 = percentile(&errs, 0.99);
                trace_cols = format!(
                    "{:>7} {:>8.3} {:>8.3} {:>8.3}",
                    n,
                    percentile(&errs, 0.5),
                    p99,
                    errs.last().copied().unwrap_or(f64::NAN)
                );
                if ours.len() < trace.len() {
                    notes.push(format!("ours {} rows < trace {}", ours.len(), trace.len()));
                }
                if kind_mismatch > 0 {
                    notes.push(format!("{kind_mismatch} kind mismatches"));
                }
                if verbose {
                    if let Some((k, e)) = first_bad {
                        let i = ours[k];
                        notes.push(format!(
                            "first >1ms at row {k} line {} ({:.3} ms, ours t={:.6} d={:.6}, klipper t={:.6} d={:.6})",
                            tl.line[i],
                            e,
                            tl.t_start[i],
                            tl.duration(i),
                            trace[k].print_time,
                            trace[k].move_t
                        ));
                    }
                }
            }
        }
        if trace_cols.is_empty() {
            trace_cols = format!("{:>7} {:>8} {:>8} {:>8}", p.timeline.len(), "-", "-", "-");
        }
        if let Some((line, msg)) = &p.first_error {
            notes.push(format!("error line {line}: {msg}"));
        }
        let ref_g28: u64 = r[c_g28n].parse().unwrap_or(0);
        let ref_g28s: f64 = r[c_g28s].parse().unwrap_or(0.0);
        if ref_g28 != p.g28_count || (ref_g28s - p.g28_time).abs() > 0.001 {
            notes.push(format!("G28 {}x {:.3}s vs klipper {}x {:.3}s", p.g28_count, p.g28_time, ref_g28, ref_g28s));
        }
        let ref_unknown: u64 = r[c_unknown].parse().unwrap_or(0);
        if ref_unknown != p.unknown_total() {
            let top: Vec<String> = p.unknown_commands.iter().take(4).map(|(n, c)| format!("{n}:{c}")).collect();
            notes.push(format!("unknown {} vs {} ({})", p.unknown_total(), ref_unknown, top.join(" ")));
        }
        let ref_m204: u64 = r[c_m204].parse().unwrap_or(0);
        if ref_m204 != p.invalid_m204 {
            notes.push(format!("invalid M204 {} vs {}", p.invalid_m204, ref_m204));
        }
        if bench {
            notes.push(format!("plan {:.1} ms", plan_s * 1e3));
        }
        let st = if status == "ok" { "ok" } else { "err" };
        println!(
            "{:<46} {:<13} {:>3} {:>11.3} {:>11.3} {:>9.4} {}  {}",
            file.trim_end_matches(".gcode"),
            cfg_name,
            st,
            klipper,
            p.total_time,
            err_pct,
            trace_cols,
            notes.join("; ")
        );
        if status == "ok" {
            n_ok += 1;
            let good_total = err_pct.abs() <= 0.01;
            let good_trace = p99.is_nan() || p99 <= 5.0;
            if good_total && good_trace {
                n_goal += 1;
            }
            if good_total {
                n_total_goal += 1;
            }
            worst.push((err_pct.abs(), format!("{file} {cfg_name} ({:+.4} s)", p.total_time - klipper)));
            max_abs_s = max_abs_s.max((p.total_time - klipper).abs());
            if !p99.is_nan() {
                max_p99 = max_p99.max(p99);
            }
        }
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!();
    println!("completed runs: {n_ok}; total within 0.01%: {n_total_goal}; total and p99 within goal: {n_goal}");
    println!("largest total difference {max_abs_s:.4} s (Klipper prints 3 decimals); largest p99 start error {max_p99:.4} ms");
    for (e, name) in worst.iter().take(5) {
        println!("  worst: {name}: {e:.4}%");
    }
}

fn dump(path: &str, cfg_path: &Path, arg: &dyn Fn(&str) -> Option<String>) {
    let source = Source::open(path.as_ref()).expect("readable G-code file");
    let parsed = parse(&source, &Options { threads: 1, ..Default::default() });
    let cfg = PrinterConfig::parse(&std::fs::read_to_string(cfg_path).unwrap_or_default());
    let p = plan(&parsed, &source.text, &cfg, &PlanOptions { strict: true, ..Default::default() });
    let t = &p.timeline;
    let from: usize = arg("--from").and_then(|s| s.parse().ok()).unwrap_or(0);
    let to: usize = arg("--to").and_then(|s| s.parse().ok()).unwrap_or(t.len()).min(t.len());
    for i in from..to {
        println!(
            "{i} line {} {} t={:.6} d={:.9} v={:.4}/{:.4}/{:.4} a={} from ({:.3},{:.3},{:.3},{:.5})",
            t.line[i],
            kind::NAMES[t.kind[i] as usize],
            t.t_start[i],
            t.duration(i),
            t.start_v[i],
            t.cruise_v[i],
            t.end_v[i],
            t.accel[i],
            t.start_x[i],
            t.start_y[i],
            t.start_z[i],
            t.start_e[i]
        );
    }
    println!("total {:.6} s; first error {:?}", p.total_time, p.first_error);
}

/// Parse + plan speed on one core: best of 5 runs each.
fn throughput(path: &str, cfg_path: &Path) {
    let source = Source::open(path.as_ref()).expect("readable G-code file");
    let cfg = PrinterConfig::parse(&std::fs::read_to_string(cfg_path).unwrap_or_default());
    let popts = Options { threads: 1, ..Default::default() };
    let mb = source.text.len() as f64 / 1e6;
    let (mut best_parse, mut best_plan, mut best_totals, mut best_both) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut total = 0.0;
    let mut rows = 0;
    let mut best_input = f64::MAX;
    let mut first_both = 0.0;
    let mut first_parse = 0.0;
    let mut cmds = 0;
    let mut reuse = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        let parsed = parse(&source, &popts);
        let t1 = Instant::now();
        // The previous run's rows are reused, as the parser's columns are (mimalloc).
        let p = plan_reusing(&parsed, &source.text, &cfg, &PlanOptions::default(), reuse.take());
        let t2 = Instant::now();
        let q = plan(&parsed, &source.text, &cfg, &PlanOptions { record: false, ..Default::default() });
        let t3 = Instant::now();
        let n = threedpai_native::plan::Input::new(&parsed, &source.text, &cfg).count();
        best_input = best_input.min(t3.elapsed().as_secs_f64());
        cmds = n;
        assert_eq!(p.total_time, q.total_time);
        total = p.total_time;
        rows = p.timeline.len();
        best_parse = best_parse.min((t1 - t0).as_secs_f64());
        best_plan = best_plan.min((t2 - t1).as_secs_f64());
        best_totals = best_totals.min((t3 - t2).as_secs_f64());
        best_both = best_both.min((t2 - t0).as_secs_f64());
        if first_both == 0.0 {
            first_both = (t2 - t0).as_secs_f64();
            first_parse = (t1 - t0).as_secs_f64();
        }
        drop(parsed);
        reuse = Some(p.timeline);
    }
    println!("{path}: {mb:.1} MB, {rows} rows, print time {total:.3} s");
    println!("  parse           {:7.1} ms  {:6.0} MB/s", best_parse * 1e3, mb / best_parse);
    println!(
        "  plan (rows)     {:7.1} ms  {:6.0} MB/s  {:.0} ns/row",
        best_plan * 1e3,
        mb / best_plan,
        best_plan * 1e9 / rows.max(1) as f64
    );
    println!("  plan (totals)   {:7.1} ms  {:6.0} MB/s", best_totals * 1e3, mb / best_totals);
    println!("  parse + plan    {:7.1} ms  {:6.0} MB/s", best_both * 1e3, mb / best_both);
    println!(
        "  (first run, cold: parse {:.1} ms + plan {:.1} ms = {:.0} MB/s; memory paged in for the first time)",
        first_parse * 1e3,
        (first_both - first_parse) * 1e3,
        mb / first_both
    );
    println!("  (commands only  {:7.1} ms for {cmds} commands)", best_input * 1e3);
}
