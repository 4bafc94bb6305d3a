//! The file-level summary: producer, flavour, settings, estimates, layers, thumbnails, counts.

use crate::slicer::meta::{self, Fact};
use crate::slicer::producer::Producer;
use crate::slicer::tags::ImageFormat;

use super::dict::Dict;
use super::Context;

#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    /// Z of the layer (mm); NaN when the file never states it.
    pub z: f64,
    /// Layer height from the slicer's tag, NaN when absent.
    pub height: f64,
    /// 1-based line where the layer starts.
    pub first_line: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

pub fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Png => "png",
        ImageFormat::Jpg => "jpg",
        ImageFormat::Qoi => "qoi",
        ImageFormat::Unknown => "unknown",
    }
}

#[derive(Debug, Clone, Default)]
pub struct SummaryBuilder {
    pub producer: Option<Producer>,
    pub flavour: Option<String>,
    pub settings: Vec<(String, String)>,
    pub estimates: Vec<(String, f64)>,
    pub filament: Vec<(String, f64)>,
    pub layer_count_stated: Option<i64>,
    pub layers: Vec<LayerInfo>,
    pub thumbnails: Vec<Thumbnail>,
    pub command_counts: Vec<(Vec<u8>, u64)>,
    pub checksums: u64,
    pub checksums_ok: u64,
    pub line_numbers: u64,
    pub layer_source: &'static str,
    pub rows: u64,
    pub bytes: u64,
    pub container: &'static str,
    pub bgcode_metadata: Vec<(String, String, String)>,
    /// `M73` lines, and the largest remaining time they state (minutes).
    pub progress_marks: u64,
    pub progress_total_min: Option<f64>,
}

impl SummaryBuilder {
    pub fn add_command_counts(&mut self, dict: &Dict, counts: &[u64]) {
        if self.command_counts.len() < dict.len() {
            for v in &dict.values[self.command_counts.len()..] {
                self.command_counts.push((v.clone(), 0));
            }
        }
        for (slot, &c) in self.command_counts.iter_mut().zip(counts) {
            slot.1 += c;
        }
    }

    pub fn count_checksums(&mut self, present: usize, ok: usize, line_numbers: usize) {
        self.checksums += present as u64;
        self.checksums_ok += ok as u64;
        self.line_numbers += line_numbers as u64;
    }

    pub fn add_thumbnail(&mut self, base64: &[u8], (width, height): (u32, u32)) {
        if let Some(data) = meta::decode_thumbnail(&[base64]) {
            let format = format_name(meta::image_format(&data));
            self.thumbnails.push(Thumbnail { format, width, height, data });
        }
    }

    /// The slicer's estimate of the whole print (see `meta::print_estimate`).
    pub fn estimated_time(&self) -> Option<f64> {
        let facts: Vec<Fact> = self
            .estimates
            .iter()
            .map(|(mode, seconds)| Fact::EstimatedTime { mode: mode.clone(), seconds: *seconds })
            .collect();
        meta::print_estimate(&facts)
    }

    pub fn add_fact(&mut self, f: Fact) {
        match f {
            // Cura writes an elapsed time per layer: only the last one is a whole-print figure.
            Fact::EstimatedTime { mode, seconds } if mode == "elapsed" => {
                self.estimates.retain(|(m, _)| m != "elapsed");
                self.estimates.push((mode, seconds));
            }
            Fact::EstimatedTime { mode, seconds } => self.estimates.push((mode, seconds)),
            Fact::FilamentUsed { unit, value } => self.filament.push((unit, value)),
            Fact::Setting { key, value } => self.settings.push((key, value)),
            Fact::LayerCount(n) => self.layer_count_stated = Some(n),
        }
    }
}

/// The summary as JSON: what `threedpai.gcode` returns as a dict and keeps in the table's schema
/// metadata. Thumbnails are described by their size in `bytes` (their data is handed over on its
/// own); unknown values (a layer's NaN Z) are null. Keys in the order documented in docs/gcode.md.
pub fn summary_json(ctx: &Context) -> serde_json::Value {
    use serde_json::json;
    let s = &ctx.summary;
    let mut counts: Vec<_> = s.command_counts.iter().filter(|(_, c)| *c > 0).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let commands: serde_json::Map<_, _> = counts.into_iter().map(|(name, c)| (String::from_utf8_lossy(name).into_owned(), json!(c))).collect();
    // NaN becomes null (serde_json writes any non-finite float as null).
    let layers: Vec<_> = s.layers.iter().map(|l| json!([l.z, l.height, l.first_line])).collect();
    let thumbnails: Vec<_> =
        s.thumbnails.iter().map(|t| json!({"format": t.format, "width": t.width, "height": t.height, "bytes": t.data.len()})).collect();
    json!({
        "producer": s.producer.as_ref().map(|p| &p.name),
        "producer_version": s.producer.as_ref().and_then(|p| p.version.as_ref()),
        "flavour": s.flavour,
        "container": s.container,
        "bytes": s.bytes,
        "lines": s.rows,
        "commands": commands,
        "layer_source": s.layer_source,
        "layer_count": s.layers.len(),
        "layer_count_stated": s.layer_count_stated,
        "layers": layers,
        "features": ctx.features.strings(),
        "objects": ctx.objects.strings(),
        "settings": s.settings,
        "estimates": s.estimates,
        "estimated_time_s": s.estimated_time(),
        "progress_marks": s.progress_marks,
        "progress_total_min": s.progress_total_min,
        "filament": s.filament,
        "bgcode_metadata": s.bgcode_metadata,
        "thumbnails": thumbnails,
        "line_numbers": s.line_numbers,
        "checksums": s.checksums,
        "checksums_ok": s.checksums_ok,
    })
}
