//! threedpai's Python-free core. Plain Rust in, plain Rust out: `gcode` (lexing and parsing
//! text G-code into Arrow-layout columns), `bgcode` (Prusa binary G-code), `slicer` (what
//! slicers write in comments). The optional `python` feature adds the thin PyO3 layer in `py`.

pub mod bgcode;
pub mod gcode;
pub mod slicer;

#[cfg(feature = "python")]
mod py;
