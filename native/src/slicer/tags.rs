//! PROVISIONAL (replaced by the full module).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImageFormat { Png, Jpg, Qoi, Unknown }
#[derive(Debug, Clone, PartialEq)]
pub enum Tag<'a> {
    LayerChange, LayerChangeAt(f64), LayerZ(f64), Height(f64), Width(f64), Feature(&'a [u8]),
    ObjectStart(&'a [u8]), ObjectEnd,
    ThumbnailBegin { format: ImageFormat, width: u32, height: u32, len: u64 }, ThumbnailEnd,
    ConfigBegin, ConfigEnd, HeaderBegin, HeaderEnd,
}
fn num(s: &[u8]) -> Option<f64> { std::str::from_utf8(s).ok()?.trim().parse().ok() }
pub fn classify(c: &[u8]) -> Option<Tag<'_>> {
    if c == b"LAYER_CHANGE" { return Some(Tag::LayerChange) }
    if let Some(r) = c.strip_prefix(b"Z:") { return num(r).map(Tag::LayerZ) }
    if let Some(r) = c.strip_prefix(b"HEIGHT:") { return num(r).map(Tag::Height) }
    if let Some(r) = c.strip_prefix(b"WIDTH:") { return num(r).map(Tag::Width) }
    if let Some(r) = c.strip_prefix(b"TYPE:") { return Some(Tag::Feature(r)) }
    if let Some(_) = c.strip_prefix(b"LAYER:") { return Some(Tag::LayerChange) }
    None
}
