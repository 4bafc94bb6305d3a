//! A second motion model, for Marlin-family firmware: the planner of Marlin 1.x/2.x (and Prusa's
//! MK3 firmware) with classic jerk or junction deviation, over the same planner input
//! (`input::Cmd`) as the Klipper model, writing the same `Timeline`/`Plan`.
//!
//! What it models (learned from Marlin's `planner.cpp` and PrusaSlicer's `GCodeProcessor` time
//! estimator; own code):
//! - Per block: cruise speed = feed rate (× M220, at least M205 S/T) scaled down so that no axis
//!   exceeds its M203 limit; acceleration = M204 P (print), R (extruder-only) or T (travel,
//!   `M204 S` sets print and travel) scaled down so that no axis exceeds its M201 limit.
//! - Junctions, classic jerk (M205 X/Y/Z/E): a block's "safe" speed is the speed at which no axis
//!   changes by more than its jerk when starting from / stopping to rest; the junction speed is
//!   the smaller nominal speed, scaled down until every axis' velocity change (coasting or
//!   reversing) is within its jerk, replaced by the safe speed when both blocks' safe speeds
//!   already exceed it (Marlin's "not coasting" rule).
//! - Junctions, junction deviation (M205 J, when `MarlinOptions::junction_deviation` is set):
//!   v² = a·J·sin(θ/2)/(1−sin(θ/2)) from the XYZ direction change, capped by both nominal speeds.
//! - Trapezoids with look-ahead: reverse pass (entry speeds reachable by decelerating to the next
//!   entry), forward pass (entry speeds reachable by accelerating from the previous entry), then
//!   per-block trapezoids. The look-ahead is planned in batches as PrusaSlicer's estimator does
//!   (every 256 blocks, the oldest are committed and the newest 64 kept); the first block after
//!   an empty queue starts at its safe speed, the last one before a synchronisation ends at its
//!   safe speed (Marlin never starts or stops a jerk-limited block from exactly zero).
//! - G4 (P ms / S s) as a dwell after a full synchronisation (PrusaSlicer ignores G4: see
//!   `MarlinOptions::dwell`); M400, M0/M1, heater waits and G28 synchronise without time; G28 is a
//!   move to 0 of the named axes at the current feed rate, as PrusaSlicer treats it (real homing
//!   time depends on the endstops: `MarlinOptions::home_time` adds a fixed time per G28).
//! - Limits: Marlin's defaults, then the slicer's machine limits from the configuration block of
//!   the file (`; machine_max_acceleration_x = ...` for PrusaSlicer-family files whose flavour
//!   uses them), then M201/M203/M204/M205/M220/M221 as they come in the G-code.

#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use super::config::{FirmwareRetraction, PrinterConfig};
use super::input::{ArcWords, Cmd, Input, MoveWords, Op, Word};
use super::timeline::{kind, Meta, Row, Timeline};
use super::Plan;
use crate::gcode::Parsed;

const X: usize = 0;
const Y: usize = 1;
const Z: usize = 2;
const E: usize = 3;

/// Marlin's MINIMUM_PLANNER_SPEED (mm/s): junction speed of a full reversal, and the start/end
/// speed of a block under junction deviation.
const MINIMUM_PLANNER_SPEED: f64 = 0.05;
/// PrusaSlicer's look-ahead batching: plan when more than this many blocks are queued ...
const REFRESH_THRESHOLD: usize = 256;
/// ... and keep this many for the next batch.
const KEEP_BLOCKS: usize = 64;

/// Machine limits of a Marlin-family printer (units: mm, s).
#[derive(Debug, Clone, PartialEq)]
pub struct MarlinLimits {
    /// M203 X Y Z E (mm/s); 0 = no limit.
    pub max_feedrate: [f64; 4],
    /// M201 X Y Z E (mm/s²); 0 = no limit.
    pub max_accel: [f64; 4],
    /// M205 X Y Z E (mm/s): classic jerk.
    pub jerk: [f64; 4],
    /// M205 S: minimum feed rate of moves that extrude (mm/s).
    pub min_feedrate: f64,
    /// M205 T: minimum feed rate of moves that do not (mm/s).
    pub min_travel_feedrate: f64,
    /// M204 P (or S): acceleration of printing moves.
    pub accel: f64,
    /// M204 R: acceleration of extruder-only moves.
    pub retract_accel: f64,
    /// M204 T (or S): acceleration of travel moves.
    pub travel_accel: f64,
    /// Upper bound applied to M204 P/S (PrusaSlicer's `machine_max_acceleration_extruding`); 0 = none.
    pub accel_cap: f64,
    /// Upper bound applied to M204 T/S (PrusaSlicer's `machine_max_acceleration_travel`, only for
    /// flavours with a separate travel acceleration); 0 = none.
    pub travel_accel_cap: f64,
    /// M205 J (mm); used when `MarlinOptions::junction_deviation` is set.
    pub junction_deviation: f64,
}

impl Default for MarlinLimits {
    /// Marlin 2.x `Configuration.h` defaults (classic jerk values; JUNCTION_DEVIATION_MM 0.013).
    fn default() -> Self {
        MarlinLimits {
            max_feedrate: [300.0, 300.0, 5.0, 25.0],
            max_accel: [3000.0, 3000.0, 100.0, 10000.0],
            jerk: [10.0, 10.0, 0.3, 5.0],
            min_feedrate: 0.0,
            min_travel_feedrate: 0.0,
            accel: 3000.0,
            retract_accel: 3000.0,
            travel_accel: 3000.0,
            accel_cap: 0.0,
            travel_accel_cap: 0.0,
            junction_deviation: 0.013,
        }
    }
}

fn first_number(v: &str) -> Option<f64> {
    v.split(',')
        .next()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

impl MarlinLimits {
    /// Limits from a slicer's settings (`key = value` pairs of a PrusaSlicer-family configuration
    /// block; the first value of a list is the normal mode), applied over `self` the way
    /// PrusaSlicer's estimator applies them: only for the Marlin, Marlin 2, RepRapFirmware and
    /// Klipper flavours and unless `machine_limits_usage = ignore`. Returns whether they applied.
    pub fn apply_slicer_settings<'a, I>(&mut self, settings: I) -> bool
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let map: HashMap<&str, &str> = settings.into_iter().collect();
        let flavor = map.get("gcode_flavor").map(|s| s.trim()).unwrap_or("");
        let usage = map
            .get("machine_limits_usage")
            .map(|s| s.trim())
            .unwrap_or("time_estimate_only");
        let flavor_ok = matches!(
            flavor,
            "marlin" | "marlin2" | "marlinfirmware" | "reprapfirmware" | "klipper"
        );
        if !map.contains_key("machine_max_acceleration_x") {
            return false;
        }
        if !flavor_ok || usage == "ignore" {
            // PrusaSlicer then estimates with its own built-in machine limits.
            *self = MarlinLimits::prusaslicer_defaults();
            return false;
        }
        let get = |k: &str| map.get(k).and_then(|v| first_number(v));
        for (a, n) in ["x", "y", "z", "e"].iter().enumerate() {
            if let Some(v) = get(&format!("machine_max_feedrate_{n}")) {
                self.max_feedrate[a] = v;
            }
            if let Some(v) = get(&format!("machine_max_acceleration_{n}")) {
                self.max_accel[a] = v;
            }
            if let Some(v) = get(&format!("machine_max_jerk_{n}")) {
                self.jerk[a] = v;
            }
        }
        let rrf = flavor == "reprapfirmware";
        if let Some(v) = get("machine_min_extruding_rate") {
            self.min_feedrate = if rrf { 0.0 } else { v };
        }
        if let Some(v) = get("machine_min_travel_rate") {
            self.min_travel_feedrate = if rrf { 0.0 } else { v };
        }
        let extruding = get("machine_max_acceleration_extruding").unwrap_or(0.0);
        self.accel_cap = extruding;
        self.accel = if extruding > 0.0 { extruding } else { 1500.0 };
        let retracting = get("machine_max_acceleration_retracting").unwrap_or(0.0);
        self.retract_accel = if retracting > 0.0 { retracting } else { 1500.0 };
        // Legacy Marlin and Klipper have no separate travel acceleration; PrusaSlicer clamps
        // travel by its machine limit only when it emits the limits for a flavour that has one.
        let separate_travel = matches!(flavor, "marlin2" | "marlinfirmware" | "reprapfirmware");
        let travel = if separate_travel && usage == "emit_to_gcode" {
            get("machine_max_acceleration_travel").unwrap_or(0.0)
        } else {
            0.0
        };
        self.travel_accel_cap = travel;
        self.travel_accel = if travel > 0.0 { travel } else { 1250.0 };
        true
    }

    /// The machine limits PrusaSlicer's estimator uses when a file's flavour or
    /// `machine_limits_usage` keeps the configured ones out (its configuration defaults).
    pub fn prusaslicer_defaults() -> MarlinLimits {
        MarlinLimits {
            max_feedrate: [500.0, 500.0, 12.0, 120.0],
            max_accel: [9000.0, 9000.0, 500.0, 10000.0],
            jerk: [10.0, 10.0, 0.2, 2.5],
            min_feedrate: 0.0,
            min_travel_feedrate: 0.0,
            accel: 1500.0,
            retract_accel: 1500.0,
            travel_accel: 1250.0,
            accel_cap: 1500.0,
            travel_accel_cap: 0.0,
            junction_deviation: 0.013,
        }
    }

    fn set_accel(&mut self, v: f64) {
        self.accel = if self.accel_cap > 0.0 {
            v.min(self.accel_cap)
        } else {
            v
        };
    }

    fn set_travel_accel(&mut self, v: f64) {
        self.travel_accel = if self.travel_accel_cap > 0.0 {
            v.min(self.travel_accel_cap)
        } else {
            v
        };
    }
}

/// How the Marlin model runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarlinOptions {
    /// Junction deviation (Marlin 2 without CLASSIC_JERK) instead of classic jerk.
    pub junction_deviation: bool,
    /// G4 takes its time (as on the printer). PrusaSlicer's estimator ignores G4.
    pub dwell: bool,
    /// Seconds added per G28 (0: G28 is only the move to 0, as in PrusaSlicer's estimator).
    pub home_time: f64,
    /// Keep the per-move rows.
    pub record: bool,
}

impl Default for MarlinOptions {
    fn default() -> Self {
        MarlinOptions {
            junction_deviation: false,
            dwell: true,
            home_time: 0.0,
            record: true,
        }
    }
}

impl MarlinOptions {
    /// The conventions of PrusaSlicer's `estimated printing time (normal mode)`.
    pub fn slicer_compatible() -> Self {
        MarlinOptions {
            dwell: false,
            ..Default::default()
        }
    }
}

/// What the model found besides the timeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MarlinStats {
    /// Seconds of G4 dwell (counted only with `MarlinOptions::dwell`, summed either way).
    pub dwell_time: f64,
    pub dwell_count: u64,
    pub g28_count: u64,
    pub arc_segments: u64,
    /// Limits after the slicer settings, before any M20x line of the G-code.
    pub initial_limits: Option<MarlinLimits>,
    /// The slicer's machine limits were applied.
    pub slicer_limits: bool,
    pub m201_203_204_205: u64,
}

/// Velocity state of the last planned block (what the classic-jerk junction needs).
#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Requested feed rate (before the per-axis limit).
    feedrate: f64,
    safe: f64,
    axis_v: [f64; 4],
    /// XYZ unit vector (zero for extruder-only moves).
    unit: [f64; 3],
    nominal: f64,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    meta: Meta,
    kind: u8,
    start: [f64; 4],
    end: [f64; 4],
    distance: f64,
    accel: f64,
    nominal: f64,
    entry: f64,
    max_entry: f64,
    safe: f64,
    nominal_length: bool,
    recalc: bool,
}

/// Highest speed at the start of `d` mm from which `target` is reached decelerating at `a`.
#[inline]
fn max_allowable(a: f64, target: f64, d: f64) -> f64 {
    (target * target + 2.0 * a * d).max(0.0).sqrt()
}

/// A trapezoid: (accel_t, cruise_t, decel_t, cruise_v, end_v).
pub fn trapezoid(entry: f64, exit: f64, nominal: f64, a: f64, d: f64) -> (f64, f64, f64, f64, f64) {
    if d <= 0.0 {
        return (0.0, 0.0, 0.0, entry, entry);
    }
    if a.is_nan() || a <= 0.0 || !a.is_finite() {
        let v = nominal.max(1e-12);
        return (0.0, d / v, 0.0, v, v);
    }
    let mut acc_d = ((nominal * nominal - entry * entry) / (2.0 * a)).max(0.0);
    let mut dec_d = ((nominal * nominal - exit * exit) / (2.0 * a)).max(0.0);
    let mut cruise_d = d - acc_d - dec_d;
    let mut cruise_v = nominal;
    if cruise_d < 0.0 {
        acc_d = ((2.0 * a * d - entry * entry + exit * exit) / (4.0 * a)).clamp(0.0, d);
        cruise_v = (entry * entry + 2.0 * a * acc_d).max(0.0).sqrt();
        dec_d = d - acc_d;
        cruise_d = 0.0;
    }
    let accel_t = (cruise_v - entry).max(0.0) / a;
    let end_v = (cruise_v * cruise_v - 2.0 * a * dec_d).max(0.0).sqrt();
    let decel_t = (cruise_v - end_v).max(0.0) / a;
    let cruise_t = if cruise_v > 0.0 {
        cruise_d / cruise_v
    } else {
        0.0
    };
    (accel_t, cruise_t, decel_t, cruise_v, end_v)
}

struct Planner {
    limits: MarlinLimits,
    opts: MarlinOptions,
    blocks: Vec<Block>,
    prev: State,
    has_prev: bool,
    clock: f64,
    moves: u64,
    timeline: Timeline,
}

impl Planner {
    fn new(limits: MarlinLimits, opts: MarlinOptions) -> Planner {
        Planner {
            limits,
            opts,
            blocks: Vec::with_capacity(REFRESH_THRESHOLD + 2),
            prev: State::default(),
            has_prev: false,
            clock: 0.0,
            moves: 0,
            timeline: Timeline::default(),
        }
    }

    /// Queues one linear move; `feedrate` in mm/s (M220 applied), `flow` the M221 factor.
    fn add(&mut self, meta: Meta, start: [f64; 4], end: [f64; 4], feedrate: f64, flow: f64) {
        let mut d = [0.0; 4];
        for a in 0..4 {
            d[a] = end[a] - start[a];
        }
        if d.iter().all(|&v| v == 0.0) {
            return;
        }
        let xyz2 = d[X] * d[X] + d[Y] * d[Y] + d[Z] * d[Z];
        let distance = if xyz2 > 0.0 { xyz2.sqrt() } else { d[E].abs() };
        let inv = 1.0 / distance;
        let e_only = xyz2 == 0.0;
        // PrusaSlicer's move types: extruding only when XY moves forward with E.
        let travel = !e_only && (d[E] <= 0.0 || (d[X] == 0.0 && d[Y] == 0.0));
        let row_kind = if e_only {
            if d[E] < 0.0 {
                kind::RETRACT
            } else {
                kind::EXTRUDE_ONLY
            }
        } else if d[E] > 0.0 {
            kind::PRINT
        } else {
            kind::TRAVEL
        };
        let lim = &self.limits;
        let min_feed = if d[E] == 0.0 {
            lim.min_travel_feedrate
        } else {
            lim.min_feedrate
        };
        let mut cur = State {
            feedrate: feedrate.max(min_feed),
            ..Default::default()
        };

        // Cruise speed, limited per axis (M203).
        let mut factor: f64 = 1.0;
        for a in 0..4 {
            let mut v = cur.feedrate * d[a] * inv;
            if a == E {
                v *= flow;
            }
            cur.axis_v[a] = v;
            let max = lim.max_feedrate[a];
            if v != 0.0 && max > 0.0 {
                factor = factor.min(max / v.abs());
            }
        }
        let nominal = factor * cur.feedrate;
        if factor < 1.0 {
            for v in &mut cur.axis_v {
                *v *= factor;
            }
        }
        cur.nominal = nominal;
        if !e_only {
            cur.unit = [d[X] * inv, d[Y] * inv, d[Z] * inv];
        }

        // Acceleration (M204), limited per axis (M201).
        let mut accel = if travel {
            lim.travel_accel
        } else if e_only {
            lim.retract_accel
        } else {
            lim.accel
        };
        for a in 0..4 {
            let scale = d[a].abs() * inv;
            let max = lim.max_accel[a];
            if accel * scale > max {
                accel = max / scale;
            }
        }

        let mut vmax_junction;
        if self.opts.junction_deviation {
            cur.safe = nominal.min(MINIMUM_PLANNER_SPEED);
            vmax_junction = cur.safe;
            if self.has_prev && !self.blocks.is_empty() && self.prev.nominal > 1e-4 {
                let p = &self.prev;
                let cap = nominal.min(p.nominal);
                if e_only || p.unit == [0.0; 3] {
                    // No direction to deviate from: the extruder's jerk limits the junction.
                    let dv = (p.axis_v[E] - cur.axis_v[E]).abs();
                    vmax_junction = if dv <= lim.jerk[E] {
                        cap
                    } else {
                        cap * lim.jerk[E] / dv
                    };
                } else {
                    let cos = -(p.unit[0] * cur.unit[0]
                        + p.unit[1] * cur.unit[1]
                        + p.unit[2] * cur.unit[2]);
                    if cos > 0.999999 {
                        vmax_junction = MINIMUM_PLANNER_SPEED;
                    } else {
                        let cos = cos.max(-0.999999);
                        let sin_d2 = (0.5 * (1.0 - cos)).sqrt();
                        let v2 = accel * lim.junction_deviation * sin_d2 / (1.0 - sin_d2);
                        vmax_junction = v2.sqrt().min(cap);
                    }
                }
            }
        } else {
            // Classic jerk: the speed from / to rest within every axis' jerk.
            cur.safe = nominal;
            for a in 0..4 {
                let j = lim.jerk[a];
                if cur.axis_v[a].abs() > j {
                    cur.safe = cur.safe.min(j);
                }
            }
            vmax_junction = cur.safe;
            if self.has_prev && !self.blocks.is_empty() && self.prev.feedrate > 1e-4 {
                let p = &self.prev;
                let prev_larger = p.feedrate > nominal;
                let smaller = if prev_larger {
                    nominal / p.feedrate
                } else {
                    p.feedrate / nominal
                };
                vmax_junction = if prev_larger { nominal } else { p.feedrate };
                let mut v_factor = 1.0;
                let mut limited = false;
                for a in 0..4 {
                    let mut v_exit = p.axis_v[a];
                    let mut v_entry = cur.axis_v[a];
                    if prev_larger {
                        v_exit *= smaller;
                    }
                    if limited {
                        v_exit *= v_factor;
                        v_entry *= v_factor;
                    }
                    let jerk = if v_exit > v_entry {
                        if v_entry > 0.0 || v_exit < 0.0 {
                            v_exit - v_entry
                        } else {
                            v_exit.max(-v_entry)
                        }
                    } else if v_entry < 0.0 || v_exit > 0.0 {
                        v_entry - v_exit
                    } else {
                        (-v_exit).max(v_entry)
                    };
                    if jerk > lim.jerk[a] {
                        v_factor *= lim.jerk[a] / jerk;
                        limited = true;
                    }
                }
                if limited {
                    vmax_junction *= v_factor;
                }
                let threshold = vmax_junction * 0.99;
                if p.safe > threshold && cur.safe > threshold {
                    vmax_junction = cur.safe;
                }
            }
        }

        let allowable = max_allowable(accel, cur.safe, distance);
        let block = Block {
            meta,
            kind: row_kind,
            start,
            end,
            distance,
            accel,
            nominal,
            entry: vmax_junction.min(allowable),
            max_entry: vmax_junction,
            safe: cur.safe,
            nominal_length: nominal <= allowable,
            recalc: true,
        };
        self.prev = cur;
        self.has_prev = true;
        self.blocks.push(block);
        self.moves += 1;
        if self.blocks.len() > REFRESH_THRESHOLD {
            self.plan(KEEP_BLOCKS);
        }
    }

    /// Plans the queued blocks and commits all but the newest `keep`.
    fn plan(&mut self, keep: usize) {
        let n = self.blocks.len();
        if n == 0 {
            return;
        }
        let b = &mut self.blocks;
        // Reverse pass.
        for i in (1..n).rev() {
            let next_entry = b[i].entry;
            let next_recalc = b[i].recalc;
            let cur = &mut b[i - 1];
            if cur.entry != cur.max_entry || next_recalc {
                let v = if cur.nominal_length {
                    cur.max_entry
                } else {
                    cur.max_entry
                        .min(max_allowable(cur.accel, next_entry, cur.distance))
                };
                if cur.entry != v {
                    cur.entry = v;
                    cur.recalc = true;
                }
            }
        }
        // Forward pass.
        for i in 0..n.saturating_sub(1) {
            let p = b[i];
            if !p.nominal_length && p.entry < b[i + 1].entry {
                let v = max_allowable(p.accel, p.entry, p.distance);
                if v < b[i + 1].entry {
                    b[i + 1].entry = v;
                    b[i + 1].recalc = true;
                }
            }
        }
        let commit = n - keep.min(n);
        for i in 0..commit {
            let blk = b[i];
            let exit = if i + 1 < n { b[i + 1].entry } else { blk.safe };
            let (accel_t, cruise_t, decel_t, cruise_v, end_v) =
                trapezoid(blk.entry, exit, blk.nominal, blk.accel, blk.distance);
            if self.opts.record {
                self.timeline.push(&Row {
                    meta: blk.meta,
                    kind: blk.kind,
                    flags: if blk.kind <= kind::TRAVEL {
                        super::timeline::flag::KINEMATIC
                    } else {
                        0
                    },
                    t_start: self.clock,
                    accel_t,
                    cruise_t,
                    decel_t,
                    start_v: blk.entry,
                    cruise_v,
                    end_v,
                    accel: blk.accel,
                    start: blk.start,
                    end: blk.end,
                    distance: blk.distance,
                });
            }
            self.clock += accel_t + cruise_t + decel_t;
        }
        if keep > 0 && commit > 0 {
            self.blocks.drain(..commit);
            // The committed blocks fixed the new first block's entry.
            let f = &mut self.blocks[0];
            f.max_entry = f.entry;
        } else if keep == 0 {
            self.blocks.clear();
        }
    }

    /// Empties the queue (the last block ends at its safe speed), then waits `extra` seconds.
    fn sync(&mut self, extra: f64, row: Option<(Meta, u8, [f64; 4])>) {
        self.plan(0);
        if let Some((meta, k, pos)) = row {
            if self.opts.record {
                self.timeline.push(&Row {
                    meta,
                    kind: k,
                    t_start: self.clock,
                    cruise_t: extra,
                    start: pos,
                    end: pos,
                    ..Default::default()
                });
            }
        }
        self.clock += extra;
    }
}

/// Parses the numeric words of a raw G-code line (the command and an N number skipped),
/// letters upper-cased: `M204 P1250 R1250 T1250 ; comment` gives P, R, T.
fn raw_words(line: &[u8]) -> Vec<(u8, f64)> {
    let end = line
        .iter()
        .position(|&c| c == b';' || c == b'\n' || c == b'\r')
        .unwrap_or(line.len());
    let b = &line[..end];
    let mut out = Vec::new();
    let mut i = 0;
    let mut seen_cmd = false;
    while i < b.len() {
        let c = b[i].to_ascii_uppercase();
        if !c.is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        let st = j;
        while j < b.len() && (b[j].is_ascii_digit() || matches!(b[j], b'.' | b'-' | b'+')) {
            j += 1;
        }
        let num = std::str::from_utf8(&b[st..j])
            .ok()
            .and_then(|t| t.parse::<f64>().ok());
        if c == b'N' && !seen_cmd {
        } else if !seen_cmd && matches!(c, b'G' | b'M') {
            seen_cmd = true;
        } else if let Some(v) = num {
            out.push((c, v));
        }
        i = j.max(i + 1);
    }
    out
}

/// Applies an M201/M203/M204/M205 line to the limits. Returns whether the command was one.
pub fn apply_limit_command(limits: &mut MarlinLimits, name: &str, words: &[(u8, f64)]) -> bool {
    let axis = |c: u8| match c {
        b'X' => Some(X),
        b'Y' => Some(Y),
        b'Z' => Some(Z),
        b'E' => Some(E),
        _ => None,
    };
    let get = |c: u8| words.iter().find(|w| w.0 == c).map(|w| w.1);
    match name {
        "M201" => {
            for &(c, v) in words {
                if let Some(a) = axis(c) {
                    limits.max_accel[a] = v;
                }
            }
        }
        "M203" => {
            for &(c, v) in words {
                if let Some(a) = axis(c) {
                    limits.max_feedrate[a] = v;
                }
            }
        }
        "M204" => {
            if let Some(s) = get(b'S') {
                // Legacy format (Marlin 1.x, Prusa MK3): S = print and travel, T = retract.
                limits.set_accel(s);
                limits.set_travel_accel(s);
                if let Some(t) = get(b'T') {
                    limits.retract_accel = t;
                }
            } else {
                if let Some(p) = get(b'P') {
                    limits.set_accel(p);
                }
                if let Some(r) = get(b'R') {
                    limits.retract_accel = r;
                }
                if let Some(t) = get(b'T') {
                    limits.set_travel_accel(t);
                }
            }
        }
        "M205" => {
            if let Some(x) = get(b'X') {
                // Marlin: X sets the X and Y jerk (Y may follow).
                limits.jerk[X] = x;
                limits.jerk[Y] = x;
            }
            if let Some(y) = get(b'Y') {
                limits.jerk[Y] = y;
            }
            if let Some(z) = get(b'Z') {
                limits.jerk[Z] = z;
            }
            if let Some(e) = get(b'E') {
                limits.jerk[E] = e;
            }
            if let Some(s) = get(b'S') {
                limits.min_feedrate = s;
            }
            if let Some(t) = get(b'T') {
                limits.min_travel_feedrate = t;
            }
            if let Some(j) = get(b'J') {
                limits.junction_deviation = j;
            }
        }
        _ => return false,
    }
    true
}

/// The G-code state machine of the Marlin model.
struct Machine {
    p: Planner,
    pos: [f64; 4],
    origin: [f64; 4],
    rel_xyz: bool,
    rel_e: bool,
    /// Feed rate from the last F (mm/s).
    feed: f64,
    speed_factor: f64,
    flow: f64,
    stats: MarlinStats,
    unknown: HashMap<String, u64>,
}

impl Machine {
    fn target(&self, m: &MoveWords) -> [f64; 4] {
        let mut t = self.pos;
        for (a, w) in [m.x, m.y, m.z, m.e].iter().enumerate() {
            if let Some(v) = w.num() {
                let rel = self.rel_xyz || (a == E && self.rel_e);
                t[a] = if rel {
                    self.pos[a] + v
                } else {
                    self.origin[a] + v
                };
            }
        }
        t
    }

    fn set_feed(&mut self, f: Word) {
        if let Some(v) = f.num() {
            if v > 0.0 {
                self.feed = v / 60.0;
            }
        }
    }

    fn line_move(&mut self, meta: Meta, target: [f64; 4]) {
        let feed = self.feed * self.speed_factor;
        self.p.add(meta, self.pos, target, feed, self.flow);
        self.pos = target;
    }

    fn arc(&mut self, a: &ArcWords, meta: Meta) {
        self.set_feed(a.m.f);
        let end = self.target(&a.m);
        let start = self.pos;
        let (dx, dy) = (end[X] - start[X], end[Y] - start[Y]);
        let center = if let Some(r) = a.r.num() {
            // R form: the centre on the chord's perpendicular bisector.
            let d = (dx * dx + dy * dy).sqrt();
            if d == 0.0 || r == 0.0 {
                return self.line_move(meta, end);
            }
            let h = ((r * r - d * d / 4.0).max(0.0)).sqrt();
            let mut s = if a.clockwise { -1.0 } else { 1.0 };
            if r < 0.0 {
                s = -s;
            }
            let (mx, my) = (start[X] + dx / 2.0, start[Y] + dy / 2.0);
            [mx - s * h * dy / d, my + s * h * dx / d]
        } else {
            let (i, j) = (a.i.num().unwrap_or(0.0), a.j.num().unwrap_or(0.0));
            if i == 0.0 && j == 0.0 {
                return self.line_move(meta, end);
            }
            [start[X] + i, start[Y] + j]
        };
        let (r0x, r0y) = (start[X] - center[0], start[Y] - center[1]);
        let (r1x, r1y) = (end[X] - center[0], end[Y] - center[1]);
        let radius = (r0x * r0x + r0y * r0y).sqrt();
        let mut angle = if dx.abs() < 1e-9 && dy.abs() < 1e-9 {
            2.0 * std::f64::consts::PI
        } else {
            let mut t = (r0x * r1y - r0y * r1x).atan2(r0x * r1x + r0y * r1y);
            if t < 0.0 {
                t += 2.0 * std::f64::consts::PI;
            }
            t
        };
        if a.clockwise {
            angle -= 2.0 * std::f64::consts::PI;
        }
        let flat = radius * angle.abs();
        // Segment length as Marlin 2 / Prusa-Firmware-Buddy: from the chord deviation and
        // 50 segments per second, within 0.1 to 2 mm.
        let feed = self.feed * self.speed_factor;
        let seg_mm = (8.0 * radius * 0.02)
            .sqrt()
            .min(feed / 50.0)
            .clamp(0.1, 2.0);
        let segments = ((flat / seg_mm + 0.8).floor() as u64).clamp(1, 100_000);
        let theta = angle / segments as f64;
        for k in 1..segments {
            let t = theta * k as f64;
            let (c, s) = (t.cos(), t.sin());
            let f = k as f64 / segments as f64;
            let target = [
                center[0] + r0x * c - r0y * s,
                center[1] + r0x * s + r0y * c,
                start[Z] + (end[Z] - start[Z]) * f,
                start[E] + (end[E] - start[E]) * f,
            ];
            self.line_move(meta, target);
        }
        self.stats.arc_segments += segments;
        self.line_move(meta, end);
    }

    fn run(&mut self, cmd: &Cmd, names: &[String], text: &[u8]) {
        let meta = Meta {
            line: cmd.line,
            offset: cmd.offset,
            layer: cmd.layer,
            feature: cmd.feature,
            object: cmd.object,
        };
        match &cmd.op {
            Op::Move(m) => {
                self.set_feed(m.f);
                let t = self.target(m);
                self.line_move(meta, t);
            }
            Op::Arc(a) => self.arc(a, meta),
            Op::Dwell { p, s } => {
                let secs = match (s.num(), p.num()) {
                    (Some(s), _) => s,
                    (None, Some(p)) => p / 1000.0,
                    _ => 0.0,
                }
                .max(0.0);
                self.stats.dwell_time += secs;
                self.stats.dwell_count += 1;
                let t = if self.p.opts.dwell { secs } else { 0.0 };
                self.p.sync(t, Some((meta, kind::DWELL, self.pos)));
            }
            Op::Home { x, y, z } => {
                self.stats.g28_count += 1;
                let mut t = self.pos;
                for (a, on) in [*x, *y, *z].iter().enumerate() {
                    if *on && !self.rel_xyz {
                        t[a] = self.origin[a];
                    }
                }
                self.line_move(meta, t);
                let ht = self.p.opts.home_time;
                self.p
                    .sync(ht, (ht > 0.0).then_some((meta, kind::HOME, self.pos)));
            }
            Op::AbsoluteCoords => self.rel_xyz = false,
            Op::RelativeCoords => self.rel_xyz = true,
            Op::AbsoluteExtrude => self.rel_e = false,
            Op::RelativeExtrude => self.rel_e = true,
            Op::SetPosition { x, y, z, e } => {
                let mut any = false;
                for (a, w) in [x, y, z].iter().enumerate() {
                    if let Some(v) = w.num() {
                        self.origin[a] = self.pos[a] - v;
                        any = true;
                    }
                }
                if let Some(v) = e.num() {
                    self.pos[E] = v;
                    any = true;
                } else {
                    self.p.sync(0.0, None);
                }
                if !(any || x.present() || y.present() || z.present() || e.present()) {
                    self.origin = self.pos;
                }
            }
            Op::SpeedFactor(s) => {
                if let Some(v) = s.num() {
                    if v > 0.0 {
                        self.speed_factor = v / 100.0;
                    }
                }
            }
            Op::ExtrudeFactor(s) => {
                if let Some(v) = s.num() {
                    if v > 0.0 {
                        self.flow = v / 100.0;
                    }
                }
            }
            Op::WaitMoves | Op::HeaterWait => self.p.sync(0.0, None),
            Op::SetAccel { .. } => self.limit_line("M204", cmd, text),
            Op::Unknown(id) => {
                let name = names.get(*id as usize).map(|s| s.as_str()).unwrap_or("");
                match name {
                    "M201" | "M203" | "M205" => self.limit_line(name, cmd, text),
                    "M0" | "M1" => self.p.sync(0.0, None),
                    // Leading zeros Klipper keeps but Marlin drops.
                    "G00" | "G01" => {
                        let w = raw_words(
                            &text[cmd.offset as usize..(cmd.end as usize).min(text.len())],
                        );
                        let get = |c: u8| {
                            w.iter()
                                .find(|x| x.0 == c)
                                .map_or(Word::ABSENT, |x| Word::of(x.1))
                        };
                        let m = MoveWords {
                            x: get(b'X'),
                            y: get(b'Y'),
                            z: get(b'Z'),
                            e: get(b'E'),
                            f: get(b'F'),
                        };
                        self.set_feed(m.f);
                        let t = self.target(&m);
                        self.line_move(meta, t);
                    }
                    _ => *self.unknown.entry(name.to_string()).or_default() += 1,
                }
            }
            // Firmware retraction, fans, heater targets, offsets ...: no time in this model.
            _ => {}
        }
    }

    fn limit_line(&mut self, name: &str, cmd: &Cmd, text: &[u8]) {
        let end = (cmd.end as usize).min(text.len());
        let start = (cmd.offset as usize).min(end);
        let words = raw_words(&text[start..end]);
        if apply_limit_command(&mut self.p.limits, name, &words) {
            self.stats.m201_203_204_205 += 1;
        }
    }
}

/// The limits a file states in its slicer configuration block over `base` (see
/// `MarlinLimits::apply_slicer_settings`); the bool says whether they applied.
pub fn limits_from_parsed(parsed: &Parsed, base: &MarlinLimits) -> (MarlinLimits, bool) {
    let mut l = base.clone();
    let settings = &parsed.context.summary.settings;
    let ok = l.apply_slicer_settings(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    (l, ok)
}

/// Plans a parsed file with the Marlin model. `limits`: the starting limits (`None`: Marlin's
/// defaults overlaid with the file's slicer machine limits). Returns the plan (its `total_time`
/// is the sum of all move and dwell times, from 0) and statistics.
pub fn plan_marlin(
    parsed: &Parsed,
    text: &[u8],
    limits: Option<&MarlinLimits>,
    opts: &MarlinOptions,
) -> (Plan, MarlinStats) {
    let (limits, slicer) = match limits {
        Some(l) => (l.clone(), false),
        None => limits_from_parsed(parsed, &MarlinLimits::default()),
    };
    // The shared input classifies G2/G3 and G10/G11 only when the Klipper config has them.
    let cfg = PrinterConfig {
        arc_resolution: Some(1.0),
        firmware_retraction: Some(FirmwareRetraction::default()),
        ..PrinterConfig::default()
    };
    let mut input = Input::new(parsed, text, &cfg);
    let mut m = Machine {
        p: Planner::new(limits.clone(), *opts),
        pos: [0.0; 4],
        origin: [0.0; 4],
        rel_xyz: false,
        rel_e: false,
        feed: 0.0,
        speed_factor: 1.0,
        flow: 1.0,
        stats: MarlinStats {
            initial_limits: Some(limits),
            slicer_limits: slicer,
            ..Default::default()
        },
        unknown: HashMap::new(),
    };
    let names = input.names.clone();
    input.for_each_until(|cmd| {
        m.run(cmd, &names, text);
        true
    });
    m.p.sync(0.0, None);
    let mut unknown: Vec<(String, u64)> = m.unknown.into_iter().collect();
    unknown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let plan = Plan {
        timeline: std::mem::take(&mut m.p.timeline),
        total_time: m.p.clock,
        moves: m.p.moves,
        diagnostics: Vec::new(),
        diagnostics_total: 0,
        first_error: None,
        stopped_at_error: false,
        unknown_commands: unknown,
        invalid_m204: 0,
        g28_count: m.stats.g28_count,
        g28_time: 0.0,
        arc_segments: m.stats.arc_segments,
    };
    (plan, m.stats)
}

/// Parses and plans G-code text in one call.
pub fn plan_marlin_text(
    text: &[u8],
    limits: Option<&MarlinLimits>,
    opts: &MarlinOptions,
) -> (Plan, MarlinStats) {
    let src = crate::gcode::Source::from_bytes(text.to_vec(), "<text>").expect("in-memory source");
    let parsed = crate::gcode::parse(
        &src,
        &crate::gcode::Options {
            threads: 1,
            ..Default::default()
        },
    );
    plan_marlin(&parsed, &src.text, limits, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn trapezoid_by_hand() {
        // 0 -> 100 mm/s at 1000 mm/s²: 5 mm and 0.1 s each way; 90 mm cruise in 0.9 s.
        let (a, c, d, v, end) = trapezoid(0.0, 0.0, 100.0, 1000.0, 100.0);
        assert!(close(a, 0.1, 1e-12) && close(c, 0.9, 1e-12) && close(d, 0.1, 1e-12));
        assert!(close(v, 100.0, 1e-12) && close(end, 0.0, 1e-9));
        // Too short to cruise: a triangle peaking at sqrt(2·1000·2.5) after 2.5 mm.
        let (a, c, d, v, _) = trapezoid(0.0, 0.0, 100.0, 1000.0, 5.0);
        let peak = 5000f64.sqrt();
        assert!(close(v, peak, 1e-9) && c == 0.0);
        assert!(close(a, peak / 1000.0, 1e-12) && close(d, peak / 1000.0, 1e-9));
        // Entry 20, exit 10, nominal 50, a 500 over 10 mm: 2.1 + 2.4 mm ramps, 5.5 mm cruise.
        let (a, c, d, _, _) = trapezoid(20.0, 10.0, 50.0, 500.0, 10.0);
        assert!(close(a, 0.06, 1e-12) && close(c, 5.5 / 50.0, 1e-12) && close(d, 0.08, 1e-12));
    }

    const HEAD: &str = "M201 X1000 Y1000 Z200 E5000\nM203 X200 Y200 Z12 E120\nM204 P1000 R1000 T1000\nM205 X10 Y10 Z0.4 E4.5\n";

    #[test]
    fn single_move_starts_and_ends_at_safe_speed() {
        let g = format!("{HEAD}G1 X100 F6000\n");
        let (p, _) = plan_marlin_text(g.as_bytes(), None, &MarlinOptions::default());
        // 10 -> 100 mm/s at 1000: 4.95 mm and 0.09 s each way, 90.1 mm cruise.
        assert!(
            close(p.total_time, 0.09 + 0.901 + 0.09, 1e-9),
            "{}",
            p.total_time
        );
        assert_eq!(p.timeline.len(), 1);
        assert!(close(p.timeline.start_v[0], 10.0, 1e-9) && close(p.timeline.end_v[0], 10.0, 1e-9));
        // M203 caps the feed: F30000 -> 200 mm/s.
        let g = format!("{HEAD}G1 X100 F30000\n");
        let (p, _) = plan_marlin_text(g.as_bytes(), None, &MarlinOptions::default());
        assert!(close(p.timeline.cruise_v[0], 200.0, 1e-9));
    }

    #[test]
    fn jerk_junction_on_a_right_angle() {
        for jerk in [10.0, 20.0] {
            let g = format!("{HEAD}M205 X{jerk}\nG1 X100 F6000\nG1 Y100\n");
            let (p, _) = plan_marlin_text(g.as_bytes(), None, &MarlinOptions::default());
            let t = &p.timeline;
            assert_eq!(t.len(), 2);
            // X stops and Y starts: the whole 100 mm/s change of either axis must fit within
            // the jerk, so the corner is taken at the jerk speed.
            assert!(
                close(t.end_v[0], jerk, 1e-9) && close(t.start_v[1], jerk, 1e-9),
                "{jerk}: {t:?}"
            );
        }
        // Straight continuation: no slowdown at the junction.
        let g = format!("{HEAD}G1 X100 F6000\nG1 X200\n");
        let (p, _) = plan_marlin_text(g.as_bytes(), None, &MarlinOptions::default());
        assert!(close(p.timeline.end_v[0], 100.0, 1e-9));
        assert!(
            close(p.total_time, 0.09 + 1.901 + 0.09, 1e-9),
            "{}",
            p.total_time
        );
    }

    #[test]
    fn junction_deviation_on_a_right_angle() {
        let g = format!("{HEAD}M205 J0.013\nG1 X100 F6000\nG1 Y100\n");
        let opts = MarlinOptions {
            junction_deviation: true,
            ..Default::default()
        };
        let (p, _) = plan_marlin_text(g.as_bytes(), None, &opts);
        let s = 0.5f64.sqrt();
        let v = (1000.0 * 0.013 * s / (1.0 - s)).sqrt();
        assert!(
            close(p.timeline.start_v[1], v, 1e-9),
            "{} vs {v}",
            p.timeline.start_v[1]
        );
        assert!(close(p.timeline.start_v[0], MINIMUM_PLANNER_SPEED, 1e-12));
    }

    #[test]
    fn limit_commands() {
        let mut l = MarlinLimits::default();
        let w = raw_words(b"M201 X1000 Y900 Z200 E5000 ; sets maximum accelerations, mm/sec^2\n");
        assert!(apply_limit_command(&mut l, "M201", &w));
        assert_eq!(l.max_accel, [1000.0, 900.0, 200.0, 5000.0]);
        apply_limit_command(&mut l, "M203", &raw_words(b"M203 X200 Y200 Z12 E120"));
        assert_eq!(l.max_feedrate, [200.0, 200.0, 12.0, 120.0]);
        apply_limit_command(&mut l, "M204", &raw_words(b"M204 P1250 R1100 T1500"));
        assert_eq!(
            (l.accel, l.retract_accel, l.travel_accel),
            (1250.0, 1100.0, 1500.0)
        );
        // Legacy form: S sets print and travel, T the retraction.
        apply_limit_command(&mut l, "M204", &raw_words(b"M204 S500 T900"));
        assert_eq!(
            (l.accel, l.retract_accel, l.travel_accel),
            (500.0, 900.0, 500.0)
        );
        apply_limit_command(
            &mut l,
            "M205",
            &raw_words(b"N12 M205 X8 Z0.4 E4.5 S1 T2 J0.02"),
        );
        assert_eq!(l.jerk, [8.0, 8.0, 0.4, 4.5]);
        assert_eq!(
            (l.min_feedrate, l.min_travel_feedrate, l.junction_deviation),
            (1.0, 2.0, 0.02)
        );
        apply_limit_command(&mut l, "M205", &raw_words(b"M205 Y9"));
        assert_eq!(l.jerk[1], 9.0);
        assert!(!apply_limit_command(&mut l, "M206", &[]));
        // From the G-code: the M204 line changes the travel acceleration of the next move.
        let g = format!("{HEAD}G1 X10 F6000\nM204 T200\nG1 X20 F6000\n");
        let (p, st) = plan_marlin_text(g.as_bytes(), None, &MarlinOptions::default());
        assert_eq!(st.m201_203_204_205, 5);
        assert_eq!((p.timeline.accel[0], p.timeline.accel[1]), (1000.0, 200.0));
    }

    #[test]
    fn dwell_and_speed_factor() {
        let g = format!("{HEAD}G4 P500\nG4 S1\nM220 S50\nG1 X100 F12000\n");
        let (p, st) = plan_marlin_text(g.as_bytes(), None, &MarlinOptions::default());
        assert!(close(st.dwell_time, 1.5, 1e-12));
        assert!(
            close(p.total_time, 1.5 + 0.09 + 0.901 + 0.09, 1e-9),
            "{}",
            p.total_time
        );
        let (p, _) = plan_marlin_text(g.as_bytes(), None, &MarlinOptions::slicer_compatible());
        assert!(close(p.total_time, 0.09 + 0.901 + 0.09, 1e-9));
    }

    /// PrusaSlicer's MK3S estimate (Marlin-based Prusa firmware). The model follows the same
    /// algorithm as the slicer's estimator, so the remaining difference is the slicer's float32
    /// arithmetic and its whole-second rounding: measured +0.02 % (1737.4 s vs 1737 s). The gate
    /// is 0.5 % so that it catches a modelling regression (a wrong junction rule or limit moves
    /// this file by 1-5 %) without depending on rounding.
    #[test]
    fn corpus_mk3s_matches_prusaslicer() {
        for (name, tol) in [
            ("ps_mk3s_box20_0.20_15gyroid.gcode", 0.5),
            ("ps_ender3_cylinder_0.20_100rect.gcode", 0.5),
        ] {
            let path = std::path::Path::new("/work/shared/corpus/sliced").join(name);
            if !path.exists() {
                eprintln!("skipped: {} absent", path.display());
                continue;
            }
            let src = crate::gcode::Source::open(&path).unwrap();
            let parsed = crate::gcode::parse(&src, &crate::gcode::Options::default());
            let est = parsed.context.summary.estimated_time().expect("estimate");
            let (p, st) = plan_marlin(
                &parsed,
                &src.text,
                None,
                &MarlinOptions::slicer_compatible(),
            );
            assert!(st.slicer_limits);
            let d = (p.total_time - est) / est * 100.0;
            assert!(
                d.abs() < tol,
                "{name}: ours {:.1} s, PrusaSlicer {est} s ({d:+.2} %)",
                p.total_time
            );
            // Per-layer totals add up to the whole.
            let layers: f64 = p
                .timeline
                .totals_by(&p.timeline.layer)
                .iter()
                .map(|x| x.1)
                .sum();
            assert!(close(layers, p.total_time, 1e-6 * p.total_time));
        }
    }
}
