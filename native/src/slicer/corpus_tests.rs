//! Runs the slicer module over every file of the real corpus (`shared/corpus/{public,sliced}`)
//! and checks what each file is known to contain. Skipped, with a message, when the corpus is
//! absent. The corpus directory is `$THREEDPAI_CORPUS`, else the first of
//! `<crate>/../shared/corpus`, `<crate>/../../shared/corpus`, `/work/shared/corpus` that exists.
use super::meta::{self, Fact};
use super::producer;
use super::tags::{self, is_blank, trim, trim_start, uint, word, ImageFormat, Tag};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn corpus_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("THREEDPAI_CORPUS") {
        return Some(PathBuf::from(d)).filter(|p| p.is_dir());
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.join("../shared/corpus"), here.join("../../shared/corpus"), PathBuf::from("/work/shared/corpus")]
        .into_iter()
        .find(|p| p.join("public").is_dir())
}

/// Every corpus file (not `.md`, not the binary `.bgcode`), as (name, path).
fn corpus_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for sub in ["public", "sliced"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".md") || name.ends_with(".bgcode") {
                continue;
            }
            files.push((name, e.path()));
        }
    }
    files.sort();
    files
}

#[derive(Default)]
struct Thumb {
    format: Option<ImageFormat>,
    width: u32,
    height: u32,
    len: u64,
    lines: Vec<Vec<u8>>,
}

/// What the module finds in one file.
#[derive(Default)]
struct Scan {
    layers: usize,
    layer_at: Vec<f64>,
    layer_z: usize,
    heights: usize,
    widths: usize,
    layer_moves: Vec<i64>,
    features: BTreeSet<String>,
    feature_tags: usize,
    objects: BTreeSet<String>,
    object_starts: usize,
    object_ends: usize,
    cmd_objects: BTreeSet<String>,
    cmd_defines: BTreeSet<String>,
    thumbs: Vec<Thumb>,
    facts: Vec<Fact>,
    config_blocks: (usize, usize),
    header_blocks: (usize, usize),
    in_config: Vec<(String, String)>,
    config_all: Vec<(String, String)>,
    cura_payload: String,
    producer: Option<producer::Producer>,
    flavour: Option<String>,
}

/// Splits a line into (command part, comment, comment-only).
fn split_line(line: &[u8]) -> (&[u8], Option<&[u8]>, bool) {
    let t = tags::trim_start(line);
    if t.first() == Some(&b'(') {
        let inner = &t[1..];
        let end = inner.iter().rposition(|&b| b == b')').unwrap_or(inner.len());
        return (&[], Some(&inner[..end]), true);
    }
    if let Some(p) = line.iter().position(|&b| b == b';') {
        let cmd = &line[..p];
        return (cmd, Some(&line[p + 1..]), tags::trim(cmd).is_empty());
    }
    if let Some(p) = line.iter().position(|&b| b == b'(') {
        let inner = &line[p + 1..];
        let end = inner.iter().rposition(|&b| b == b')').unwrap_or(inner.len());
        return (&line[..p], Some(&inner[..end]), false);
    }
    (line, None, false)
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scan(data: &[u8]) -> Scan {
    let mut r = Scan::default();
    let n = data.len().min(64 * 1024);
    r.producer = producer::detect(&data[..n], &data[data.len() - n..]);
    r.flavour = producer::flavour(&data[..n], &data[data.len() - n..]);
    let mut thumb: Option<Thumb> = None;
    let mut in_config = false;
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (cmd, comment, only) = split_line(line);
        if let Some(oc) = object_command(cmd) {
            match oc {
                ObjectCommand::Start(n) => {
                    r.cmd_objects.insert(s(n));
                }
                ObjectCommand::Define(n) => {
                    r.cmd_defines.insert(s(n));
                }
                ObjectCommand::End => {}
            }
        }
        let Some(c) = comment else { continue };
        if let Some(i) = layer_move(c) {
            r.layer_moves.push(i);
        }
        let tag = tags::classify(c);
        if let Some(t) = thumb.as_mut() {
            if tag == Some(Tag::ThumbnailEnd) {
                r.thumbs.push(thumb.take().unwrap());
            } else {
                t.lines.push(c.to_vec());
            }
            continue;
        }
        match tag {
            Some(Tag::LayerChange) => r.layers += 1,
            Some(Tag::LayerChangeAt(z)) => {
                r.layers += 1;
                r.layer_at.push(z);
            }
            Some(Tag::LayerZ(_)) => r.layer_z += 1,
            Some(Tag::Height(_)) => r.heights += 1,
            Some(Tag::Width(_)) => r.widths += 1,
            Some(Tag::Feature(f)) => {
                r.feature_tags += 1;
                r.features.insert(s(f));
            }
            Some(Tag::ObjectStart(o)) => {
                r.object_starts += 1;
                r.objects.insert(s(o));
            }
            Some(Tag::ObjectEnd) => r.object_ends += 1,
            Some(Tag::ThumbnailBegin { format, width, height, len }) => {
                thumb = Some(Thumb { format: Some(format), width, height, len, lines: Vec::new() });
            }
            Some(Tag::ThumbnailEnd) => panic!("thumbnail end without begin"),
            Some(Tag::ConfigBegin) => {
                r.config_blocks.0 += 1;
                in_config = true;
            }
            Some(Tag::ConfigEnd) => {
                r.config_blocks.1 += 1;
                in_config = false;
            }
            Some(Tag::HeaderBegin) => r.header_blocks.0 += 1,
            Some(Tag::HeaderEnd) => r.header_blocks.1 += 1,
            None => {}
        }
        if !only {
            continue;
        }
        if in_config {
            if let Some(kv) = meta::config_line(c) {
                r.in_config.push(kv);
            }
        }
        if let Some(kv) = meta::config_line(c) {
            r.config_all.push(kv);
        }
        if let Some(p) = c.strip_prefix(b"SETTING_3 ") {
            r.cura_payload.push_str(&String::from_utf8_lossy(p));
        } else {
            r.facts.extend(meta::facts(c));
        }
    }
    assert!(thumb.is_none(), "thumbnail without end");
    r
}

/// `slicer_estimate_s` per file from the Klipper reference table, when present.
fn reference_estimates(corpus: &Path) -> Option<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(corpus.join("../klipper-reference/reference.csv")).ok()?;
    let mut rows = text.lines().map(parse_csv_line);
    let header = rows.next()?;
    let fi = header.iter().position(|h| h == "file")?;
    let ei = header.iter().position(|h| h == "slicer_estimate_s")?;
    let mut out = BTreeMap::new();
    for row in rows {
        if let (Some(f), Some(e)) = (row.get(fi), row.get(ei)) {
            if let Ok(v) = e.parse::<f64>() {
                out.insert(f.clone(), v);
            }
        }
    }
    Some(out)
}

fn parse_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// What each file is known to contain (counts verified with grep on the files).
struct Expect {
    file: &'static str,
    /// (name, version) or None when the file names no producer.
    producer: Option<(&'static str, Option<&'static str>)>,
    flavour: Option<&'static str>,
    /// LayerChange + LayerChangeAt tags.
    layers: usize,
    /// `; move to next layer (N)` comments (Slic3r verbose).
    layer_moves: usize,
    /// Embedded thumbnails.
    thumbs: usize,
}

const fn e(file: &'static str, producer: Option<(&'static str, Option<&'static str>)>, flavour: Option<&'static str>, layers: usize, thumbs: usize) -> Expect {
    Expect { file, producer, flavour, layers, layer_moves: 0, thumbs }
}

const EXPECT: &[Expect] = &[
    // public/
    e("bambu_1.07_x1_xmaspud_ams.gcode", Some(("BambuStudio", Some("01.07.06.92"))), Some("marlin"), 137, 0),
    e("cncjs_circle_G2.gcode", None, None, 0, 0),
    e("cncjs_spaces.gcode", None, None, 0, 0),
    e("cncjs_special_fields_N_checksum.gcode", None, None, 0, 0),
    e("cop_cura_4.10_reprap.gcode", Some(("Cura", Some("4.10.0"))), Some("reprap"), 25, 0),
    e("cop_icesl.gcode", Some(("IceSL", None)), None, 42, 0),
    e("cop_ideamaker_4.2.gcode", Some(("ideaMaker", Some("4.2.0.5250"))), None, 54, 0),
    e("cop_kirimoto_3.0.gcode", Some(("Kiri:Moto", Some("3.0.D24"))), None, 25, 0),
    e("cop_kisslicer_2.0.6.gcode", Some(("KISSlicer", Some("2.0.6"))), None, 36, 0),
    e("cop_prusaslicer_2.3.3.gcode", Some(("PrusaSlicer", Some("2.3.3+x64"))), Some("reprap"), 125, 2),
    e("cop_prusaslicer_2.4_m486.gcode", Some(("PrusaSlicer", Some("2.4.0-alpha1+win64"))), Some("reprap"), 25, 2),
    e("cop_slic3r_1.3.1dev.gcode", Some(("Slic3r", Some("1.3.1-dev"))), Some("reprap"), 0, 0),
    e("cop_superslicer_2.3.56_klipper.gcode", Some(("SuperSlicer", Some("2.3.56"))), Some("klipper"), 25, 2),
    e("gp_cura_2.3.1_puzzle.gcode", Some(("Cura", Some("2.3.1"))), Some("reprap"), 119, 0),
    e("gp_fullcontrol_ripple_vase.gcode", Some(("FullControl", None)), None, 0, 0),
    e("gp_mach3_cnc.gcode", None, None, 0, 0),
    e("gp_prusaslicer_2.6.1_benchy.gcode", Some(("PrusaSlicer", Some("2.6.1+MacOS-x64"))), Some("marlin2"), 160, 2),
    e("gp_prusaslicer_2.7.4_screw_arcs.gcode", Some(("PrusaSlicer", Some("2.7.4+MacOS-x64"))), Some("marlin2"), 139, 2),
    e("gp_slic3rpe_1.33_benchy_arcs.gcode", Some(("Slic3r PE", Some("1.33.3-prusa3d"))), Some("reprap"), 0, 0),
    e("klipper_big_M808_loop.gcode", None, None, 0, 0),
    e("klipper_commands.test", None, None, 0, 0),
    e("klipper_exclude_object.test", None, None, 0, 0),
    e("klipper_gcode_arcs.test", None, None, 0, 0),
    e("klipper_move.gcode", None, None, 0, 0),
    e("klipper_pressure_advance.test", None, None, 0, 0),
    e("libbgcode_prusaslicer_2.8.1_mini_cube.gcode", Some(("PrusaSlicer", Some("2.8.1"))), Some("marlin2"), 31, 2),
    e("mb_miracle_grue_20mm_box_Aaxis.gcode", Some(("Miracle-Grue", Some("0.04 alpha"))), None, 41, 0),
    e("mb_skeinforge_20mm_box.gcode", Some(("Skeinforge", Some("12.01.13"))), None, 37, 0),
    e("mb_skeinforge_dual_hilbert_cube.gcode", Some(("Skeinforge", None)), None, 222, 0),
    e("mk_bambustudio_1.10_k1max_arcs.gcode", Some(("BambuStudio", Some("01.10.02.76"))), Some("klipper"), 25, 2),
    e("mk_crealityprint_5.1.4_k1max.gcode", Some(("Creality Print", Some("5.1.4.10249"))), Some("klipper"), 20, 0),
    e("mk_cura_5.9.1_k1max.gcode", Some(("Cura", Some("5.9.1"))), Some("marlin"), 25, 0),
    e("mk_ideamaker_5.1.4.gcode", Some(("ideaMaker", Some("5.1.4.8480"))), Some("reprapfirmware"), 20, 0),
    e("mk_orcaslicer_2.3.0b2_k1max_klipper.gcode", Some(("OrcaSlicer", Some("2.3.0-beta2"))), Some("klipper"), 190, 2),
    e("um3_cura_4.5_griffin_header.gcode", Some(("Cura", Some("4.5.0"))), Some("griffin"), 0, 0),
    // sliced/
    e("cu_ender3_box20_0.2_20grid.gcode", Some(("Cura", Some("4.13.0"))), Some("marlin"), 100, 0),
    e("cu_ender3_mushroom_0.2_20_support.gcode", Some(("Cura", Some("4.13.0"))), Some("marlin"), 190, 0),
    e("cu_ender3_vase_spiralize_0.2.gcode", Some(("Cura", Some("4.13.0"))), Some("marlin"), 600, 0),
    e("cu_um2_sphere40_0.15_20_ultigcode.gcode", Some(("Cura", Some("4.13.0"))), Some("ultigcode"), 532, 0),
    e("cu_voron2_torus_0.2_rrf_relE.gcode", Some(("Cura", Some("4.13.0"))), Some("reprap"), 100, 0),
    e("ps_ender3_cylinder_0.20_100rect.gcode", Some(("PrusaSlicer", Some("2.5.0"))), Some("marlin"), 200, 0),
    e("ps_ender3_vase_spiral_0.20.gcode", Some(("PrusaSlicer", Some("2.5.0"))), Some("marlin"), 600, 0),
    e("ps_mk3s_box20_0.20_15gyroid.gcode", Some(("PrusaSlicer", Some("2.5.0"))), Some("marlin"), 100, 0),
    e("ps_mk3s_mushroom_0.30_20grid_support.gcode", Some(("PrusaSlicer", Some("2.5.0"))), Some("marlin"), 246, 0),
    e("ps_mk3s_screw6_0.10_verbose.gcode", Some(("PrusaSlicer", Some("2.5.0"))), Some("marlin"), 779, 0),
    e("ps_ratrig_bearing_0.20_15cubic_support.gcode", Some(("PrusaSlicer", Some("2.5.0"))), Some("marlin"), 156, 0),
    e("ps_voron2_torus_x4_0.2_fwretract_labels.gcode", Some(("PrusaSlicer", Some("2.5.0"))), Some("marlin"), 100, 0),
    e("s3_box20_0.3_20.gcode", Some(("Slic3r", Some("1.3.0"))), Some("reprap"), 0, 0),
    Expect { layer_moves: 536, ..e("s3_bunny_0.2_20_verbose_relE.gcode", Some(("Slic3r", Some("1.3.0"))), Some("reprap"), 0, 0) },
    e("s3_mushroom_0.3_20_support_fwretract_repetier.gcode", Some(("Slic3r", Some("1.3.0"))), Some("repetier"), 0, 0),
    e("s3_torus_0.1_100rect_smoothie.gcode", Some(("Slic3r", Some("1.3.0"))), Some("smoothie"), 0, 0),
];

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Distinct feature labels of a few files (checked against `grep '^;TYPE:' | sort -u` etc.).
fn expected_features(file: &str) -> Option<BTreeSet<String>> {
    Some(set(match file {
        "cop_prusaslicer_2.4_m486.gcode" => &[
            "Bridge infill", "Custom", "External perimeter", "Internal infill", "Overhang perimeter", "Perimeter", "Skirt/Brim", "Solid infill",
            "Top solid infill",
        ],
        "bambu_1.07_x1_xmaspud_ams.gcode" => &[
            "Bottom surface", "Bridge", "Custom", "Gap infill", "Inner wall", "Internal solid infill", "Outer wall", "Overhang wall", "Prime tower",
            "Sparse infill", "Top surface",
        ],
        "mk_orcaslicer_2.3.0b2_k1max_klipper.gcode" => &[
            "Bottom surface", "Custom", "Gap infill", "Inner wall", "Internal Bridge", "Internal solid infill", "Outer wall", "Sparse infill", "Top surface",
        ],
        "cop_cura_4.10_reprap.gcode" => &["FILL", "SKIN", "SKIRT", "SUPPORT", "WALL-INNER", "WALL-OUTER"],
        "cop_ideamaker_4.2.gcode" => &["BRIDGE", "FILL", "RAFT", "SOLID-FILL", "WALL-INNER", "WALL-OUTER"],
        "cop_kisslicer_2.0.6.gcode" => &[
            "Destring/Wipe/Jump Path", "Loop Path", "Perimeter Path", "Prime Pillar Path", "Solid Path", "Sparse Infill Path", "Stacked Sparse Infill Path",
            "Travel/Ironing Path",
        ],
        "mb_miracle_grue_20mm_box_Aaxis.gcode" => &["connection path", "infill path", "inset path", "support path"],
        "mb_skeinforge_20mm_box.gcode" => &["infill", "loop", "perimeter"],
        "ps_mk3s_mushroom_0.30_20grid_support.gcode" => &[
            "Bridge infill", "Custom", "External perimeter", "Internal infill", "Overhang perimeter", "Perimeter", "Skirt/Brim", "Solid infill",
            "Support material", "Support material interface", "Top solid infill",
        ],
        "cop_icesl.gcode" | "gp_fullcontrol_ripple_vase.gcode" | "s3_box20_0.3_20.gcode" | "cop_kirimoto_3.0.gcode" => &[],
        _ => return None,
    }))
}

/// Objects: (names from comments, ids/names from EXCLUDE_OBJECT_START / M486 S, names from
/// M486 A / EXCLUDE_OBJECT_DEFINE).
fn expected_objects(file: &str) -> Option<(BTreeSet<String>, BTreeSet<String>, BTreeSet<String>)> {
    let (c, s, d): (&[&str], &[&str], &[&str]) = match file {
        "cop_prusaslicer_2.4_m486.gcode" => {
            (&["cube_1 id:0 copy 0", "cube_1 id:0 copy 1", "cylinder_2 id:1 copy 0", "union_3 id:2 copy 0"], &["0", "1", "2", "3"], &[])
        }
        "libbgcode_prusaslicer_2.8.1_mini_cube.gcode" => (&[], &["0"], &["Shape-Box"]),
        "ps_voron2_torus_x4_0.2_fwretract_labels.gcode" => (
            &["torus_R30_r10.stl id:0 copy 0", "torus_R30_r10.stl id:0 copy 1", "torus_R30_r10.stl id:0 copy 2", "torus_R30_r10.stl id:0 copy 3"],
            &[],
            &[],
        ),
        "mk_bambustudio_1.10_k1max_arcs.gcode" => (&[], &["TC_Top.stl_id_0_copy_0"], &["TC_Top.stl_id_0_copy_0"]),
        "mk_orcaslicer_2.3.0b2_k1max_klipper.gcode" => {
            (&["AzulTileTray.stl id:0 copy 0"], &["AzulTileTray.stl_id_0_copy_0"], &["AzulTileTray.stl_id_0_copy_0"])
        }
        "mk_crealityprint_5.1.4_k1max.gcode" => {
            (&[], &["Yarn_Holder_-_Both_Parts.stl_id_0_copy_0"], &["Yarn_Holder_-_Both_Parts.stl_id_0_copy_0"])
        }
        "bambu_1.07_x1_xmaspud_ams.gcode" => (&["187"], &[], &[]),
        "cop_cura_4.10_reprap.gcode" => (&["cube_1.stl", "cube_1.stl(1)", "cylinder_2.stl", "union_3.stl"], &[], &[]),
        "mk_cura_5.9.1_k1max.gcode" => (&["TC_Top.stl"], &[], &[]),
        "cu_voron2_torus_0.2_rrf_relE.gcode" => (&["models/torus_R30_r10.stl"], &[], &[]),
        "cop_ideamaker_4.2.gcode" => (&["test_bed_part0(1).3mf", "test_bed_part0.3mf", "test_bed_part1.3mf", "test_bed_part2.3mf"], &[], &[]),
        "cop_slic3r_1.3.1dev.gcode" => (&["cube_1.stl id:0 copy 0", "cube_1.stl id:0 copy 1", "cylinder_2.stl id:1 copy 0", "union_3.stl id:2 copy 0"], &[], &[]),
        "cop_superslicer_2.3.56_klipper.gcode" => {
            (&["cube_1 id:0 copy 0", "cube_1 id:0 copy 1", "cylinder_2 id:1 copy 0", "union_3 id:2 copy 0"], &[], &[])
        }
        "klipper_exclude_object.test" => (&[], &["0", "1", "2", "66"], &[]),
        "gp_cura_2.3.1_puzzle.gcode" | "cop_kisslicer_2.0.6.gcode" | "ps_ender3_cylinder_0.20_100rect.gcode" => (&[], &[], &[]),
        _ => return None,
    };
    Some((set(c), set(s), set(d)))
}

const PRUSA_FAMILY: &[&str] = &["PrusaSlicer", "SuperSlicer", "Slic3r", "Slic3r PE", "OrcaSlicer", "BambuStudio", "Creality Print"];

#[test]
fn corpus() {
    let Some(dir) = corpus_dir() else {
        eprintln!("corpus test skipped: no shared/corpus found (set THREEDPAI_CORPUS)");
        return;
    };
    let references = reference_estimates(&dir);
    if references.is_none() {
        eprintln!("corpus test: klipper-reference/reference.csv not found, estimates not compared");
    }
    let files = corpus_files(&dir);
    let expected: BTreeMap<&str, &Expect> = EXPECT.iter().map(|e| (e.file, e)).collect();
    for (name, _) in &files {
        assert!(expected.contains_key(name.as_str()), "{name}: corpus file without expectations");
    }
    let mut checked_estimates = 0;
    for (name, path) in &files {
        let ex = expected[name.as_str()];
        let data = std::fs::read(path).unwrap();
        let r = scan(&data);
        let ctx = name.as_str();

        // producer and flavour
        let got = r.producer.as_ref().map(|p| (p.name.as_str(), p.version.as_deref()));
        assert_eq!(got, ex.producer, "{ctx}: producer");
        assert_eq!(r.flavour.as_deref(), ex.flavour, "{ctx}: flavour");

        // layers
        assert_eq!(r.layers, ex.layers, "{ctx}: layer changes");
        for f in &r.facts {
            if let Fact::LayerCount(n) = f {
                assert_eq!(r.layers as i64, *n, "{ctx}: layer changes vs the stated layer count");
            }
        }
        if r.layer_z > 0 {
            assert_eq!(r.layer_z, r.layers, "{ctx}: one ;Z: per layer change");
        }
        for w in r.layer_at.windows(2) {
            assert!(w[1] >= w[0] - 1e-9, "{ctx}: layer Z goes down: {w:?}");
        }
        assert_eq!(r.layer_moves.len(), ex.layer_moves, "{ctx}: `move to next layer` comments");
        for (i, m) in r.layer_moves.iter().enumerate() {
            assert_eq!(*m, i as i64, "{ctx}: layer indices are 0, 1, 2, …");
        }

        // features and objects
        if let Some(f) = expected_features(ctx) {
            assert_eq!(r.features, f, "{ctx}: features");
        }
        if let Some((c, s, d)) = expected_objects(ctx) {
            assert_eq!(r.objects, c, "{ctx}: objects from comments");
            assert_eq!(r.cmd_objects, s, "{ctx}: objects from commands");
            assert_eq!(r.cmd_defines, d, "{ctx}: object names from commands");
        }
        if ex.producer.is_some_and(|p| PRUSA_FAMILY.contains(&p.0)) {
            assert_eq!(r.object_starts, r.object_ends, "{ctx}: PrusaSlicer-family objects start and stop in pairs");
        }
        if ctx == "ps_voron2_torus_x4_0.2_fwretract_labels.gcode" {
            let parts: BTreeSet<_> = r.objects.iter().map(|o| split_object_name(o.as_bytes())).map(|(n, i, c)| (s(n), i, c)).collect();
            let want: BTreeSet<_> = (0..4).map(|c| ("torus_R30_r10.stl".to_string(), Some(0), Some(c))).collect();
            assert_eq!(parts, want, "{ctx}: split object names");
        }
        if ctx == "mk_orcaslicer_2.3.0b2_k1max_klipper.gcode" {
            // Klipper's object name is the comment's name with blanks and colons as `_`.
            let from_comments: BTreeSet<_> = r.objects.iter().map(|o| o.replace([' ', ':'], "_")).collect();
            assert_eq!(from_comments, r.cmd_objects, "{ctx}: comment and EXCLUDE_OBJECT names agree");
        }

        // blocks
        assert_eq!(r.header_blocks.0, r.header_blocks.1, "{ctx}: header blocks balanced");
        assert_eq!(r.config_blocks.0, r.config_blocks.1, "{ctx}: config blocks balanced");
        assert!(r.config_blocks.0 <= 1, "{ctx}: one config block");

        // thumbnails
        assert_eq!(r.thumbs.len(), ex.thumbs, "{ctx}: thumbnails");
        for t in &r.thumbs {
            let lines: Vec<&[u8]> = t.lines.iter().map(Vec::as_slice).collect();
            let chars: usize = lines.iter().map(|l| tags::trim(l).len()).sum();
            assert_eq!(chars as u64, t.len, "{ctx}: declared base64 length");
            let img = meta::decode_thumbnail(&lines).unwrap_or_else(|| panic!("{ctx}: thumbnail does not decode"));
            assert_eq!(Some(meta::image_format(&img)), t.format, "{ctx}: thumbnail magic vs declared format");
            assert_eq!(meta::image_size(&img), Some((t.width, t.height)), "{ctx}: thumbnail size vs declared size");
        }

        // estimates
        let estimate = meta::print_estimate(&r.facts);
        if let Some(want) = references.as_ref().and_then(|m| m.get(ctx)) {
            let got = estimate.unwrap_or_else(|| panic!("{ctx}: no estimate, reference says {want}"));
            assert!((got - want).abs() < 1e-6 * want.max(1.0), "{ctx}: estimate {got} vs reference {want}");
            checked_estimates += 1;
        } else if references.is_some() {
            assert_eq!(estimate, None, "{ctx}: estimate where the reference has none");
        }

        // config: PrusaSlicer-family files hold their settings as `; key = value`, in a
        // `prusaslicer_config`/`CONFIG_BLOCK` block when there is one, else at the end.
        if ex.producer.is_some_and(|p| PRUSA_FAMILY.contains(&p.0)) {
            let kv = if r.config_blocks.0 > 0 { &r.in_config } else { &r.config_all };
            let cfg: BTreeMap<&str, &str> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            for key in ["layer_height", "nozzle_diameter", "gcode_flavor", "filament_diameter"] {
                assert!(cfg.contains_key(key), "{ctx}: config has no {key}");
            }
            assert_eq!(Some(cfg["gcode_flavor"].to_ascii_lowercase()), r.flavour, "{ctx}: flavour is the config's gcode_flavor");
            let lh = r.facts.iter().rev().find_map(|f| match f {
                Fact::Setting { key, value } if key == "layer_height" => Some(value.as_str()),
                _ => None,
            });
            assert_eq!(lh, Some(cfg["layer_height"]), "{ctx}: layer_height fact vs config");
            assert!(cfg.len() > 100, "{ctx}: only {} config keys", cfg.len());
        }

        // Cura SETTING_3
        if !r.cura_payload.is_empty() {
            let kv = meta::cura_settings(&r.cura_payload);
            let m: BTreeMap<&str, &str> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert!(!m.is_empty(), "{ctx}: SETTING_3 gives no settings");
            match ctx {
                "gp_cura_2.3.1_puzzle.gcode" => {
                    assert_eq!(m.get("layer_height"), Some(&"0.2"), "{ctx}");
                    assert_eq!(m.get("retraction_speed"), Some(&"45"), "{ctx}");
                    assert_eq!(m.get("support_enable"), Some(&"False"), "{ctx}");
                }
                "cop_cura_4.10_reprap.gcode" => {
                    assert_eq!(m.get("adhesion_type"), Some(&"skirt"), "{ctx}");
                    assert_eq!(m.get("extruder.0.infill_sparse_density"), Some(&"45"), "{ctx}");
                    assert_eq!(m.get("extruder.0.wall_thickness"), Some(&"2"), "{ctx}");
                }
                "um3_cura_4.5_griffin_header.gcode" => {
                    assert_eq!(m.get("extruder.0.brim_gap"), Some(&"1"), "{ctx}");
                    assert_eq!(m.get("extruder.1.infill_sparse_density"), Some(&"10"), "{ctx}");
                }
                _ => panic!("{ctx}: unexpected SETTING_3 block"),
            }
        }
    }
    if references.is_some() {
        assert!(checked_estimates >= 20, "only {checked_estimates} estimates compared");
    }
    eprintln!("corpus test: {} files checked, {checked_estimates} estimates compared", files.len());
}

#[test]
#[ignore = "prints what the module finds in each corpus file"]
fn corpus_dump() {
    let Some(dir) = corpus_dir() else { return };
    for (name, path) in corpus_files(&dir) {
        let r = scan(&std::fs::read(&path).unwrap());
        println!(
            "{name}: producer={:?} flavour={:?} layers={} z={} moves={} objects={:?} cmd={:?} thumbs={:?} estimate={:?}\n   features={:?}\n   facts={:?}",
            r.producer,
            r.flavour,
            r.layers,
            r.layer_z,
            r.layer_moves.len(),
            r.objects,
            r.cmd_objects,
            r.thumbs.iter().map(|t| (t.format, t.width, t.height, t.len)).collect::<Vec<_>>(),
            meta::print_estimate(&r.facts),
            r.features,
            r.facts.iter().filter(|f| !matches!(f, Fact::EstimatedTime { mode, .. } if mode == "elapsed" || mode == "remaining")).collect::<Vec<_>>(),
        );
    }
}

/// Tiny deterministic generator for the no-panic test.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn exercise(b: &[u8]) {
    let _ = tags::classify(b);
    let _ = layer_move(b);
    let _ = tags::extrusion_size(b);
    let _ = split_object_name(b);
    let _ = object_command(b);
    let _ = meta::facts(b);
    let _ = meta::fact(b);
    let _ = meta::config_line(b);
    let _ = meta::parse_duration(&String::from_utf8_lossy(b));
    let _ = meta::cura_settings(&String::from_utf8_lossy(b));
    let _ = meta::decode_thumbnail(&[b]);
    let _ = meta::image_format(b);
    let _ = meta::image_size(b);
    let _ = producer::detect(b, b);
    let _ = producer::flavour(b, &b[b.len() / 2..]);
}

#[test]
fn no_panic() {
    const TRICKY: &[&str] = &[
        " thumbnail_QOI begin 313x173 14412",
        " thumbnail begin 16x16 808",
        " thumbnail_ begin x 1",
        "; --- layer 0 (0.250 @ 0.255) ---",
        "; --- layer 1 (0.200 @ 0.45 ---",
        " 'Perimeter Path', 0.3 [feed mm/s], 7.1 [head mm/s]",
        " layer 12, Z = 2.450",
        " BEGIN_LAYER_OBJECT z=0.263 z_thickness=0.263",
        "<layer> 0.135 ",
        "<perimeter> outer ",
        "Slice 0, 1 Extruder",
        "Layer Height: \t0.600",
        "infill path, length: 12",
        " start printing object, unique label id: 187",
        " printing object cube_1 id:0 copy 1",
        " SuperSlicer_config = begin",
        " model printing time: 1h 57m 37s; total estimated time: 2h 4m 35s",
        " estimated printing time (normal mode) = 1d 2h 3m 4s",
        " filament used = 622.4mm (4.4cm3)",
        "    Ext #1  =   305.09 mm  (0.734 cm^3)",
        " --- print time: 806s ---",
        "   Plastic volume: 3469.45 mm^3 (3.47 cc)",
        " tool H0.200 W0.480",
        " move to next layer (535)",
        "EXCLUDE_OBJECT_START NAME=\"a b\"",
        "M486 A\"x\"",
        "SETTING_3 {\"global_quality\": \"[general]\\\\nversion = 4\\\\n[values]\\\\nlayer_height = 0.2\\\\n\", \"extruder_quality\": [\"\\u00e9\"]}",
        "{\"a\": [\"\\ud83d\\ude00\", {\"b\": [1, true, null]}]}",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
        " generated by Slic3r Prusa Edition",
        "(* Generated by Miracle-Grue v",
        "; KISSlicer - FREE\n; version \n",
    ];
    for line in TRICKY {
        let b = line.as_bytes();
        for end in 0..=b.len() {
            exercise(&b[..end]);
            exercise(&b[end..]);
        }
    }
    let mut rng = Lcg(0x5eed);
    let alphabet = b" ;:=,.()<>@'\"-_0123456789xXabeEHWZLAYERTPmslpft#\\[]{}\n\t\r\xff\xc3";
    for _ in 0..30_000 {
        let n = (rng.next() % 48) as usize;
        let v: Vec<u8> = (0..n)
            .map(|_| if rng.next() & 3 == 0 { rng.next() as u8 } else { alphabet[(rng.next() as usize) % alphabet.len()] })
            .collect();
        exercise(&v);
        // also behind a real prefix, to reach the deeper branches
        for prefix in ["TYPE:", "thumbnail_", " layer 1, Z = ", "; --- layer 1 (", "'a", "<layer>", "M486 S", "estimated printing time (", "SETTING_3 {\""] {
            let mut w = prefix.as_bytes().to_vec();
            w.extend_from_slice(&v);
            exercise(&w);
        }
    }
}

// ---- test-only readers: an independent reading of object commands and Slic3r layer comments,
// to check the parser's context against ----

/// Slic3r / PrusaSlicer ≤ 2.4 verbose mode: the trailing comment of the Z move,
/// `G1 Z0.350 F7800.000 ; move to next layer (0)` (s3_bunny_0.2_20_verbose_relE), gives the
/// layer index. Slic3r 1.x writes no other layer marker; PrusaSlicer writes it besides
/// `;LAYER_CHANGE`, so use it only for files without [`Tag::LayerChange`].
fn layer_move(comment: &[u8]) -> Option<i64> {
    let r = trim_start(comment).strip_prefix(b"move to next layer (")?;
    let close = r.iter().position(|&b| b == b')')?;
    std::str::from_utf8(&r[..close]).ok()?.parse().ok()
}

/// Splits PrusaSlicer's object label `cube_1 id:0 copy 1` into (`cube_1`, Some(0), Some(1)).
/// Other names come back whole with `None`s.
fn split_object_name(name: &[u8]) -> (&[u8], Option<u32>, Option<u32>) {
    let name = trim(name);
    if let Some(p) = name.windows(4).rposition(|w| w == b" id:") {
        let rest = &name[p + 4..];
        if let Some(c) = rest.windows(6).position(|w| w == b" copy ") {
            let id = uint(&rest[..c]);
            let copy = uint(&rest[c + 6..]);
            if let (Some(id), Some(copy)) = (id, copy) {
                return (&name[..p], Some(id as u32), Some(copy as u32));
            }
        }
    }
    (name, None, None)
}

/// An object command (not a comment): what [`object_command`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ObjectCommand<'a> {
    /// `EXCLUDE_OBJECT_START NAME=x` (name) or `M486 S3` (id as written).
    Start(&'a [u8]),
    /// `EXCLUDE_OBJECT_END [NAME=x]` or `M486 S-1`.
    End,
    /// A name given to the current or a declared object: `M486 AShape-Box`,
    /// `EXCLUDE_OBJECT_DEFINE NAME=x …`.
    Define(&'a [u8]),
}

/// Object labels written as commands (the line without its comment):
/// * Klipper, written by Bambu/Orca/Creality Print for Klipper printers:
///   `EXCLUDE_OBJECT_START NAME=TC_Top.stl_id_0_copy_0` … `EXCLUDE_OBJECT_END NAME=…`
///   (mk_bambustudio_1.10_k1max_arcs, mk_crealityprint_5.1.4_k1max), `EXCLUDE_OBJECT_DEFINE NAME=…`.
/// * Marlin/RepRap M486 (PrusaSlicer "label objects"): `M486 S0` starts object 0, `M486 S-1` ends,
///   `M486 AShape-Box` names the current one (libbgcode_prusaslicer_2.8.1_mini_cube), `M486 T4`
///   declares the count (ignored).
fn object_command(line: &[u8]) -> Option<ObjectCommand<'_>> {
    let s = trim(line);
    let first = *s.first()?;
    match first {
        b'E' | b'e' => {
            let (cmd, rest) = split_word(s);
            let name = param(rest, b"NAME=");
            if cmd.eq_ignore_ascii_case(b"EXCLUDE_OBJECT_START") {
                name.map(ObjectCommand::Start)
            } else if cmd.eq_ignore_ascii_case(b"EXCLUDE_OBJECT_END") {
                Some(ObjectCommand::End)
            } else if cmd.eq_ignore_ascii_case(b"EXCLUDE_OBJECT_DEFINE") {
                name.map(ObjectCommand::Define)
            } else {
                None
            }
        }
        b'M' | b'm' => {
            let (cmd, rest) = split_word(s);
            let cmd = &cmd[1..];
            let cmd = &cmd[cmd.iter().position(|&b| b != b'0').unwrap_or(cmd.len())..];
            if cmd != b"486" {
                return None;
            }
            let rest = trim(rest);
            match rest.first().map(u8::to_ascii_uppercase) {
                Some(b'S') => {
                    let v = trim(word(&rest[1..]));
                    if v.starts_with(b"-") {
                        Some(ObjectCommand::End)
                    } else {
                        (uint(v).is_some()).then_some(ObjectCommand::Start(v))
                    }
                }
                Some(b'A') => {
                    let n = trim(&rest[1..]);
                    let n = unquote(n);
                    (!n.is_empty()).then_some(ObjectCommand::Define(n))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `"x"` or `'x'` → `x` (PrusaSlicer ≥ 2.6 quotes Klipper object names: `NAME='Shape-Box_id_0_copy_0'`).
fn unquote(v: &[u8]) -> &[u8] {
    for q in [b'"', b'\''] {
        if v.len() >= 2 && v[0] == q && v[v.len() - 1] == q {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&b| is_blank(b)).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Value of `KEY=value` among blank-separated words (value may be quoted).
fn param<'a>(s: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut rest = trim_start(s);
    while !rest.is_empty() {
        let (w, r) = split_word(rest);
        if w.len() > key.len() && w[..key.len()].eq_ignore_ascii_case(key) {
            return Some(unquote(&w[key.len()..]));
        }
        rest = trim_start(r);
    }
    None
}


#[cfg(test)]
mod helper_tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(layer_move(b" move to next layer (535)"), Some(535));
        assert_eq!(layer_move(b" move to first perimeter point"), None);
        assert_eq!(split_object_name(b"cube_1 id:0 copy 1"), (&b"cube_1"[..], Some(0), Some(1)));
        assert_eq!(split_object_name(b"AzulTileTray.stl id:0 copy 0"), (&b"AzulTileTray.stl"[..], Some(0), Some(0)));
        assert_eq!(split_object_name(b"cube_1.stl(1)"), (&b"cube_1.stl(1)"[..], None, None));
        assert_eq!(object_command(b"EXCLUDE_OBJECT_START NAME=TC_Top.stl_id_0_copy_0"), Some(ObjectCommand::Start(b"TC_Top.stl_id_0_copy_0")));
        assert_eq!(object_command(b"EXCLUDE_OBJECT_END NAME=TC_Top.stl_id_0_copy_0"), Some(ObjectCommand::End));
        assert_eq!(object_command(b"EXCLUDE_OBJECT_DEFINE NAME=a CENTER=150,150 POLYGON=[[1,2]]"), Some(ObjectCommand::Define(b"a")));
        assert_eq!(object_command(b"M486 S0"), Some(ObjectCommand::Start(b"0")));
        assert_eq!(object_command(b"M486 S-1"), Some(ObjectCommand::End));
        assert_eq!(object_command(b"M486 AShape-Box"), Some(ObjectCommand::Define(b"Shape-Box")));
        assert_eq!(object_command(b"M486 A\"My box\""), Some(ObjectCommand::Define(b"My box")));
        assert_eq!(object_command(b"EXCLUDE_OBJECT_START NAME='Shape-Box_id_0_copy_0'"), Some(ObjectCommand::Start(b"Shape-Box_id_0_copy_0")));
        assert_eq!(object_command(b"M486 T4"), None);
        assert_eq!(object_command(b"M486 C"), None);
        assert_eq!(object_command(b"M4860 S1"), None);
        assert_eq!(object_command(b"G1 X1"), None);
        assert_eq!(object_command(b"EXCLUDE_OBJECT NAME=a"), None);
    }
}
