//! Motion timeline: when each G-code move runs, planned the way Klipper's toolhead plans it.
//!
//! `input` turns parsed G-code into planner commands, `machine` gives them Klipper's G-code
//! semantics (coordinates, arcs, firmware retraction, homing, limits) and `toolhead` plans the
//! moves: trapezoids with look-ahead, junction deviation, the minimum cruise ratio, extruder
//! and Z limits, and the print clock of Klipper's batch mode. The result is a `Timeline`, one
//! row per move, tied to source lines and byte offsets.
//!
//! What Klipper's batch mode (`klippy.py -i FILE -o /dev/null`) adds to the pure motion plan,
//! all reproduced here because its reported times depend on them:
//! - The clock starts at 0.25 s. After a full flush (M400, G4, M84, G28, ...) the next moves
//!   re-sync to `max(clock, last step generation + look-back)`.
//! - A background flush timer runs between the 4096-byte reads of the input and whenever
//!   G-code processing yields (after a move while the clock is below 1 s). When it finds step
//!   generation caught up it flushes the look-ahead (moves end at a stop) and moves step
//!   generation 0.25 s past the last queued motion; the next moves then start there. This is
//!   where the 0.252 s gaps after a final M84, after an M400 near the end, or before the first
//!   move come from (`FlushTimer`).
//! - Fan changes (M106/M107) are MCU output events: each keeps the MCU queue busy until 0.1 s
//!   after it (more with the kick-start), which moves that re-sync point.
//! - Pressure advance widens the step-generation look-back (`SET_PRESSURE_ADVANCE`).
//! - G28: endstops never trigger, so each homing move runs its full length (1.5 × the axis
//!   travel from the endstop), then the retract and the slower second homing move, with
//!   Klipper's 1-4 ms re-syncs around each.
//! - Heater waits return at once; a last line without a newline is never run; `( )` comment
//!   lines and `G01` are unknown commands; a move Klipper cannot parse ends the run.
//!
//! ```no_run
//! use threedpai_native::gcode::{parse, Options, Source};
//! use threedpai_native::plan::{plan, PlanOptions, PrinterConfig};
//! let source = Source::open("print.gcode".as_ref()).unwrap();
//! let parsed = parse(&source, &Options::default());
//! let cfg = PrinterConfig::parse(&std::fs::read_to_string("printer.cfg").unwrap());
//! let p = plan(&parsed, &source.text, &cfg, &PlanOptions::default());
//! println!("{:.1} s, {} rows", p.total_time, p.timeline.len());
//! ```

pub mod config;
pub mod input;
pub mod machine;
pub mod marlin;
pub mod timeline;
pub mod toolhead;

#[cfg(test)]
mod tests;

pub use config::{PrinterConfig, WaitModel};
pub use input::{Cmd, Input, Op};
pub use timeline::{flag, kind, Meta, Timeline};
pub use toolhead::FlushTimer;
pub use marlin::{plan_marlin, MarlinLimits, MarlinOptions};

use crate::gcode::Parsed;

#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// Stop at the first command Klipper would reject (its batch mode ends the run there).
    /// Otherwise such commands are noted and planning goes on.
    pub strict: bool,
    /// Keep the per-move rows (off: only totals are computed).
    pub record: bool,
    /// How Klipper's batch-mode flush timer is modelled.
    pub flush_timer: FlushTimer,
    pub max_diagnostics: usize,
    /// Segments per arc at most (a garbage radius cannot make billions of segments).
    pub max_arc_segments: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            strict: false,
            record: true,
            flush_timer: FlushTimer::Reads(4096),
            max_diagnostics: 10_000,
            max_arc_segments: 1_000_000,
        }
    }
}

/// A problem found while planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub line: u64,
    pub offset: u64,
    pub code: &'static str,
    pub message: String,
    /// Klipper itself would stop with an error here.
    pub klipper_error: bool,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub timeline: Timeline,
    /// Klipper's print clock at the end (its "Exiting (print time ...)"); the clock starts at
    /// 0.25 s. In strict mode after an error: the clock after everything before the error.
    pub total_time: f64,
    /// Moves planned (including homing moves and arc segments).
    pub moves: u64,
    pub diagnostics: Vec<Diagnostic>,
    pub diagnostics_total: u64,
    /// First command Klipper would reject: (line, message).
    pub first_error: Option<(u64, String)>,
    pub stopped_at_error: bool,
    /// Commands Klipper does not know, most frequent first.
    pub unknown_commands: Vec<(String, u64)>,
    pub invalid_m204: u64,
    pub g28_count: u64,
    /// Seconds from the first homing move of each G28 to its end, summed.
    pub g28_time: f64,
    pub arc_segments: u64,
}

impl Plan {
    /// Number of unknown commands (all occurrences).
    pub fn unknown_total(&self) -> u64 {
        self.unknown_commands.iter().map(|(_, n)| n).sum()
    }

    fn elapsed_at_row(&self, row: usize) -> f64 {
        if row < self.timeline.len() {
            self.timeline.t_start[row]
        } else {
            self.total_time
        }
    }

    /// (elapsed, remaining) seconds when execution reaches 1-based `line`: the start of the
    /// first row at or after it (the end of the print past the last row).
    pub fn at_line(&self, line: u64) -> (f64, f64) {
        let row = self.timeline.line.partition_point(|&l| l < line);
        let e = self.elapsed_at_row(row);
        (e, (self.total_time - e).max(0.0))
    }

    /// (elapsed, remaining) seconds when execution reaches byte `offset`: exact for a line's
    /// start offset; an offset inside a line maps to the next line (rows only know where lines
    /// start).
    pub fn at_offset(&self, offset: u64) -> (f64, f64) {
        let row = self.timeline.offset.partition_point(|&o| o < offset);
        let e = self.elapsed_at_row(row);
        (e, (self.total_time - e).max(0.0))
    }
}

/// Plans a stream of commands. `names` resolves `Op::Unknown` ids.
pub fn plan_commands<I: IntoIterator<Item = Cmd>>(
    cmds: I,
    names: &[String],
    cfg: &PrinterConfig,
    opts: &PlanOptions,
    rows_hint: usize,
) -> Plan {
    let mut m = machine::Machine::new(cfg, *opts, rows_hint, None);
    for cmd in cmds {
        m.run(&cmd);
        if m.stopped {
            break;
        }
    }
    finish(m, names, None)
}

fn finish(mut m: machine::Machine<'_>, names: &[String], input_len: Option<u64>) -> Plan {
    let total_time = m.finish(input_len);
    let mut unknown: Vec<(String, u64)> = m
        .unknown
        .iter()
        .map(|(&id, &n)| (names.get(id as usize).cloned().unwrap_or_else(|| format!("#{id}")), n))
        .collect();
    unknown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let stopped = m.stopped;
    Plan {
        timeline: std::mem::take(&mut m.th.timeline),
        total_time,
        moves: m.th.moves_planned,
        diagnostics: std::mem::take(&mut m.diagnostics),
        diagnostics_total: m.diagnostics_total,
        first_error: m.first_error.take(),
        stopped_at_error: stopped,
        unknown_commands: unknown,
        invalid_m204: m.invalid_m204,
        g28_count: m.g28_count,
        g28_time: m.g28_time,
        arc_segments: m.arc_segments,
    }
}

/// Plans a parsed file. `text` is the G-code text the parser read (`Source::text`), used for
/// the few places where Klipper reads a line differently from the parser.
pub fn plan(parsed: &Parsed, text: &[u8], cfg: &PrinterConfig, opts: &PlanOptions) -> Plan {
    plan_reusing(parsed, text, cfg, opts, None)
}

/// As `plan`, writing the rows into `reuse`'s memory (a previous plan's timeline): planning
/// file after file then does not page fresh memory in for every file.
pub fn plan_reusing(
    parsed: &Parsed,
    text: &[u8],
    cfg: &PrinterConfig,
    opts: &PlanOptions,
    reuse: Option<Timeline>,
) -> Plan {
    // Room for one row per command line (arcs add more as they come).
    let rows: usize = if opts.record {
        parsed.batches.iter().map(|b| b.lexed.command.iter().filter(|&&c| c >= 0).count()).sum()
    } else {
        0
    };
    let mut input = Input::new(parsed, text, cfg);
    let mut m = machine::Machine::new(cfg, *opts, if opts.record { rows } else { 0 }, reuse);
    input.for_each_until(|cmd| {
        m.run(cmd);
        !m.stopped
    });
    finish(m, &input.names, Some(text.len() as u64))
}

/// Parses and plans G-code text in one call (single-threaded parse).
pub fn plan_text(text: &[u8], cfg: &PrinterConfig, opts: &PlanOptions) -> Plan {
    let source = crate::gcode::Source::from_bytes(text.to_vec(), "<text>").ok();
    match source {
        Some(src) => {
            let parsed = crate::gcode::parse(&src, &crate::gcode::Options { threads: 1, ..Default::default() });
            plan(&parsed, &src.text, cfg, opts)
        }
        None => plan_commands(std::iter::empty(), &[], cfg, opts, 0),
    }
}
