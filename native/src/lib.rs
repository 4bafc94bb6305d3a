//! threedpai's Python-free core. Plain Rust in, plain Rust out: `gcode` (lexing and parsing
//! text G-code into Arrow-layout columns), `bgcode` (Prusa binary G-code), `slicer` (what
//! slicers write in comments), `plan` (the motion planner), `csv` (numeric CSV logs), `arrow_c`
//! (columns handed to Arrow through its C data interface). The optional `python` feature adds
//! the thin PyO3 layer in `py`.

// mimalloc keeps freed pages for reuse: parsing file after file then writes its columns into
// memory that is already mapped, instead of page-faulting ~100 MB in per 30 MB of G-code
// (measured: 246k -> 1.5k faults over ten parses, and two threads no longer serialize on faults).
#[cfg(not(miri))] // Miri runs Rust only (mimalloc is C)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod arrow_c;
pub mod bgcode;
pub mod csv;
pub mod gcode;
pub mod plan;
pub mod slicer;

#[cfg(feature = "python")]
mod py;
