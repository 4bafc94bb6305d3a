//! threedpai's Python-free core. Plain Rust in, plain Rust out: `gcode` (lexing and parsing
//! text G-code into Arrow-layout columns), `bgcode` (Prusa binary G-code), `slicer` (what
//! slicers write in comments), `plan` (the motion planner), `csv` (numeric CSV logs). The
//! optional `python` feature adds the thin PyO3 layer in `py`.

// mimalloc keeps freed pages for reuse: parsing file after file then writes its columns into
// memory that is already mapped, instead of page-faulting ~100 MB in per 30 MB of G-code
// (measured: 246k -> 1.5k faults over ten parses, and two threads no longer serialize on faults).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h: milliseconds before freed memory goes back to the system.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Holds freed memory for 10 s instead of mimalloc's 1 s before returning it to the system, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise. With 1 s, a bulk run returns a parse's columns between
/// two parses and the next one writes into fresh, kernel-zeroed pages (40 parses of a 30 MB file
/// through Python, median ms a parse: 48.1 -> 44.8 on two threads, 67.2 -> 63.6 on one). Called
/// when the Python module loads.
pub fn hold_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an allocator option; mimalloc reads it each time it schedules a purge.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 10_000) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_is_the_option_set() {
        // SAFETY: reading and setting allocator options.
        let before = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, 1000, "mimalloc's purge delay defaults to 1000 ms: the option index is wrong");
        }
        super::hold_freed_memory();
        let after = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(after, 10_000);
        }
    }
}

pub mod bgcode;
pub mod csv;
pub mod gcode;
pub mod plan;
pub mod slicer;

#[cfg(feature = "python")]
mod py;
