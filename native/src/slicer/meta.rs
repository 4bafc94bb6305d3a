//! PROVISIONAL (replaced by the full module).
use super::tags::ImageFormat;
#[derive(Debug, Clone, PartialEq)]
pub enum Fact { EstimatedTime { mode: String, seconds: f64 }, FilamentUsed { unit: String, value: f64 }, Setting { key: String, value: String }, LayerCount(i64) }
pub fn fact(_c: &[u8]) -> Option<Fact> { None }
pub fn config_line(_c: &[u8]) -> Option<(String, String)> { None }
pub fn cura_settings(_p: &str) -> Vec<(String, String)> { Vec::new() }
pub fn decode_thumbnail(_l: &[&[u8]]) -> Option<Vec<u8>> { None }
pub fn image_format(_b: &[u8]) -> ImageFormat { ImageFormat::Unknown }
