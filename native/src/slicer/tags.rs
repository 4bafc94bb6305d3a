//! Slicer tags in comments: layer changes, extrusion roles, objects, thumbnails, blocks.
//!
//! [`classify`] gets the text of ONE comment without its `;` (or without its parentheses) and
//! says whether it is a tag. It runs on every comment of multi-GB files, so it never allocates,
//! uses no regex and dispatches on the first non-blank byte; an ordinary comment costs one
//! `match` and usually one short prefix compare. Leading blanks are ignored everywhere (slicers
//! write both `;TYPE:` and `; TYPE:`), trailing blanks are trimmed from labels.
//!
//! Matching is case-sensitive: every convention below is written by its slicer with one fixed
//! spelling, and case matters to tell some apart (Miracle-Grue's `(Layer Height: 0.6)` is a tag,
//! Cura's header line `;Layer height: 0.2` is a file setting). Only the names of image formats
//! (`thumbnail_JPG`) and of config blocks (`; SuperSlicer_config = begin`) are compared without
//! case, because those vary between forks.
//!
//! # Conventions recognised (example line, corpus file)
//!
//! | producer | layer | Z / height / width | feature | object |
//! |---|---|---|---|---|
//! | PrusaSlicer, SuperSlicer, OrcaSlicer, Creality Print | `;LAYER_CHANGE` (ps_mk3s_box20_0.20_15gyroid) | `;Z:0.2` `;HEIGHT:0.2` `;WIDTH:0.45` | `;TYPE:External perimeter` | `; printing object cube_1 id:0 copy 0` / `; stop printing object …` (cop_prusaslicer_2.4_m486) |
//! | BambuStudio | `; CHANGE_LAYER` (bambu_1.07_x1_xmaspud_ams) | `; Z_HEIGHT: 0.2` `; LAYER_HEIGHT: 0.2` `; LINE_WIDTH: 0.5` | `; FEATURE: Outer wall` | `; start printing object, unique label id: 187` / `; stop printing object, unique label id: 187` |
//! | Cura (CuraEngine) | `;LAYER:0` (cop_cura_4.10_reprap) | — | `;TYPE:WALL-OUTER` | `;MESH:cube_1.stl` / `;MESH:NONMESH` |
//! | ideaMaker | `;LAYER:-2` (cop_ideamaker_4.2) | `;Z:0.500` `;HEIGHT:0.500` `;WIDTH:0.800` | `;TYPE:WALL-OUTER` | `;PRINTING: test_bed_part1.3mf` / `;PRINTING: NON-OBJECT` |
//! | Simplify3D (not in corpus) | `; layer 1, Z = 0.200` → `LayerChangeAt` | `; tool H0.200 W0.480` → `Width` (see [`extrusion_size`]) | `; feature outer perimeter` | — |
//! | KISSlicer | `; BEGIN_LAYER_OBJECT z=0.263 z_thickness=0.263` (cop_kisslicer_2.0.6) → `LayerChangeAt` | — | `; 'Perimeter Path', 0.3 [feed mm/s], 7.1 [head mm/s]` → `Perimeter Path` | — |
//! | Kiri:Moto | `;; --- layer 0 (0.250 @ 0.255) ---` (cop_kirimoto_3.0) → `LayerChangeAt(0.255)` | — | — | — |
//! | IceSL | `; <layer>` (cop_icesl) | — | — | — |
//! | Skeinforge | `(<layer> 0.135 )` (mb_skeinforge_20mm_box) → `LayerChangeAt` | — | `(<perimeter> outer )` → `perimeter`; `<loop>`, `<infill>`, `<edge>` | — |
//! | Miracle-Grue | `(Slice 0, 1 Extruder)` (mb_miracle_grue_20mm_box_Aaxis) | `(Layer Height: \t0.600)` `(Layer Width: \t0.960)` | `(infill path, length: 12)` → `infill path` | — |
//!
//! Blocks: `; thumbnail begin 16x16 808` / `; thumbnail_JPG begin …` / `; thumbnail_QOI begin 16x16 368`
//! / `; thumbnail end` (PrusaSlicer family, Bambu, Orca); `; HEADER_BLOCK_START` / `_END` and
//! `; CONFIG_BLOCK_START` / `_END` (Bambu, Orca, Creality Print); `; prusaslicer_config = begin` /
//! `= end` (PrusaSlicer ≥ 2.4; any `<name>_config = begin`, e.g. SuperSlicer's); `;START_OF_HEADER`
//! / `;END_OF_HEADER` (Cura's Griffin header, um3_cura_4.5_griffin_header).
//!
//! # Deliberately NOT tags
//! * `;BEFORE_LAYER_CHANGE`, `;AFTER_LAYER_CHANGE` (PrusaSlicer templates, one per layer besides
//!   `;LAYER_CHANGE`), `;LAYER_COUNT:25` (Cura), `; layer num/total_layer_count: 1/139` and the
//!   wipe-tower `; layer #2` (Bambu), `; </layer>` (IceSL), `; END_LAYER_OBJECT` (KISSlicer),
//!   `;PRINTING_ID: 1` (ideaMaker): counting them would double the layers or objects.
//! * `; INIT printing object …` / `; INIT stop printing object …` (SuperSlicer 2.3, written next to
//!   the plain `; printing object …` pair, cop_superslicer_2.3.56_klipper).
//! * `; move to next layer (3)` — the verbose-mode trailing comment of Slic3r / PrusaSlicer ≤ 2.4
//!   on the Z move. PrusaSlicer writes it IN ADDITION to `;LAYER_CHANGE`, so it is left to
//!   `layer_move` (in the corpus tests), a fallback for Slic3r 1.x files, which have no other layer marker
//!   (s3_bunny_0.2_20_verbose_relE).
//! * Config lines such as `; layer_height = 0.2` or `; before_layer_gcode = ;BEFORE_LAYER_CHANGE\n…`:
//!   only whole comments are classified, and none of these prefixes starts a config key.
//!
//! # Object names
//! `ObjectStart` carries the name exactly as written, trimmed: PrusaSlicer's
//! `cube_1 id:0 copy 1` keeps its ` id:N copy N` suffix, because the copies of one object are
//! different instances (they are labelled separately for Klipper's EXCLUDE_OBJECT as
//! `cube_1_id_0_copy_1`). `split_object_name` (corpus tests) splits it when the plain name is wanted. Objects
//! that are only labelled by commands (`EXCLUDE_OBJECT_START NAME=…`, `M486 S0` / `M486 A…`) are
//! read by `object_command` (corpus tests; the parser's context reads object commands itself), which takes a command line, not a comment.

/// Image format of an embedded thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpg,
    Qoi,
    Unknown,
}

/// One slicer tag; borrowed parts point into the comment.
#[derive(Debug, Clone, PartialEq)]
pub enum Tag<'a> {
    /// A new layer starts (`;LAYER_CHANGE`, `; CHANGE_LAYER`, `;LAYER:3`, `; <layer>`,
    /// `(Slice 3, 1 Extruder)`).
    LayerChange,
    /// A new layer starts at the stated Z (`; layer 2, Z = 0.4`, `(<layer> 0.405 )`,
    /// `; BEGIN_LAYER_OBJECT z=0.526 …`, `;; --- layer 1 (0.200 @ 0.45) ---`).
    LayerChangeAt(f64),
    /// Z of the current layer (`;Z:0.2`, `; Z_HEIGHT: 0.2`).
    LayerZ(f64),
    /// Extrusion / layer height (`;HEIGHT:0.2`, `; LAYER_HEIGHT: 0.2`, `(Layer Height: 0.6)`).
    Height(f64),
    /// Extrusion width (`;WIDTH:0.45`, `; LINE_WIDTH: 0.42`, `(Layer Width: 0.96)`,
    /// Simplify3D `; tool H0.2 W0.48`).
    Width(f64),
    /// Extrusion role as written, trimmed.
    Feature(&'a [u8]),
    /// An object starts: its name (or Bambu's label id) as written, trimmed.
    ObjectStart(&'a [u8]),
    /// The current object ends.
    ObjectEnd,
    /// An embedded thumbnail starts; `len` is the declared length of its base64 text.
    ThumbnailBegin { format: ImageFormat, width: u32, height: u32, len: u64 },
    ThumbnailEnd,
    ConfigBegin,
    ConfigEnd,
    HeaderBegin,
    HeaderEnd,
}

/// Classifies one comment (text after `;`, or inside `( )`), or returns `None` for an ordinary
/// comment. See the module documentation for every convention.
pub fn classify(comment: &[u8]) -> Option<Tag<'_>> {
    let s = trim_start(comment);
    let first = *s.first()?;
    let tag = match first {
        b'L' => upper_l(s),
        b'Z' => {
            if let Some(r) = s.strip_prefix(b"Z:") {
                num(r).map(Tag::LayerZ)
            } else if let Some(r) = s.strip_prefix(b"Z_HEIGHT:") {
                num(r).map(Tag::LayerZ)
            } else {
                None
            }
        }
        b'H' => {
            if let Some(r) = s.strip_prefix(b"HEIGHT:") {
                num(r).map(Tag::Height)
            } else if let Some(r) = s.strip_prefix(b"HEADER_BLOCK_") {
                block(r, Tag::HeaderBegin, Tag::HeaderEnd)
            } else {
                None
            }
        }
        b'W' => s.strip_prefix(b"WIDTH:").and_then(num).map(Tag::Width),
        b'T' => s.strip_prefix(b"TYPE:").and_then(label).map(Tag::Feature),
        b'F' => s.strip_prefix(b"FEATURE:").and_then(label).map(Tag::Feature),
        b'C' => {
            if trim_end(s) == b"CHANGE_LAYER" {
                Some(Tag::LayerChange)
            } else if let Some(r) = s.strip_prefix(b"CONFIG_BLOCK_") {
                block(r, Tag::ConfigBegin, Tag::ConfigEnd)
            } else {
                None
            }
        }
        b'M' => s.strip_prefix(b"MESH:").and_then(label).map(|n| {
            if n == b"NONMESH" {
                Tag::ObjectEnd
            } else {
                Tag::ObjectStart(n)
            }
        }),
        b'P' => s.strip_prefix(b"PRINTING:").and_then(label).map(|n| {
            if n == b"NON-OBJECT" {
                Tag::ObjectEnd
            } else {
                Tag::ObjectStart(n)
            }
        }),
        b'S' => {
            if trim_end(s) == b"START_OF_HEADER" {
                Some(Tag::HeaderBegin)
            } else if let Some(r) = s.strip_prefix(b"Slice ") {
                // Miracle-Grue: `(Slice 12, 1 Extruder)`
                let d = digits(r);
                (d > 0 && r.get(d) == Some(&b',')).then_some(Tag::LayerChange)
            } else {
                None
            }
        }
        b'E' => (trim_end(s) == b"END_OF_HEADER").then_some(Tag::HeaderEnd),
        b'B' => s.strip_prefix(b"BEGIN_LAYER_OBJECT z=").and_then(|r| num(word(r))).map(Tag::LayerChangeAt),
        b'l' => s3d_layer(s),
        b'f' => s.strip_prefix(b"feature ").and_then(label).map(Tag::Feature),
        b't' => lower_t(s),
        b'p' => s.strip_prefix(b"printing object ").and_then(label).map(Tag::ObjectStart),
        b's' => lower_s(s),
        b'i' | b'c' => miracle_grue_path(s),
        b'<' => angle(s),
        b';' | b'-' => kiri_layer(s),
        b'\'' => kisslicer_path(s),
        _ => None,
    };
    if tag.is_some() {
        return tag;
    }
    config_marker(s)
}

fn upper_l(s: &[u8]) -> Option<Tag<'_>> {
    if let Some(r) = s.strip_prefix(b"LAYER") {
        if let Some(r) = r.strip_prefix(b":") {
            // Cura / ideaMaker `;LAYER:12`, raft layers negative: `;LAYER:-2`
            let r = trim(r);
            let d = r.strip_prefix(b"-").unwrap_or(r);
            return (!d.is_empty() && digits(d) == d.len()).then_some(Tag::LayerChange);
        }
        if trim_end(r) == b"_CHANGE" {
            return Some(Tag::LayerChange);
        }
        return r.strip_prefix(b"_HEIGHT:").and_then(num).map(Tag::Height);
    }
    if let Some(r) = s.strip_prefix(b"LINE_WIDTH:") {
        return num(r).map(Tag::Width);
    }
    if let Some(r) = s.strip_prefix(b"Layer Height:") {
        return num(r).map(Tag::Height);
    }
    if let Some(r) = s.strip_prefix(b"Layer Width:") {
        return num(r).map(Tag::Width);
    }
    None
}

/// Simplify3D: `; layer 12, Z = 2.450`.
fn s3d_layer(s: &[u8]) -> Option<Tag<'_>> {
    let r = s.strip_prefix(b"layer ")?;
    let d = digits(r);
    if d == 0 {
        return None;
    }
    let r = r[d..].strip_prefix(b", Z = ")?;
    num(r).map(Tag::LayerChangeAt)
}

fn lower_t(s: &[u8]) -> Option<Tag<'_>> {
    if let Some(r) = s.strip_prefix(b"thumbnail") {
        let (format, r) = match r.first() {
            Some(b' ') => (ImageFormat::Png, r),
            Some(b'_') => {
                let n = r[1..].iter().position(|&b| b == b' ').map(|p| p + 1)?;
                (format_name(&r[1..n]), &r[n..])
            }
            _ => return None,
        };
        let r = trim_start(r);
        if trim_end(r) == b"end" {
            return Some(Tag::ThumbnailEnd);
        }
        let r = r.strip_prefix(b"begin")?;
        if !r.is_empty() && !is_blank(r[0]) {
            return None;
        }
        let mut it = r.split(|&b| is_blank(b)).filter(|w| !w.is_empty());
        let (width, height) = it
            .next()
            .and_then(|wh| {
                let x = wh.iter().position(|&b| b == b'x' || b == b'X')?;
                Some((uint(&wh[..x])? as u32, uint(&wh[x + 1..])? as u32))
            })
            .unwrap_or((0, 0));
        let len = it.next().and_then(uint).unwrap_or(0);
        return Some(Tag::ThumbnailBegin { format, width, height, len });
    }
    if s.starts_with(b"tool ") {
        return extrusion_size(s).map(|(_, w)| Tag::Width(w));
    }
    None
}

fn format_name(n: &[u8]) -> ImageFormat {
    if n.eq_ignore_ascii_case(b"PNG") {
        ImageFormat::Png
    } else if n.eq_ignore_ascii_case(b"JPG") || n.eq_ignore_ascii_case(b"JPEG") {
        ImageFormat::Jpg
    } else if n.eq_ignore_ascii_case(b"QOI") {
        ImageFormat::Qoi
    } else {
        ImageFormat::Unknown
    }
}

fn lower_s(s: &[u8]) -> Option<Tag<'_>> {
    if s.starts_with(b"stop printing object") {
        // PrusaSlicer `; stop printing object cube_1 id:0 copy 0`,
        // Bambu `; stop printing object, unique label id: 187`
        return Some(Tag::ObjectEnd);
    }
    if let Some(r) = s.strip_prefix(b"start printing object, unique label id:") {
        return label(r).map(Tag::ObjectStart);
    }
    miracle_grue_path(s)
}

/// Miracle-Grue path kinds: `(infill path, length: 12)`, `(inset path, …)`,
/// `(support path, …)`, `(connection path, …)`.
fn miracle_grue_path(s: &[u8]) -> Option<Tag<'_>> {
    let p = s.iter().take(24).position(|&b| b == b' ')?;
    if !s[p..].starts_with(b" path, length:") || !s[..p].iter().all(u8::is_ascii_lowercase) {
        return None;
    }
    Some(Tag::Feature(&s[..p + 5]))
}

/// IceSL `<layer>`, Skeinforge `<layer> 0.135 ` and Skeinforge extrusion elements.
fn angle(s: &[u8]) -> Option<Tag<'_>> {
    if let Some(r) = s.strip_prefix(b"<layer>") {
        let r = trim(r);
        if r.is_empty() {
            return Some(Tag::LayerChange);
        }
        return num(r).map(Tag::LayerChangeAt);
    }
    let end = s.iter().position(|&b| b == b'>')?;
    let name = &s[1..end];
    match name {
        b"perimeter" | b"edge" | b"loop" | b"infill" => Some(Tag::Feature(name)),
        _ => None,
    }
}

/// Kiri:Moto `;; --- layer 3 (0.200 @ 0.85) ---` (one `;` is left after the comment marker).
fn kiri_layer(s: &[u8]) -> Option<Tag<'_>> {
    let s = trim_start(s.strip_prefix(b";").unwrap_or(s));
    let r = s.strip_prefix(b"--- layer ")?;
    let d = digits(r);
    if d == 0 {
        return None;
    }
    let r = trim_start(&r[d..]);
    if let Some(r) = r.strip_prefix(b"(") {
        if let Some(at) = r.iter().position(|&b| b == b'@') {
            let close = r.iter().position(|&b| b == b')')?;
            if close > at {
                return num(&r[at + 1..close]).map(Tag::LayerChangeAt);
            }
        }
    }
    Some(Tag::LayerChange)
}

/// KISSlicer `; 'Perimeter Path', 0.3 [feed mm/s], 7.1 [head mm/s]`.
fn kisslicer_path(s: &[u8]) -> Option<Tag<'_>> {
    let close = s[1..].iter().position(|&b| b == b'\'')? + 1;
    if s.get(close + 1) != Some(&b',') || close == 1 {
        return None;
    }
    Some(Tag::Feature(&s[1..close]))
}

/// `; prusaslicer_config = begin` / `= end`, `; SuperSlicer_config = begin`, …
fn config_marker(s: &[u8]) -> Option<Tag<'_>> {
    let s = trim_end(s);
    let (rest, tag) = match s.last()? {
        b'n' => (s.strip_suffix(b"= begin")?, Tag::ConfigBegin),
        b'd' => (s.strip_suffix(b"= end")?, Tag::ConfigEnd),
        _ => return None,
    };
    let key = trim_end(rest);
    let n = key.len().checked_sub(7)?;
    if !key[n..].eq_ignore_ascii_case(b"_config") || n == 0 {
        return None;
    }
    key[..n].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-').then_some(tag)
}

fn block<'a>(r: &[u8], begin: Tag<'a>, end: Tag<'a>) -> Option<Tag<'a>> {
    match trim_end(r) {
        b"START" => Some(begin),
        b"END" => Some(end),
        _ => None,
    }
}

/// Simplify3D `; tool H0.200 W0.480`: (extrusion height, extrusion width). [`classify`] returns
/// only the width (as `Tag::Width`); this gives both.
pub fn extrusion_size(comment: &[u8]) -> Option<(f64, f64)> {
    let r = trim_start(comment).strip_prefix(b"tool ")?;
    let mut h = None;
    let mut w = None;
    for word in r.split(|&b| is_blank(b)).filter(|w| !w.is_empty()) {
        match word[0] {
            b'H' => h = num(&word[1..]),
            b'W' => w = num(&word[1..]),
            _ => {}
        }
    }
    Some((h?, w?))
}

// ---- byte helpers shared with `meta` and `producer` ----

#[inline]
pub(crate) fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r'
}

#[inline]
pub(crate) fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&b| !is_blank(b)).unwrap_or(s.len());
    &s[n..]
}

#[inline]
pub(crate) fn trim_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rposition(|&b| !is_blank(b)).map_or(0, |p| p + 1);
    &s[..n]
}

#[inline]
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    trim_end(trim_start(s))
}

/// Trimmed, non-empty label.
#[inline]
fn label(s: &[u8]) -> Option<&[u8]> {
    let s = trim(s);
    (!s.is_empty()).then_some(s)
}

/// First blank-separated word.
#[inline]
pub(crate) fn word(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    &s[..s.iter().position(|&b| is_blank(b)).unwrap_or(s.len())]
}

#[inline]
fn digits(s: &[u8]) -> usize {
    s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len())
}

/// A finite decimal number, blanks around it allowed.
#[inline]
pub(crate) fn num(s: &[u8]) -> Option<f64> {
    let s = trim(s);
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    // Only plain decimal syntax: rejects `inf`, `NaN` and other words Rust would parse.
    if !s.iter().all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
        return None;
    }
    let v: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

#[inline]
pub(crate) fn uint(s: &[u8]) -> Option<u64> {
    let s = trim(s);
    if s.is_empty() || s.len() > 19 || digits(s) != s.len() {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<Tag<'_>> {
        classify(s.as_bytes())
    }
    fn f(s: &str) -> Tag<'_> {
        Tag::Feature(s.as_bytes())
    }
    fn o(s: &str) -> Tag<'_> {
        Tag::ObjectStart(s.as_bytes())
    }

    #[test]
    fn prusaslicer_family() {
        assert_eq!(c("LAYER_CHANGE"), Some(Tag::LayerChange));
        assert_eq!(c("Z:0.2"), Some(Tag::LayerZ(0.2)));
        assert_eq!(c("HEIGHT:0.25"), Some(Tag::Height(0.25)));
        assert_eq!(c("WIDTH:0.424523"), Some(Tag::Width(0.424523)));
        assert_eq!(c("TYPE:External perimeter"), Some(f("External perimeter")));
        assert_eq!(c("TYPE:Skirt/Brim"), Some(f("Skirt/Brim")));
        assert_eq!(c(" printing object cube_1 id:0 copy 1"), Some(o("cube_1 id:0 copy 1")));
        assert_eq!(c(" stop printing object cube_1 id:0 copy 1"), Some(Tag::ObjectEnd));
        assert_eq!(c(" prusaslicer_config = begin"), Some(Tag::ConfigBegin));
        assert_eq!(c(" prusaslicer_config = end"), Some(Tag::ConfigEnd));
        assert_eq!(c(" SuperSlicer_config = begin"), Some(Tag::ConfigBegin));
        assert_eq!(c(" thumbnail begin 16x16 808"), Some(Tag::ThumbnailBegin { format: ImageFormat::Png, width: 16, height: 16, len: 808 }));
        assert_eq!(c(" thumbnail_QOI begin 313x173 14412"), Some(Tag::ThumbnailBegin { format: ImageFormat::Qoi, width: 313, height: 173, len: 14412 }));
        assert_eq!(c(" thumbnail_JPG begin 300x300 12000"), Some(Tag::ThumbnailBegin { format: ImageFormat::Jpg, width: 300, height: 300, len: 12000 }));
        assert_eq!(c(" thumbnail end"), Some(Tag::ThumbnailEnd));
        assert_eq!(c(" thumbnail_QOI end"), Some(Tag::ThumbnailEnd));
        // not tags
        for s in [
            "BEFORE_LAYER_CHANGE", "AFTER_LAYER_CHANGE", "0.2", " layer_height = 0.2",
            " before_layer_gcode = ;BEFORE_LAYER_CHANGE\\nG92 E0.0\\n;[layer_z]\\n\\n",
            " INIT printing object cube_1 id:0 copy 0", " INIT stop printing object cube_1 id:0 copy 0",
            "TYPE:", " thumbnails = 16x16,220x124", " thumbnails_format = PNG", " estimated printing time (normal mode) = 8m 56s",
            " filament used [mm] = 215.44", "WIPE_START", " objects_info = {\"objects\":[]}", " printing", "_SET_FAN_SPEED_CHANGING_LAYER",
            " move to next layer (3)", " external perimeters extrusion width = 0.42mm", " config = begin", " _config = begin",
            " prusaslicer_config = beginning",
        ] {
            assert_eq!(c(s), None, "{s}");
        }
    }

    #[test]
    fn bambu_orca() {
        assert_eq!(c(" CHANGE_LAYER"), Some(Tag::LayerChange));
        assert_eq!(c(" Z_HEIGHT: 0.48"), Some(Tag::LayerZ(0.48)));
        assert_eq!(c(" LAYER_HEIGHT: 0.28"), Some(Tag::Height(0.28)));
        assert_eq!(c(" LINE_WIDTH: 0.500000"), Some(Tag::Width(0.5)));
        assert_eq!(c(" FEATURE: Outer wall"), Some(f("Outer wall")));
        assert_eq!(c(" start printing object, unique label id: 187"), Some(o("187")));
        assert_eq!(c(" stop printing object, unique label id: 187"), Some(Tag::ObjectEnd));
        assert_eq!(c(" HEADER_BLOCK_START"), Some(Tag::HeaderBegin));
        assert_eq!(c(" HEADER_BLOCK_END"), Some(Tag::HeaderEnd));
        assert_eq!(c(" CONFIG_BLOCK_START"), Some(Tag::ConfigBegin));
        assert_eq!(c(" CONFIG_BLOCK_END"), Some(Tag::ConfigEnd));
        assert_eq!(c(" thumbnail begin 96x96 1656"), Some(Tag::ThumbnailBegin { format: ImageFormat::Png, width: 96, height: 96, len: 1656 }));
        for s in [
            " layer #2", " layer num/total_layer_count: 1/139", " THUMBNAIL_BLOCK_START", " EXECUTABLE_BLOCK_START",
            " total layer number: 137", " CP TOOLCHANGE START", " FLUSH_START", " filament start gcode", "_GP_TOTAL_LAYER_NUMBER_PLACEHOLDER",
        ] {
            assert_eq!(c(s), None, "{s}");
        }
    }

    #[test]
    fn cura_ideamaker() {
        assert_eq!(c("LAYER:0"), Some(Tag::LayerChange));
        assert_eq!(c("LAYER:-2"), Some(Tag::LayerChange));
        assert_eq!(c("TYPE:WALL-OUTER"), Some(f("WALL-OUTER")));
        assert_eq!(c("MESH:cube_1.stl(1)"), Some(o("cube_1.stl(1)")));
        assert_eq!(c("MESH:NONMESH"), Some(Tag::ObjectEnd));
        assert_eq!(c("START_OF_HEADER"), Some(Tag::HeaderBegin));
        assert_eq!(c("END_OF_HEADER"), Some(Tag::HeaderEnd));
        assert_eq!(c("PRINTING: test_bed_part0(1).3mf"), Some(o("test_bed_part0(1).3mf")));
        assert_eq!(c("PRINTING: NON-OBJECT"), Some(Tag::ObjectEnd));
        assert_eq!(c("Z:0.500"), Some(Tag::LayerZ(0.5)));
        for s in [
            "LAYER_COUNT:25", "LAYER:", "LAYER:abc", "TIME_ELAPSED:23.7", "TIME:451", "Layer height: 0.2", "FLAVOR:Marlin",
            "PRINTING_ID: 1", "PRINTING_TIME: 0", "MINX:135.416", "SETTING_3 {\"global_quality\": \"[general]\\\\nversion",
            "End of Gcode", "Generated with Cura_SteamEngine 4.10.0", "MATERIAL:6666", "BRIDGE",
        ] {
            assert_eq!(c(s), None, "{s}");
        }
    }

    #[test]
    fn simplify3d() {
        assert_eq!(c(" layer 1, Z = 0.200"), Some(Tag::LayerChangeAt(0.2)));
        assert_eq!(c(" layer 12, Z = 2.45"), Some(Tag::LayerChangeAt(2.45)));
        assert_eq!(c(" feature outer perimeter"), Some(f("outer perimeter")));
        assert_eq!(c(" feature prime pillar "), Some(f("prime pillar")));
        assert_eq!(c(" tool H0.200 W0.480"), Some(Tag::Width(0.48)));
        assert_eq!(extrusion_size(b" tool H0.200 W0.480"), Some((0.2, 0.48)));
        for s in [" layer end", " layer 1", " layer", " process Process1", " G-Code generated by Simplify3D(R) Version 4.1.2", " featureless", " tool"] {
            assert_eq!(c(s), None, "{s}");
        }
    }

    #[test]
    fn kisslicer_kiri_icesl() {
        assert_eq!(c(" BEGIN_LAYER_OBJECT z=0.263 z_thickness=0.263"), Some(Tag::LayerChangeAt(0.263)));
        assert_eq!(c(" 'Perimeter Path', 0.3 [feed mm/s], 7.1 [head mm/s]"), Some(f("Perimeter Path")));
        assert_eq!(c(" 'Travel/Ironing Path', 0.0 [feed mm/s], 150.0 [head mm/s]"), Some(f("Travel/Ironing Path")));
        assert_eq!(c("; --- layer 0 (0.250 @ 0.255) ---"), Some(Tag::LayerChangeAt(0.255)));
        assert_eq!(c("; --- layer 7 ---"), Some(Tag::LayerChange));
        assert_eq!(c(" <layer>"), Some(Tag::LayerChange));
        for s in [
            " END_LAYER_OBJECT z=0.263", " 'Destring Prime'", " 'kisslicer.2.0.6.gcode'", " ''", "'", " --- process ---",
            " --- print time: 806s ---", " --- filament used: 225.03 mm ---", " </layer>", " <IceSL Sep  8 2021 17:53:41>",
            " add_brim : \tTrue", " *** Main G-code ***", " time estimate: pre = 9.997506, post = 9.766298",
        ] {
            assert_eq!(c(s), None, "{s}");
        }
    }

    #[test]
    fn skeinforge_miracle_grue() {
        assert_eq!(c("<layer> 0.135 "), Some(Tag::LayerChangeAt(0.135)));
        assert_eq!(c("<perimeter> outer "), Some(f("perimeter")));
        assert_eq!(c("<loop> outer "), Some(f("loop")));
        assert_eq!(c("<infill>"), Some(f("infill")));
        assert_eq!(c("Slice 0, 1 Extruder"), Some(Tag::LayerChange));
        assert_eq!(c("Layer Height: \t0.600"), Some(Tag::Height(0.6)));
        assert_eq!(c("Layer Width: \t0.960"), Some(Tag::Width(0.96)));
        assert_eq!(c("infill path, length: 12"), Some(f("infill path")));
        assert_eq!(c("support path, length: 2"), Some(f("support path")));
        assert_eq!(c("connection path, length: 2"), Some(f("connection path")));
        for s in [
            "</layer>", "<infillBoundary>", "<infillPoint> X1 Y2 Z3 </infillPoint>", "<boundaryPerimeter>", "<nestedRing>",
            "<version> 12.01.13 </version>", "display progress", "Set tool", "move Z", "insets: 0", "d: 31.798", "squirt",
            "Makerbot Industries", "* Generated by Miracle-Grue v 0.04 alpha", "Units: Inches", "Slice", "Slice x, 1",
            "Cut square, tube #0 ", "M00 , Pause. Check the DTHC Settings",
        ] {
            assert_eq!(c(s), None, "{s}");
        }
    }

}
