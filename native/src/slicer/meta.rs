//! File-level facts from whole comment lines: estimates, filament, layer count, a few settings;
//! config/header `key = value` lines; Cura's `;SETTING_3` JSON; embedded thumbnails.
//!
//! Called only on comment-only lines, off the hot path, so these functions allocate freely.
//!
//! # Facts recognised by [`fact`] / [`facts`] (example line, corpus file)
//!
//! Estimated time (`EstimatedTime.mode`):
//! * `normal`, `silent` — PrusaSlicer family `; estimated printing time (normal mode) = 1h 2m 3s`
//!   (every ps_*/gp_prusaslicer_*/cop_superslicer file; Orca and Creality Print at the end of the
//!   file, Bambu ≥ 1.10 in the header). Old Slic3r PE `; estimated printing time = 1h 5m 24s` is
//!   `normal`.
//! * `first_layer_normal`, `first_layer_silent` — `; estimated first layer printing time (normal mode) = 52s`.
//! * `total` — Bambu/Creality/Orca `; total estimated time: 39m 16s` (mk_crealityprint_5.1.4_k1max),
//!   Cura `;TIME:451` (cop_cura_4.10_reprap), Griffin `;PRINT.TIME:480` (um3_cura_4.5_griffin_header),
//!   ideaMaker `;Print Time: 744` (cop_ideamaker_4.2), Kiri:Moto `; --- print time: 806s ---`
//!   (cop_kirimoto_3.0), KISSlicer `; Calculated-during-export Build Time: 10.16 minutes`
//!   (cop_kisslicer_2.0.6; older `; Estimated Build Time: 332.83 minutes`), Simplify3D
//!   `;   Build time: 1 hours 2 minutes`.
//! * `model` — Bambu 1.07 `; model printing time: 1h 57m 37s; total estimated time: 2h 4m 35s`
//!   (bambu_1.07_x1_xmaspud_ams; this line gives `total` first, then `model`).
//! * `placeholder` — CuraEngine run without the Cura front end writes `;TIME:6666` (and
//!   `;MATERIAL:6666`, `;MINX:2.14748e+06`) as placeholders (cu_* files).
//! * `elapsed` — Cura `;TIME_ELAPSED:1151.7` after each layer (the last one is the engine's
//!   estimate when the header holds the placeholder), Creality Print `;TIME_ELAPSED:439.6`,
//!   ideaMaker `;PRINTING_TIME: 0`.
//! * `remaining` — ideaMaker `;REMAINING_TIME: 744`.
//! * `gui`, `pre_cool` — KISSlicer `; Estimated-in-GUI Build Time: 10.18 minutes`,
//!   `; Total estimated (pre-cool) minutes: 7.99`.
//!
//! [`print_estimate`] picks the slicer's estimate of a whole print from a file's facts.
//!
//! Filament (`FilamentUsed.unit`): `mm`, `m`, `cm3`, `mm3`, `g`, `cost`. Multi-extruder values
//! on one line are summed (`; filament used [mm] = 0.00, 32105.52`, mk_orcaslicer_2.3.0b2;
//! Cura `;Filament used: 1.2m, 0.5m`). ideaMaker writes one line per extruder
//! (`;Material#1 Used: 422.7`, `;Material#2 Used: 0.0`): each is a fact, add them.
//! * PrusaSlicer family `; filament used [mm] = 1903.58`, `[cm3]`, `[g]`, `; filament cost = 0.01`.
//! * Slic3r `; filament used = 622.4mm (4.4cm3)` (s3_box20_0.3_20) → `mm` and `cm3`.
//! * Bambu header `; total filament length [mm] : 1503.61`, `; total filament weight [g] : 4.48`,
//!   `; total filament volume [cm^3] : 3616.61` (mk_bambustudio_1.10_k1max_arcs) — that value is in
//!   mm³ whatever the label says (1503.61 mm of 1.75 mm filament is 3617 mm³), so it is `mm3`.
//! * Cura `;Filament used: 0.27387m`, UltiGCode `;MATERIAL:1234` (mm³), Griffin
//!   `;EXTRUDER_TRAIN.0.MATERIAL.VOLUME_USED:2911` (mm³).
//! * ideaMaker `;Material#1 Used: 422.7` (mm), `;Material#1 Cost: 0.04`.
//! * KISSlicer `;    Ext #1  =   305.09 mm  (0.734 cm^3)` → `mm` and `cm3`.
//! * Kiri:Moto `; --- filament used: 225.03 mm ---`.
//! * Simplify3D `;   Filament length: 1442.7 mm (1.44 m)`, `;   Plastic weight: 4.29 g (0.01 lb)`,
//!   `;   Plastic volume: 3469.45 mm^3 (3.47 cc)`, `;   Material cost: 0.08`.
//!
//! Layer count: Cura `;LAYER_COUNT:25`, Bambu/Orca/Creality header `; total layer number: 137`,
//! Orca/Creality `; total layers count = 190`.
//!
//! Settings (`Setting`), normalised keys: `layer_height` (PrusaSlicer `; layer_height = 0.2`,
//! Cura `;Layer height: 0.2`, Simplify3D `;   layerHeight,0.2`, Kiri:Moto `; sliceHeight = 0.2`),
//! `first_layer_height`, `nozzle_diameter` (PrusaSlicer, UltiGCode `;NOZZLE_DIAMETER:0.4`, Griffin
//! `;EXTRUDER_TRAIN.0.NOZZLE.DIAMETER:0.8`, Simplify3D `extruderDiameter`), `filament_diameter`,
//! `filament_type`, `printer_model` (PrusaSlicer `; printer_model = MK4S`, Cura
//! `;TARGET_MACHINE.NAME:Creality K1 Max`), `max_z_height` (Bambu header). Other statistics lines
//! keep their key as written: `total filament used [g]`, `total filament cost`,
//! `total filament used for wipe tower [g]`.
use super::tags::{ImageFormat, trim};

/// One file-level fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A time estimate in seconds; `mode` says which (see the module documentation).
    EstimatedTime { mode: String, seconds: f64 },
    /// Filament used; `unit` is `mm`, `m`, `cm3`, `mm3`, `g` or `cost`.
    FilamentUsed { unit: String, value: f64 },
    /// A setting or a statistic without a dedicated variant.
    Setting { key: String, value: String },
    /// The number of layers the file states.
    LayerCount(i64),
}

fn time(mode: &str, seconds: f64) -> Fact {
    Fact::EstimatedTime { mode: mode.to_string(), seconds }
}
fn used(unit: &str, value: f64) -> Fact {
    Fact::FilamentUsed { unit: unit.to_string(), value }
}
fn setting(key: &str, value: &str) -> Fact {
    Fact::Setting { key: key.to_string(), value: value.trim().to_string() }
}

/// The most significant fact of one comment line (text after `;`), if any.
pub fn fact(comment: &[u8]) -> Option<Fact> {
    facts(comment).into_iter().next()
}

/// All facts of one comment line, most significant first.
pub fn facts(comment: &[u8]) -> Vec<Fact> {
    let raw = String::from_utf8_lossy(comment);
    let indented = raw.starts_with("  ");
    let s = raw.trim();
    let mut out = Vec::new();
    if s.is_empty() || s.len() > 4096 {
        return out;
    }
    // `model printing time: …; total estimated time: …` and
    // `filament cost = 0.65; total filament used [g] = 32.46`: several statistics on one line.
    let mut parts = s.split(';').map(str::trim).filter(|p| !p.is_empty());
    if let Some(first) = parts.next() {
        if stat(first, &mut out) {
            for p in parts {
                stat(p, &mut out);
            }
            // Bambu 1.07: put the whole-print estimate first.
            if let Some(i) = out.iter().position(|f| matches!(f, Fact::EstimatedTime { mode, .. } if mode == "total")) {
                let f = out.remove(i);
                out.insert(0, f);
            }
            return out;
        }
    }
    out.clear();
    other(s, indented, &mut out);
    out
}

/// PrusaSlicer-family / Bambu statistics; true when `p` was one.
fn stat(p: &str, out: &mut Vec<Fact>) -> bool {
    if let Some(r) = p.strip_prefix("estimated printing time") {
        let (mode, v) = mode_value(r);
        if let Some(sec) = v.and_then(parse_duration) {
            out.push(time(mode.unwrap_or("normal"), sec));
        }
        return true;
    }
    if let Some(r) = p.strip_prefix("estimated first layer printing time") {
        let (mode, v) = mode_value(r);
        if let Some(sec) = v.and_then(parse_duration) {
            out.push(time(&format!("first_layer_{}", mode.unwrap_or("normal")), sec));
        }
        return true;
    }
    if let Some(r) = p.strip_prefix("total estimated time:") {
        if let Some(sec) = parse_duration(r) {
            out.push(time("total", sec));
        }
        return true;
    }
    if let Some(r) = p.strip_prefix("model printing time:") {
        if let Some(sec) = parse_duration(r) {
            out.push(time("model", sec));
        }
        return true;
    }
    if let Some(r) = p.strip_prefix("filament used [") {
        // `filament used [mm] = 1.0, 2.0`; Creality Print's duplicate `filament used [mm]: 10882.04`
        // (colon) is skipped.
        if let Some((unit, v)) = r.split_once("] =") {
            if let Some(v) = sum(v) {
                out.push(used(unit_name(unit), v));
            }
        }
        return true;
    }
    if let Some(v) = p.strip_prefix("filament cost =") {
        if let Some(v) = sum(v) {
            out.push(used("cost", v));
        }
        return true;
    }
    if let Some(r) = p.strip_prefix("filament used =") {
        // Slic3r: `filament used = 622.4mm (4.4cm3)`
        let r = r.trim();
        if let Some((mm, rest)) = r.split_once("mm") {
            if let Ok(v) = mm.trim().parse::<f64>() {
                out.push(used("mm", v));
            }
            if let Some(cm3) = rest.trim().strip_prefix('(').and_then(|x| x.split_once("cm3")).and_then(|(v, _)| v.trim().parse().ok()) {
                out.push(used("cm3", cm3));
            }
        }
        return true;
    }
    if let Some(r) = p.strip_prefix("total filament ") {
        // Bambu header `total filament length [mm] : 1503.61` …; PrusaSlicer `total filament used [g] = 4.76`.
        let Some((key, v)) = r.split_once(" : ").or_else(|| r.split_once(" = ")) else { return false };
        let value = v.trim();
        match key {
            "length [mm]" => num(value).map(|v| out.push(used("mm", v))),
            "weight [g]" => num(value).map(|v| out.push(used("g", v))),
            "volume [cm^3]" => num(value).map(|v| out.push(used("mm3", v))),
            _ => {
                out.push(setting(&format!("total filament {key}"), value));
                Some(())
            }
        };
        return true;
    }
    if let Some(v) = p.strip_prefix("total layer number:").or_else(|| p.strip_prefix("total layers count =")) {
        if let Ok(n) = v.trim().parse() {
            out.push(Fact::LayerCount(n));
        }
        return true;
    }
    false
}

/// ` (normal mode) = 1h 2m` → (Some("normal"), Some("1h 2m")); ` = 1h` → (None, Some("1h")).
fn mode_value(r: &str) -> (Option<&str>, Option<&str>) {
    let r = r.trim_start();
    let (mode, r) = match r.strip_prefix('(').and_then(|x| x.split_once(')')) {
        Some((m, rest)) => (Some(m.trim().trim_end_matches(" mode").trim()), rest),
        None => (None, r),
    };
    (mode, r.trim_start().strip_prefix('='))
}

fn unit_name(u: &str) -> &str {
    match u.trim() {
        "cm3" | "cm^3" => "cm3",
        "mm3" | "mm^3" => "mm3",
        other => other,
    }
}

fn num(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// `0.00, 32105.52` → 32105.52; `1.2m, 0.5m` (unit suffix stripped by the caller) → 1.7.
fn sum(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        total += num(part)?;
        any = true;
    }
    any.then_some(total)
}

/// Everything that is not a PrusaSlicer-family statistic.
fn other(s: &str, indented: bool, out: &mut Vec<Fact>) {
    // Cura, Griffin, ideaMaker: `KEY:value`
    if let Some((key, v)) = s.split_once(':') {
        let v = v.trim();
        match key {
            "TIME" => {
                if let Some(sec) = num(v) {
                    // CuraEngine without the front end leaves its placeholder.
                    out.push(time(if v == "6666" { "placeholder" } else { "total" }, sec));
                }
                return;
            }
            "PRINT.TIME" | "Print Time" => {
                out.extend(num(v).map(|sec| time("total", sec)));
                return;
            }
            "TIME_ELAPSED" | "PRINTING_TIME" => {
                out.extend(num(v).map(|sec| time("elapsed", sec)));
                return;
            }
            "REMAINING_TIME" => {
                out.extend(num(v).map(|sec| time("remaining", sec)));
                return;
            }
            "LAYER_COUNT" => {
                out.extend(v.parse().ok().map(Fact::LayerCount));
                return;
            }
            "Filament used" => {
                let v = v.replace('m', "");
                out.extend(sum(&v).map(|m| used("m", m)));
                return;
            }
            "MATERIAL" => {
                if v != "6666" {
                    out.extend(num(v).map(|x| used("mm3", x)));
                }
                return;
            }
            "Layer height" => {
                out.push(setting("layer_height", v));
                return;
            }
            "NOZZLE_DIAMETER" | "EXTRUDER_TRAIN.0.NOZZLE.DIAMETER" => {
                out.push(setting("nozzle_diameter", v));
                return;
            }
            "TARGET_MACHINE.NAME" => {
                out.push(setting("printer_model", v));
                return;
            }
            "Calculated-during-export Build Time" | "Estimated Build Time" | "Estimated-in-GUI Build Time" | "Build time" => {
                let mode = if key.contains("GUI") { "gui" } else { "total" };
                out.extend(parse_duration(v).map(|sec| time(mode, sec)));
                return;
            }
            "Total estimated (pre-cool) minutes" => {
                out.extend(num(v).map(|m| time("pre_cool", m * 60.0)));
                return;
            }
            "Filament length" => {
                // Simplify3D `Filament length: 1442.7 mm (1.44 m)`
                out.extend(first_num(v).map(|mm| used("mm", mm)));
                return;
            }
            "Plastic weight" => {
                out.extend(first_num(v).map(|g| used("g", g)));
                return;
            }
            "Plastic volume" => {
                out.extend(first_num(v).map(|mm3| used("cm3", mm3 / 1000.0)));
                return;
            }
            "Material cost" => {
                out.extend(num(v).map(|c| used("cost", c)));
                return;
            }
            "max_z_height" | "filament_diameter" | "nozzle_diameter" | "layer_height" => {
                // Bambu header `; filament_diameter: 1.75`
                out.push(setting(key, v));
                return;
            }
            _ => {}
        }
        if let Some(rest) = key.strip_prefix("EXTRUDER_TRAIN.") {
            if rest.ends_with(".MATERIAL.VOLUME_USED") {
                out.extend(num(v).map(|x| used("mm3", x)));
                return;
            }
        }
        if let Some(n) = key.strip_prefix("Material#") {
            if let Some(kind) = n.split_once(' ').map(|(_, k)| k) {
                match kind {
                    "Used" => num(v).map(|x| out.push(used("mm", x))),
                    "Cost" => num(v).map(|x| out.push(used("cost", x))),
                    _ => None,
                };
                return;
            }
        }
    }
    // Kiri:Moto `--- print time: 806s ---`, `--- filament used: 225.03 mm ---`
    if let Some(r) = s.strip_prefix("--- ").and_then(|r| r.strip_suffix(" ---")) {
        if let Some(v) = r.strip_prefix("print time:") {
            out.extend(parse_duration(v).map(|sec| time("total", sec)));
        } else if let Some(v) = r.strip_prefix("filament used:") {
            out.extend(first_num(v).map(|mm| used("mm", mm)));
        }
        return;
    }
    // KISSlicer `Ext #1  =   305.09 mm  (0.734 cm^3)`
    if let Some(r) = s.strip_prefix("Ext #") {
        if let Some((_, v)) = r.split_once('=') {
            if let Some((mm, rest)) = v.split_once("mm") {
                out.extend(num(mm).map(|x| used("mm", x)));
                if let Some(c) = rest.trim().strip_prefix('(').and_then(|x| x.split_once("cm^3")).and_then(|(c, _)| num(c)) {
                    out.push(used("cm3", c));
                }
            }
        }
        return;
    }
    // Simplify3D settings summary `;   layerHeight,0.2`
    if indented {
        if let Some((k, v)) = s.split_once(',') {
            match k {
                "layerHeight" => out.push(setting("layer_height", v)),
                "extruderDiameter" => out.push(setting("nozzle_diameter", v)),
                "filamentDiameters" | "filamentDiameter" => out.push(setting("filament_diameter", v)),
                _ => {}
            }
            return;
        }
    }
    // curated config keys: `; layer_height = 0.2`
    if let Some((k, v)) = s.split_once(" = ") {
        let key = match k.trim() {
            "layer_height" | "sliceHeight" => "layer_height",
            "first_layer_height" => "first_layer_height",
            "nozzle_diameter" => "nozzle_diameter",
            "filament_diameter" => "filament_diameter",
            "filament_type" => "filament_type",
            "printer_model" => "printer_model",
            _ => return,
        };
        out.push(setting(key, v));
    }
}

fn first_num(s: &str) -> Option<f64> {
    let s = s.trim_start();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(s.len());
    num(&s[..end])
}

/// The slicer's estimate of the whole print, from a file's facts: the `normal` mode estimate
/// (PrusaSlicer family, Creality Print, Bambu ≥ 1.10), else `total` (Cura `;TIME:`, Bambu 1.07,
/// ideaMaker, Kiri:Moto, KISSlicer, Griffin, Simplify3D), else the last `elapsed` (Cura files whose
/// `;TIME:` is the 6666 placeholder).
pub fn print_estimate(facts: &[Fact]) -> Option<f64> {
    let find = |m: &str| {
        facts.iter().find_map(|f| match f {
            Fact::EstimatedTime { mode, seconds } if mode == m => Some(*seconds),
            _ => None,
        })
    };
    find("normal").or_else(|| find("total")).or_else(|| {
        facts.iter().rev().find_map(|f| match f {
            Fact::EstimatedTime { mode, seconds } if mode == "elapsed" => Some(*seconds),
            _ => None,
        })
    })
}

/// Parses a slicer duration into seconds: `1d 2h 3m 4s`, `2h 4m 35s`, `35s`, `0.815957s`,
/// `1234` (plain seconds), `1h2m`, `1 hours 2 minutes` (Simplify3D), `10.16 minutes`
/// (KISSlicer), `01:02:03` / `02:03` (h:m:s / m:s).
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 {
            return None;
        }
        let mut total = 0.0;
        for p in parts {
            let p = p.trim();
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            total = total * 60.0 + p.parse::<f64>().ok()?;
        }
        return Some(total);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total = 0.0;
    let mut count = 0;
    let mut unitless = false;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if start == i {
            return None;
        }
        let v: f64 = s[start..i].parse().ok()?;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = match &s[ustart..i] {
            "" => {
                unitless = true;
                1.0
            }
            "d" | "day" | "days" => 86400.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            _ => return None,
        };
        total += v * mult;
        count += 1;
    }
    if count == 0 || (unitless && count > 1) {
        return None;
    }
    total.is_finite().then_some(total)
}

/// One `key = value` line of a config or header block, as `(key, value)` with the value trimmed.
///
/// * PrusaSlicer family / Orca / Bambu / Creality config blocks and Slic3r's trailing settings:
///   `; layer_height = 0.2`, `; bed_custom_model =` (empty value; PrusaSlicer 2.7 writes no space
///   after `=`), `; before_layer_gcode = ;BEFORE_LAYER_CHANGE\nG92 E0.0\n;[layer_z]\n\n` (value
///   as written, `\n` escapes kept).
/// * KISSlicer `; printer_name = Test`, Kiri:Moto `; sliceHeight = 0.2` (same form).
/// * Bambu/Orca/Creality header `; filament_density: 1.24`, `; max_z_height: 5.00`; IceSL
///   `; add_brim : \tTrue` (cop_icesl): `key: value` with a lower-case snake_case key.
/// * Simplify3D settings summary `;   layerHeight,0.2` (indented at least two blanks).
///
/// Keys are identifiers (`[A-Za-z0-9_]`, starting with a letter), so statistics lines with
/// blanks or brackets in the key (`; filament used [mm] = …`, `; total layer number: 25`) and
/// tags (`;Z:0.2`, `;TIME:451`) are not config lines.
pub fn config_line(comment: &[u8]) -> Option<(String, String)> {
    let indented = comment.starts_with(b"  ");
    let s = trim(comment);
    let key_len = s.iter().position(|&b| !(b.is_ascii_alphanumeric() || b == b'_')).unwrap_or(s.len());
    if key_len == 0 || !s[0].is_ascii_alphabetic() {
        return None;
    }
    let key = &s[..key_len];
    if key.starts_with(b"SETTING_") {
        // Cura's `;SETTING_3 = 45\\n…` continuation lines (gp_cura_2.3.1_puzzle)
        return None;
    }
    let rest = &s[key_len..];
    let out = |v: &[u8]| Some((String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(trim(v)).into_owned()));
    if let Some(r) = rest.strip_prefix(b" =") {
        if r.is_empty() || r[0] == b' ' || r[0] == b'\t' {
            return out(r);
        }
        return None;
    }
    if rest.first() == Some(&b',') && indented {
        return out(&rest[1..]);
    }
    // `key: value` / `key : value`
    let r = super::tags::trim_start(rest);
    if let Some(r) = r.strip_prefix(b":") {
        let snake = key[0].is_ascii_lowercase() && key.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if snake && (r.is_empty() || r[0] == b' ' || r[0] == b'\t') {
            return out(r);
        }
    }
    None
}

/// Settings from Cura's `;SETTING_3 …` lines. The caller concatenates the payloads of all such
/// lines (text after `SETTING_3 `, untrimmed: a line may end or start inside a word or with a
/// blank, gp_cura_2.3.1_puzzle splits `retraction_speed ` / `= 45`) and passes the result.
///
/// The payload is JSON escaped once more by Cura (`\\` for `\`, `\n` for newline, `\r` for CR):
/// `{"global_quality": "[general]\\nversion = 4…", "extruder_quality": ["…", "…"]}`
/// (cop_cura_4.10_reprap). Each value is an INI text; the keys of its `[values]` section are
/// returned, the global ones as written, those of an extruder prefixed `extruder.N.` with N its
/// `position` from `[metadata]` (else its index in the list). Order: global, then extruders.
pub fn cura_settings(setting3_payload: &str) -> Vec<(String, String)> {
    let unescaped = cura_unescape(setting3_payload.trim());
    let mut p = Json { s: unescaped.as_bytes(), i: 0 };
    let Some(JsonValue::Object(entries)) = p.value(0) else { return Vec::new() };
    let mut global = Vec::new();
    let mut extruders = Vec::new();
    for (key, value) in entries {
        match (key.as_str(), value) {
            ("global_quality", JsonValue::String(ini)) => global.extend(ini_values(&ini).1),
            ("extruder_quality", JsonValue::Array(list)) => {
                for (i, v) in list.into_iter().enumerate() {
                    if let JsonValue::String(ini) = v {
                        let (pos, vals) = ini_values(&ini);
                        let n = pos.unwrap_or(i as i64);
                        extruders.extend(vals.into_iter().map(|(k, v)| (format!("extruder.{n}.{k}"), v)));
                    }
                }
            }
            _ => {}
        }
    }
    global.extend(extruders);
    global
}

/// Undoes Cura's escaping of the serialised settings: `\\` → `\`, `\n` → newline, `\r` → CR.
fn cura_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('r') => {
                    chars.next();
                    out.push('\r');
                }
                _ => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `[values]` entries of one Cura profile INI text, and its `[metadata] position`.
fn ini_values(ini: &str) -> (Option<i64>, Vec<(String, String)>) {
    let mut section = "";
    let mut position = None;
    let mut values = Vec::new();
    for line in ini.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = &line[1..line.len() - 1];
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            continue;
        }
        match section {
            "values" => values.push((k.to_string(), v.to_string())),
            "metadata" if k == "position" => position = v.parse().ok(),
            _ => {}
        }
    }
    (position, values)
}

/// The little JSON Cura's `SETTING_3` uses: objects, arrays, strings (numbers, booleans and null
/// are accepted and dropped).
enum JsonValue {
    String(String),
    Array(Vec<JsonValue>),
    Object(Vec<(String, JsonValue)>),
    Other,
}

struct Json<'a> {
    s: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<JsonValue> {
        if depth > 32 {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'"' => self.string().map(JsonValue::String),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(JsonValue::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b']').then_some(JsonValue::Array(items));
                }
            }
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                if self.eat(b'}') {
                    return Some(JsonValue::Object(entries));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    entries.push((k, self.value(depth + 1)?));
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b'}').then_some(JsonValue::Object(entries));
                }
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'.' | b'-' | b'+')) {
                    self.i += 1;
                }
                (self.i > start).then_some(JsonValue::Other)
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other), // `\"`, `\\`, `\/`
                    }
                }
                _ => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }
}

/// Decodes an embedded thumbnail: the comment payloads between `; thumbnail begin …` and
/// `; thumbnail end` (each line's blanks are trimmed), base64 with or without padding.
pub fn decode_thumbnail(base64_lines: &[&[u8]]) -> Option<Vec<u8>> {
    use base64::Engine;
    let mut text = Vec::with_capacity(base64_lines.iter().map(|l| l.len()).sum());
    for line in base64_lines {
        text.extend_from_slice(trim(line));
    }
    if text.is_empty() {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(&text).ok()
}

/// Image format from its magic bytes: PNG `\x89PNG\r\n\x1a\n`, JPEG `FF D8 FF`, QOI `qoif`.
pub fn image_format(bytes: &[u8]) -> ImageFormat {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        ImageFormat::Png
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        ImageFormat::Jpg
    } else if bytes.starts_with(b"qoif") {
        ImageFormat::Qoi
    } else {
        ImageFormat::Unknown
    }
}

/// (width, height) of a PNG (IHDR), QOI (header) or JPEG (first SOF marker) image.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    match image_format(bytes) {
        ImageFormat::Png => (bytes.len() >= 24 && &bytes[12..16] == b"IHDR").then(|| (be32(&bytes[16..20]), be32(&bytes[20..24]))),
        ImageFormat::Qoi => (bytes.len() >= 12).then(|| (be32(&bytes[4..8]), be32(&bytes[8..12]))),
        ImageFormat::Jpg => {
            let mut i = 2;
            while i + 4 <= bytes.len() {
                if bytes[i] != 0xFF {
                    return None;
                }
                let marker = bytes[i + 1];
                if marker == 0xFF {
                    i += 1;
                    continue;
                }
                let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
                let sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if sof {
                    let b = bytes.get(i + 5..i + 9)?;
                    return Some((u16::from_be_bytes([b[2], b[3]]) as u32, u16::from_be_bytes([b[0], b[1]]) as u32));
                }
                i += 2 + len;
            }
            None
        }
        ImageFormat::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(mode: &str, s: f64) -> Fact {
        time(mode, s)
    }
    fn fs(s: &str) -> Vec<Fact> {
        facts(s.as_bytes())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1d 2h 3m 4s"), Some(93784.0));
        assert_eq!(parse_duration("2h 4m 35s"), Some(7475.0));
        assert_eq!(parse_duration("35s"), Some(35.0));
        assert_eq!(parse_duration("0.815957s"), Some(0.815957));
        assert_eq!(parse_duration("1234"), Some(1234.0));
        assert_eq!(parse_duration("1h2m3s"), Some(3723.0));
        assert_eq!(parse_duration("1 hours 2 minutes"), Some(3720.0));
        assert_eq!(parse_duration("1 hour 1 minute"), Some(3660.0));
        assert!((parse_duration("10.16 minutes").unwrap() - 609.6).abs() < 1e-9);
        assert_eq!(parse_duration("01:02:03"), Some(3723.0));
        assert_eq!(parse_duration("02:03"), Some(123.0));
        for bad in ["", "abc", "1h x", "1 2", "1q", "::", "1:2:3:4", "-5s", "h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn prusaslicer_family_facts() {
        assert_eq!(fact(b" estimated printing time (normal mode) = 1h 2m 3s"), Some(t("normal", 3723.0)));
        assert_eq!(fact(b" estimated printing time (silent mode) = 3m 47s"), Some(t("silent", 227.0)));
        assert_eq!(fact(b" estimated printing time = 1h 5m 24s"), Some(t("normal", 3924.0)));
        assert_eq!(fact(b" estimated first layer printing time (normal mode) = 52s"), Some(t("first_layer_normal", 52.0)));
        assert_eq!(fact(b" filament used [mm] = 1903.58"), Some(used("mm", 1903.58)));
        assert_eq!(fact(b" filament used [cm3] = 4.58"), Some(used("cm3", 4.58)));
        assert_eq!(fact(b" filament used [g] = 0.00, 95.76"), Some(used("g", 95.76)));
        assert_eq!(fact(b" filament cost = 0.01"), Some(used("cost", 0.01)));
        assert_eq!(fact(b" total filament used [g] = 4.76"), Some(setting("total filament used [g]", "4.76")));
        assert_eq!(fact(b" total layers count = 190"), Some(Fact::LayerCount(190)));
        assert_eq!(fs(" filament used = 622.4mm (4.4cm3)"), vec![used("mm", 622.4), used("cm3", 4.4)]);
        assert_eq!(fs(" filament cost = 0.65; total filament used [g] = 32.46"), vec![used("cost", 0.65), setting("total filament used [g]", "32.46")]);
        assert_eq!(fact(b" filament used [mm]: 10882.04"), None);
        assert_eq!(fact(b" layer_height = 0.2"), Some(setting("layer_height", "0.2")));
        assert_eq!(fact(b" nozzle_diameter = 0.4,0.4"), Some(setting("nozzle_diameter", "0.4,0.4")));
        assert_eq!(fact(b" printer_model = MK4S"), Some(setting("printer_model", "MK4S")));
        assert_eq!(fact(b" external perimeters extrusion width = 0.42mm"), None);
        assert_eq!(fact(b" bed_temperature = 60"), None);
        assert_eq!(fact(b"TYPE:External perimeter"), None);
    }

    #[test]
    fn bambu_facts() {
        assert_eq!(
            fs(" model printing time: 1h 57m 37s; total estimated time: 2h 4m 35s"),
            vec![t("total", 7475.0), t("model", 7057.0)]
        );
        assert_eq!(fact(b" total estimated time: 39m 16s"), Some(t("total", 2356.0)));
        assert_eq!(fact(b" total layer number: 137"), Some(Fact::LayerCount(137)));
        assert_eq!(fact(b" total filament length [mm] : 1503.61"), Some(used("mm", 1503.61)));
        assert_eq!(fact(b" total filament volume [cm^3] : 3616.61"), Some(used("mm3", 3616.61)));
        assert_eq!(fact(b" total filament weight [g] : 4.48"), Some(used("g", 4.48)));
        assert_eq!(fact(b" filament_diameter: 1.75"), Some(setting("filament_diameter", "1.75")));
        assert_eq!(fact(b" layer num/total_layer_count: 1/139"), None);
        assert_eq!(fact(b" LAYER_HEIGHT: 0.2"), None);
    }

    #[test]
    fn cura_and_others() {
        assert_eq!(fact(b"TIME:451"), Some(t("total", 451.0)));
        assert_eq!(fact(b"TIME:6666"), Some(t("placeholder", 6666.0)));
        assert_eq!(fact(b"TIME_ELAPSED:23.746823"), Some(t("elapsed", 23.746823)));
        assert_eq!(fact(b"PRINT.TIME:480"), Some(t("total", 480.0)));
        assert_eq!(fact(b"Filament used: 0.27387m"), Some(used("m", 0.27387)));
        assert_eq!(fact(b"Filament used: 1.5m, 0.5m"), Some(used("m", 2.0)));
        assert_eq!(fact(b"LAYER_COUNT:25"), Some(Fact::LayerCount(25)));
        assert_eq!(fact(b"Layer height: 0.2"), Some(setting("layer_height", "0.2")));
        assert_eq!(fact(b"NOZZLE_DIAMETER:0.4"), Some(setting("nozzle_diameter", "0.4")));
        assert_eq!(fact(b"MATERIAL:6666"), None);
        assert_eq!(fact(b"EXTRUDER_TRAIN.0.MATERIAL.VOLUME_USED:2911"), Some(used("mm3", 2911.0)));
        assert_eq!(fact(b"TARGET_MACHINE.NAME:Creality K1 Max"), Some(setting("printer_model", "Creality K1 Max")));
        assert_eq!(fact(b"Print Time: 744"), Some(t("total", 744.0)));
        assert_eq!(fact(b"REMAINING_TIME: 744"), Some(t("remaining", 744.0)));
        assert_eq!(fact(b"PRINTING_TIME: 10"), Some(t("elapsed", 10.0)));
        assert_eq!(fact(b"Material#1 Used: 422.7"), Some(used("mm", 422.7)));
        assert_eq!(fact(b"Material#2 Cost: 0.00"), Some(used("cost", 0.0)));
        assert_eq!(fact(b" --- print time: 806s ---"), Some(t("total", 806.0)));
        assert_eq!(fact(b" --- filament used: 225.03 mm ---"), Some(used("mm", 225.03)));
        assert_eq!(fact(b" --- process ---"), None);
        assert!(matches!(fact(b" Calculated-during-export Build Time: 10.16 minutes"), Some(Fact::EstimatedTime { mode, seconds }) if mode == "total" && (seconds - 609.6).abs() < 1e-9));
        assert!(matches!(fact(b" Estimated-in-GUI Build Time: 10.18 minutes"), Some(Fact::EstimatedTime { mode, .. }) if mode == "gui"));
        assert!(matches!(fact(b" Estimated Build Time:   332.83 minutes"), Some(Fact::EstimatedTime { mode, .. }) if mode == "total"));
        assert!(matches!(fact(b" Total estimated (pre-cool) minutes: 7.99"), Some(Fact::EstimatedTime { mode, .. }) if mode == "pre_cool"));
        assert_eq!(fs("    Ext #1  =   305.09 mm  (0.734 cm^3)"), vec![used("mm", 305.09), used("cm3", 0.734)]);
        assert_eq!(fact(b"   Build time: 1 hours 2 minutes"), Some(t("total", 3720.0)));
        assert_eq!(fact(b"   Filament length: 1442.7 mm (1.44 m)"), Some(used("mm", 1442.7)));
        assert_eq!(fact(b"   Plastic weight: 4.29 g (0.01 lb)"), Some(used("g", 4.29)));
        assert!(matches!(fact(b"   Plastic volume: 3469.45 mm^3 (3.47 cc)"), Some(Fact::FilamentUsed { unit, value }) if unit == "cm3" && (value - 3.46945).abs() < 1e-9));
        assert_eq!(fact(b"   Material cost: 0.08"), Some(used("cost", 0.08)));
        assert_eq!(fact(b"   layerHeight,0.2"), Some(setting("layer_height", "0.2")));
        assert_eq!(fact(b" sliceHeight = 0.2"), Some(setting("layer_height", "0.2")));
        assert_eq!(fact(b" time estimate: pre = 9.997506, post = 9.766298"), None);
        assert_eq!(fact(b"LAYER:3"), None);
    }

    #[test]
    fn estimate_priority() {
        let f = vec![t("elapsed", 10.0), t("placeholder", 6666.0), t("elapsed", 20.0)];
        assert_eq!(print_estimate(&f), Some(20.0));
        let f = vec![t("total", 2356.0), t("normal", 2385.0)];
        assert_eq!(print_estimate(&f), Some(2385.0));
        let f = vec![t("model", 1.0), t("total", 2.0)];
        assert_eq!(print_estimate(&f), Some(2.0));
        assert_eq!(print_estimate(&[]), None);
    }

    #[test]
    fn config_lines() {
        let kv = |k: &str, v: &str| Some((k.to_string(), v.to_string()));
        assert_eq!(config_line(b" layer_height = 0.2"), kv("layer_height", "0.2"));
        assert_eq!(config_line(b" bed_custom_model = "), kv("bed_custom_model", ""));
        assert_eq!(config_line(b" bed_custom_model ="), kv("bed_custom_model", ""));
        assert_eq!(config_line(b" default_filament_colour = ;;;;;;;;;;;"), kv("default_filament_colour", ";;;;;;;;;;;"));
        assert_eq!(
            config_line(b" before_layer_gcode = ;BEFORE_LAYER_CHANGE\\nG92 E0.0\\n;[layer_z]\\n\\n"),
            kv("before_layer_gcode", ";BEFORE_LAYER_CHANGE\\nG92 E0.0\\n;[layer_z]\\n\\n")
        );
        assert_eq!(config_line(b" filament_density: 1.24"), kv("filament_density", "1.24"));
        assert_eq!(config_line(b" add_brim : \tTrue"), kv("add_brim", "True"));
        assert_eq!(config_line(b"   layerHeight,0.2"), kv("layerHeight", "0.2"));
        assert_eq!(config_line(b" sliceHeight = 0.2"), kv("sliceHeight", "0.2"));
        for bad in [
            " filament used [mm] = 1.0", " total layer number: 25", "Z:0.2", "TIME:451", " resolution=0.05mm", " external perimeters extrusion width = 0.42mm",
            " ^   6C75746520706F73", "SETTING_3 = 45\\\\nmaterial_print_temperature = 195", "MINX:1", " model label id: 187", " a,b", "", " = 1", " 1abc = 2", "Print Time: 744", " Z_HEIGHT: 0.2",
        ] {
            assert_eq!(config_line(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn cura_setting3() {
        // two real lines of gp_cura_2.3.1_puzzle-like payload, split inside a word and after a blank
        let lines = [
            r#"{"global_quality": "[general]\\nversion = 2\\nname = A\\ndefinition = prusa_i3\\n\\n[metadata]\\nquality_type = normal\\n\\n[values]\\nretraction_speed "#,
            r#"= 45\\nlayer_he"#,
            r#"ight = 0.2\\nspeed_travel = =speed_print if magic_spiralize else 120\\n\\n", "extruder_quality": ["[general]\\nversion = 4\\n\\n[metadata]\\nposition = 1\\n\\n[values]\\ninfill_sparse_density = 10\\n\\n"]}"#,
        ];
        let s = cura_settings(&lines.concat());
        let get = |k: &str| s.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("layer_height"), Some("0.2"));
        assert_eq!(get("retraction_speed"), Some("45"));
        assert_eq!(get("speed_travel"), Some("=speed_print if magic_spiralize else 120"));
        assert_eq!(get("extruder.1.infill_sparse_density"), Some("10"));
        assert_eq!(get("version"), None);
        assert_eq!(cura_settings("{\"x\": \"\\u00e9\\\\\"\"}"), vec![]);
        assert_eq!(cura_settings("not json"), vec![]);
        assert_eq!(cura_settings(""), vec![]);
    }

    #[test]
    fn thumbnails() {
        // 1x1 PNG
        let png_b64 = ["iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="];
        let lines: Vec<&[u8]> = png_b64.iter().map(|s| s.as_bytes()).collect();
        let img = decode_thumbnail(&lines).unwrap();
        assert_eq!(image_format(&img), ImageFormat::Png);
        assert_eq!(image_size(&img), Some((1, 1)));
        // split over lines, leading blanks, no padding
        let lines: Vec<&[u8]> = vec![b" iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf", b" FcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg"];
        assert_eq!(decode_thumbnail(&lines).unwrap(), img);
        assert_eq!(decode_thumbnail(&[b"@@@@"]), None);
        assert_eq!(decode_thumbnail(&[]), None);
        assert_eq!(image_format(b"qoif\0\0\0\x10\0\0\0\x10\x04\x00"), ImageFormat::Qoi);
        assert_eq!(image_size(b"qoif\0\0\0\x10\0\0\0\x20\x04\x00"), Some((16, 32)));
        assert_eq!(image_format(&[0xFF, 0xD8, 0xFF, 0xE0]), ImageFormat::Jpg);
        // minimal JPEG header: SOI, APP0 (len 4), SOF0 with 8x16 (h=16, w=8)
        let jpg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00];
        assert_eq!(image_size(&jpg), Some((8, 16)));
        assert_eq!(image_format(b"GIF89a"), ImageFormat::Unknown);
        assert_eq!(image_size(b"\x89PNG\r\n\x1a\n"), None);
    }
}
