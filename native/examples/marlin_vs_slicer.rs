//! Compares the Marlin model with PrusaSlicer's own `; estimated printing time (normal mode)`:
//! `cargo run --release --example marlin_vs_slicer [-- --corpus DIR] [--filter TEXT] [-v]`.
//!
//! For every corpus file (`sliced/`, `public/`) made by PrusaSlicer, SuperSlicer, OrcaSlicer or
//! Slic3r PE that states a normal-mode estimate, prints the slicer's estimate, the Marlin model
//! in PrusaSlicer's conventions (G4 ignored, G28 a plain move to 0), its difference, the G4 time
//! a printer would add, and the Klipper model's time with the generic `ref_cartesian.cfg` printer
//! for reference. `-v` adds the limits used.
use std::path::{Path, PathBuf};

use threedpai_native::gcode::{parse, Options, Source};
use threedpai_native::plan::marlin::plan_marlin;
use threedpai_native::plan::{plan, MarlinOptions, PlanOptions, PrinterConfig};

fn producer_ok(head: &[u8]) -> bool {
    let h = String::from_utf8_lossy(head).to_ascii_lowercase();
    [
        "prusaslicer",
        "superslicer",
        "orcaslicer",
        "slic3r prusa edition",
    ]
    .iter()
    .any(|p| h.contains(p))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let verbose = args.iter().any(|a| a == "-v");
    let root = PathBuf::from(arg("--corpus").unwrap_or_else(|| "../../shared/corpus".into()));
    let root = if root.exists() {
        root
    } else {
        PathBuf::from("/work/shared/corpus")
    };
    let filter = arg("--filter");
    let ref_cfg = root.join("../klipper-reference/ref_cartesian.cfg");
    let kcfg = PrinterConfig::parse(&std::fs::read_to_string(&ref_cfg).unwrap_or_default());

    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["sliced", "public"] {
        if let Ok(rd) = std::fs::read_dir(root.join(sub)) {
            files.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    files.sort();
    println!(
        "{:<48} {:>10} {:>10} {:>8} {:>8} {:>10} {:>7}",
        "file", "slicer_s", "marlin_s", "diff%", "g4_s", "klipper_s", "kdiff%"
    );
    let mut diffs = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let Ok(src) = Source::open(Path::new(&path)) else {
            continue;
        };
        let head_len = src.text.len().min(64 * 1024);
        let tail_start = src.text.len().saturating_sub(64 * 1024);
        let bg = src.bgcode.is_some();
        if !bg && !producer_ok(&src.text[..head_len]) && !producer_ok(&src.text[tail_start..]) {
            continue;
        }
        let parsed = parse(&src, &Options::default());
        let Some(est) = parsed.context.summary.estimated_time() else {
            continue;
        };
        let producer = format!("{:?}", parsed.context.summary.producer).to_ascii_lowercase();
        if !(producer_ok(producer.as_bytes())
            || producer.contains("slic3r")
            || producer_ok(&src.text[..head_len]))
        {
            continue;
        }
        let (mp, stats) = plan_marlin(
            &parsed,
            &src.text,
            None,
            &MarlinOptions::slicer_compatible(),
        );
        let kp = plan(
            &parsed,
            &src.text,
            &kcfg,
            &PlanOptions {
                record: false,
                ..Default::default()
            },
        );
        let d = (mp.total_time - est) / est * 100.0;
        diffs.push(d.abs());
        println!(
            "{:<48} {:>10.0} {:>10.1} {:>+8.2} {:>8.1} {:>10.1} {:>+7.1}",
            name,
            est,
            mp.total_time,
            d,
            stats.dwell_time,
            kp.total_time,
            (kp.total_time - est) / est * 100.0
        );
        if verbose {
            let flavor = parsed
                .context
                .summary
                .settings
                .iter()
                .find(|(k, _)| k == "gcode_flavor")
                .map(|x| x.1.clone());
            println!(
                "    flavor={:?} slicer_limits={} m20x_lines={} g28={} arcs={} unknown={:?}\n    limits={:?}",
                flavor,
                stats.slicer_limits,
                stats.m201_203_204_205,
                stats.g28_count,
                stats.arc_segments,
                mp.unknown_commands.iter().take(6).collect::<Vec<_>>(),
                stats.initial_limits
            );
        }
    }
    if !diffs.is_empty() {
        diffs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{} files; |diff| median {:.2} %, max {:.2} %",
            diffs.len(),
            diffs[diffs.len() / 2],
            diffs[diffs.len() - 1]
        );
    }
}
