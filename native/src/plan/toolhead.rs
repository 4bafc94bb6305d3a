//! Trapezoid moves, look-ahead and the print clock, following what Klipper's toolhead does in
//! batch mode (`klippy.py -i FILE -o /dev/null`).
//!
//! Velocities are tracked squared (`*_v2`, mm²/s²), as Klipper does, so that junction limits
//! and reachable speeds combine by addition; times and positions are kept in the same order of
//! operations so that the clock agrees with Klipper's to floating-point rounding.

use std::collections::VecDeque;

use super::config::PrinterConfig;
use super::timeline::{flag, kind, Meta, Row, Timeline};

/// Moves queue up to this much time (s) before a lazy look-ahead flush is tried.
const LOOKAHEAD_FLUSH_TIME: f64 = 0.150;
/// Queue time before the first flush after the toolhead was idle (s).
const BUFFER_TIME_HIGH: f64 = 1.0;
/// The clock of the first move after idling (the MCU clock estimate is 0 in batch mode).
const BUFFER_TIME_START: f64 = 0.250;
const MIN_KIN_TIME: f64 = 0.100;
/// Step-generation look-back without pressure advance (`SDS_CHECK_TIME`).
const SDS_CHECK_TIME: f64 = 0.001;
const BGFLUSH_EXTRA_TIME: f64 = 0.250;
const BGFLUSH_BATCH_TIME: f64 = 0.700 - 0.450;
/// The batch-mode flush timer keeps step generation this far behind the queued motion (s).
const BGFLUSH_FAUX_LAG: f64 = 1.5;
/// Acceleration given to extruder-only moves before the extruder limits them.
const EXTRUDE_ONLY_ACCEL: f64 = 99999999.9;
/// Sentinel for "no junction limit from the next move" (as Klipper's).
const NO_JUNCTION_LIMIT: f64 = 999999999.9;

/// A rejected or doubtful move, as Klipper would report it.
#[derive(Debug, Clone, PartialEq)]
pub struct MoveIssue {
    pub code: &'static str,
    pub message: String,
}

/// One queued move.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Move {
    pub start: [f64; 4],
    pub end: [f64; 4],
    pub axes_r: [f64; 4],
    pub move_d: f64,
    pub accel: f64,
    pub junction_deviation: f64,
    pub kinematic: bool,
    pub min_move_t: f64,
    pub max_start_v2: f64,
    pub max_cruise_v2: f64,
    pub delta_v2: f64,
    pub max_mcr_start_v2: f64,
    pub mcr_delta_v2: f64,
    // Backward-pass results, then the trapezoid.
    j_start_v2: f64,
    j_cruise_v2: f64,
    j_next_v2: f64,
    pub start_v: f64,
    pub cruise_v: f64,
    pub end_v: f64,
    pub accel_t: f64,
    pub cruise_t: f64,
    pub decel_t: f64,
    pub meta: Meta,
    pub kind: u8,
    pub flags: u8,
    pub seq: u64,
}

impl Move {
    /// Distance along axis `i` (0 on X/Y/Z for extruder-only moves).
    #[inline(always)]
    fn d(&self, i: usize) -> f64 {
        self.end[i] - self.start[i]
    }

    fn limit_speed(&mut self, speed: f64, accel: f64) {
        let speed2 = speed * speed;
        if speed2 < self.max_cruise_v2 {
            self.max_cruise_v2 = speed2;
            self.min_move_t = self.move_d / speed;
        }
        self.accel = pmin(self.accel, accel);
        self.delta_v2 = 2.0 * self.move_d * self.accel;
        self.mcr_delta_v2 = pmin(self.mcr_delta_v2, self.delta_v2);
    }

    /// Junction limit with the previous move (squared speeds).
    fn calc_junction(&mut self, prev: &Move, icv: f64) {
        if !self.kinematic || !prev.kinematic {
            return;
        }
        // The extruder's instantaneous corner velocity limits changes of the E/XYZ ratio.
        let diff_r = self.axes_r[3] - prev.axes_r[3];
        let extruder_v2 = if diff_r != 0.0 {
            let v = icv / diff_r.abs();
            v * v
        } else {
            self.max_cruise_v2
        };
        let mut max_start_v2 = pmin(
            pmin(
                pmin(pmin(self.max_cruise_v2, prev.max_cruise_v2), NO_JUNCTION_LIMIT),
                prev.max_start_v2 + prev.delta_v2,
            ),
            extruder_v2,
        );
        // Junction deviation: the speed of a circle touching both moves.
        let r = &self.axes_r;
        let pr = &prev.axes_r;
        let junction_cos_theta = -(r[0] * pr[0] + r[1] * pr[1] + r[2] * pr[2]);
        let sin_theta_d2 = pmax(0.5 * (1.0 - junction_cos_theta), 0.0).sqrt();
        let cos_theta_d2 = pmax(0.5 * (1.0 + junction_cos_theta), 0.0).sqrt();
        let one_minus_sin_theta_d2 = 1.0 - sin_theta_d2;
        if one_minus_sin_theta_d2 > 0.0 && cos_theta_d2 > 0.0 {
            let r_jd = sin_theta_d2 / one_minus_sin_theta_d2;
            let move_jd_v2 = r_jd * self.junction_deviation * self.accel;
            let pmove_jd_v2 = r_jd * prev.junction_deviation * prev.accel;
            // The circle may not reach past the middle of either move.
            let quarter_tan_theta_d2 = 0.25 * sin_theta_d2 / cos_theta_d2;
            let move_centripetal_v2 = self.delta_v2 * quarter_tan_theta_d2;
            let pmove_centripetal_v2 = prev.delta_v2 * quarter_tan_theta_d2;
            max_start_v2 = pmin(
                pmin(pmin(pmin(max_start_v2, move_jd_v2), pmove_jd_v2), move_centripetal_v2),
                pmove_centripetal_v2,
            );
        }
        self.max_start_v2 = max_start_v2;
        self.max_mcr_start_v2 = pmin(max_start_v2, prev.max_mcr_start_v2 + prev.mcr_delta_v2);
    }

    /// The trapezoid for the given squared speeds. `memo` holds the last (v², v) pair so the
    /// shared junction speed of consecutive moves is rooted once (the value is identical).
    fn set_junction(&mut self, start_v2: f64, cruise_v2: f64, end_v2: f64, memo: &mut (f64, f64)) {
        let half_inv_accel = 0.5 / self.accel;
        let accel_d = (cruise_v2 - start_v2) * half_inv_accel;
        let decel_d = (cruise_v2 - end_v2) * half_inv_accel;
        let cruise_d = self.move_d - accel_d - decel_d;
        let start_v = if start_v2 == memo.0 { memo.1 } else { start_v2.sqrt() };
        let cruise_v = cruise_v2.sqrt();
        let end_v = end_v2.sqrt();
        *memo = (end_v2, end_v);
        self.start_v = start_v;
        self.cruise_v = cruise_v;
        self.end_v = end_v;
        if cruise_v > 0.0 {
            self.accel_t = accel_d / ((start_v + cruise_v) * 0.5);
            self.cruise_t = cruise_d / cruise_v;
            self.decel_t = decel_d / ((end_v + cruise_v) * 0.5);
        } else {
            // Only reachable with a degenerate speed limit; keep the row finite.
            self.accel_t = 0.0;
            self.cruise_t = 0.0;
            self.decel_t = 0.0;
        }
    }
}

/// Extruder limits used by `check_move`.
#[derive(Debug, Clone, Copy)]
struct ExtruderLimits {
    max_e_velocity: f64,
    max_e_accel: f64,
    max_e_dist: f64,
    icv: f64,
    max_extrude_ratio: f64,
    nozzle_diameter: f64,
    filament_area: f64,
}

/// How Klipper's batch-mode background flush timer is modelled. The timer only changes the
/// clock where it finds the queue idle: it then flushes the look-ahead (the moves end at a
/// stop) and the next moves re-sync 0.25 s after the last queued motion, or later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushTimer {
    /// Never runs: the clock is a pure function of the moves.
    Off,
    /// Runs where Klipper's G-code processing yields to the reactor in batch mode: after a
    /// move while the clock is below 1 s (the toolhead's pause check), and at the end of the
    /// input.
    Batch,
    /// As `Batch`, and also after every `n`-byte read of the input, as the reactor loop does
    /// between reads.
    Reads(u64),
}

/// Something waiting for the end of a queued move (Klipper's look-ahead callbacks).
#[derive(Debug, Clone, Copy)]
enum Callback {
    /// A zero-length row (heater waits).
    Row(Meta, u8),
    /// A fan speed request.
    Fan(f64),
}

#[derive(Debug, Clone, Copy)]
struct Marker {
    after_seq: u64,
    cb: Callback,
}

/// The part-cooling fan's request queue: fan changes are sent to the MCU when step generation
/// passes their time, and each one keeps the MCU queue busy a little longer, which moves the
/// clock the flush timer re-syncs to.
#[derive(Debug, Clone, Default)]
struct FanQueue {
    enabled: bool,
    max_power: f64,
    kick_start_time: f64,
    off_below: f64,
    last_value: f64,
    requests: VecDeque<(f64, f64)>,
    next_min_flush_time: f64,
}

/// Klipper's `MIN_SCHEDULE_TIME` for MCU output pins (s).
const MIN_SCHEDULE_TIME: f64 = 0.100;

pub struct Toolhead {
    pub print_time: f64,
    /// Klipper's "NeedPrime" state: the next flushed moves re-sync the clock.
    need_prime: bool,
    last_step_gen_time: f64,
    last_flush_time: f64,
    need_step_gen_time: f64,
    need_flush_time: f64,
    kin_flush_delay: f64,
    timer_armed: bool,
    timer_kick: bool,
    timer_mode: FlushTimer,
    need_check_pause: f64,
    /// Input pieces read so far (`FlushTimer::Reads`).
    pub reads_done: u64,
    /// A piece was read while G-code processing yielded (at most one per round).
    pub read_in_yield: bool,
    /// The look-ahead queue is `queue[head..]` (planned moves are dropped from the front in
    /// batches, not one memmove per flush).
    queue: Vec<Move>,
    head: usize,
    /// Moves at the end of the queue whose junction is not computed yet.
    unlinked: usize,
    junction_flush: f64,
    pub max_velocity: f64,
    pub max_accel: f64,
    pub square_corner_velocity: f64,
    pub min_cruise_ratio: f64,
    junction_deviation: f64,
    mcr_pseudo_accel: f64,
    max_z_velocity: f64,
    max_z_accel: f64,
    ext: ExtruderLimits,
    /// Klipper's commanded position (X, Y, Z, E).
    pub pos: [f64; 4],
    /// Allowed range per axis; (1, -1) while not homed.
    pub limits: [(f64, f64); 3],
    pub motors_enabled: bool,
    markers: VecDeque<Marker>,
    /// Start times of the batch being committed.
    t_buf: Vec<f64>,
    fan: FanQueue,
    seq: u64,
    pub timeline: Timeline,
    /// Keep rows (off: only the clock is computed).
    pub record: bool,
    pub moves_planned: u64,
    /// Kind and extra flags for the next queued move (arcs, homing retracts).
    pub next_kind: Option<u8>,
    pub next_flags: u8,
}

impl Toolhead {
    pub fn new(cfg: &PrinterConfig, rows_hint: usize, record: bool, reuse: Option<Timeline>) -> Toolhead {
        let e = &cfg.extruder;
        let mut th = Toolhead {
            print_time: 0.0,
            need_prime: true,
            last_step_gen_time: 0.0,
            last_flush_time: 0.0,
            need_step_gen_time: 0.0,
            need_flush_time: 0.0,
            kin_flush_delay: SDS_CHECK_TIME,
            timer_armed: false,
            timer_kick: true,
            timer_mode: FlushTimer::Batch,
            need_check_pause: -1.0,
            reads_done: 0,
            read_in_yield: false,
            queue: Vec::with_capacity(256),
            head: 0,
            unlinked: 0,
            junction_flush: BUFFER_TIME_HIGH,
            max_velocity: cfg.max_velocity,
            max_accel: cfg.max_accel,
            square_corner_velocity: cfg.square_corner_velocity,
            min_cruise_ratio: cfg.minimum_cruise_ratio,
            junction_deviation: 0.0,
            mcr_pseudo_accel: 0.0,
            max_z_velocity: cfg.max_z_velocity,
            max_z_accel: cfg.max_z_accel,
            ext: ExtruderLimits {
                max_e_velocity: e.max_extrude_only_velocity,
                max_e_accel: e.max_extrude_only_accel,
                max_e_dist: e.max_extrude_only_distance,
                icv: e.instantaneous_corner_velocity,
                max_extrude_ratio: e.max_extrude_ratio(),
                nozzle_diameter: e.nozzle_diameter,
                filament_area: e.filament_area(),
            },
            pos: [0.0; 4],
            limits: [(1.0, -1.0); 3],
            motors_enabled: false,
            markers: VecDeque::new(),
            t_buf: Vec::with_capacity(256),
            fan: match &cfg.fan {
                Some(f) => FanQueue {
                    enabled: true,
                    max_power: f.max_power,
                    kick_start_time: f.kick_start_time,
                    off_below: f.off_below,
                    ..FanQueue::default()
                },
                None => FanQueue::default(),
            },
            seq: 0,
            timeline: match (record, reuse) {
                (false, _) => Timeline::default(),
                (true, Some(mut t)) => {
                    t.clear_for(rows_hint);
                    t
                }
                (true, None) => Timeline::with_capacity(rows_hint),
            },
            record,
            moves_planned: 0,
            next_kind: None,
            next_flags: 0,
        };
        th.calc_junction_deviation();
        if e.pressure_advance > 0.0 {
            th.kin_flush_delay = SDS_CHECK_TIME.max(e.pressure_advance_smooth_time * 0.5);
        }
        th
    }

    fn calc_junction_deviation(&mut self) {
        let scv2 = self.square_corner_velocity * self.square_corner_velocity;
        self.junction_deviation = scv2 * (2f64.sqrt() - 1.0) / self.max_accel;
        self.mcr_pseudo_accel = self.max_accel * (1.0 - self.min_cruise_ratio);
    }

    /// SET_VELOCITY_LIMIT / M204: None keeps a value.
    pub fn set_max_velocities(
        &mut self,
        velocity: Option<f64>,
        accel: Option<f64>,
        scv: Option<f64>,
        mcr: Option<f64>,
    ) {
        if let Some(v) = velocity {
            self.max_velocity = v;
        }
        if let Some(a) = accel {
            self.max_accel = a;
        }
        if let Some(s) = scv {
            self.square_corner_velocity = s;
        }
        if let Some(m) = mcr {
            self.min_cruise_ratio = m;
        }
        self.calc_junction_deviation();
    }

    pub fn set_flush_timer(&mut self, mode: FlushTimer) {
        self.timer_mode = mode;
    }

    /// Klipper's `_check_pause` in batch mode: it cannot pause, but while the clock is below
    /// `BUFFER_TIME_HIGH` a running queue yields to the reactor, whose flush timer then runs.
    fn check_pause(&mut self) {
        if self.print_time - BUFFER_TIME_HIGH <= 0.0 {
            if !self.need_prime {
                self.need_check_pause = self.print_time;
                // The reactor reads one more piece of input (buffered) and runs its timers.
                if let FlushTimer::Reads(_) = self.timer_mode {
                    if !self.read_in_yield {
                        self.reads_done += 1;
                        self.read_in_yield = true;
                    }
                }
                if self.timer_mode != FlushTimer::Off {
                    self.flush_timer();
                }
            }
        } else {
            self.need_check_pause = f64::INFINITY;
        }
    }

    pub fn kin_flush_delay(&self) -> f64 {
        self.kin_flush_delay
    }

    /// Pressure advance with a new smoothing window changes how far step generation looks
    /// around a move (Klipper flushes everything first).
    pub fn set_step_scan_window(&mut self, half_smooth_time: f64) {
        self.flush_step_generation();
        self.kin_flush_delay = SDS_CHECK_TIME.max(half_smooth_time);
    }

    pub fn set_extruder_limits_distance(&mut self, max_e_dist: f64) {
        self.ext.max_e_dist = max_e_dist;
    }

    // ---- Moves ----

    fn new_move(&self, start: [f64; 4], end: [f64; 4], speed: f64) -> Move {
        let mut m = EMPTY_MOVE;
        self.init_move(&mut m, start, end, speed);
        m
    }

    #[inline(always)]
    fn init_move(&self, m: &mut Move, start: [f64; 4], end: [f64; 4], speed: f64) {
        init_move_fields(
            m,
            start,
            end,
            speed,
            self.max_accel,
            self.max_velocity,
            self.junction_deviation,
            self.mcr_pseudo_accel,
        );
    }

    fn check_endstops(limits: &[(f64, f64); 3], m: &Move) -> Option<MoveIssue> {
        for (i, &(lo, hi)) in limits.iter().enumerate() {
            if m.d(i) != 0.0 && (m.end[i] < lo || m.end[i] > hi) {
                let (code, what) =
                    if lo > hi { ("must-home", "Must home axis first") } else { ("out-of-range", "Move out of range") };
                return Some(MoveIssue {
                    code,
                    message: format!("{what}: {:.3} {:.3} {:.3} [{:.3}]", m.end[0], m.end[1], m.end[2], m.end[3]),
                });
            }
        }
        None
    }

    /// Cartesian limits: range checks, then the Z speed/accel scaled onto the move.
    fn kin_check_move(&self, m: &mut Move) -> Option<MoveIssue> {
        Self::kin_check(&self.limits, self.max_z_velocity, self.max_z_accel, m)
    }

    #[inline(always)]
    fn kin_check(l: &[(f64, f64); 3], max_z_velocity: f64, max_z_accel: f64, m: &mut Move) -> Option<MoveIssue> {
        let mut issue = None;
        let (x, y) = (m.end[0], m.end[1]);
        if x < l[0].0 || x > l[0].1 || y < l[1].0 || y > l[1].1 {
            issue = Self::check_endstops(l, m);
        }
        let dz = m.d(2);
        if dz == 0.0 {
            return issue;
        }
        if issue.is_none() {
            issue = Self::check_endstops(l, m);
        }
        let z_ratio = m.move_d / dz.abs();
        m.limit_speed(max_z_velocity * z_ratio, max_z_accel * z_ratio);
        issue
    }

    #[inline(always)]
    fn extruder_check(ext: &ExtruderLimits, m: &mut Move) -> Option<MoveIssue> {
        let axis_r = m.axes_r[3];
        let axis_d = m.d(3);
        if (m.d(0) == 0.0 && m.d(1) == 0.0) || axis_r < 0.0 {
            // Extruder-only or retracting: the extruder's own limits, scaled to the move.
            let mut issue = None;
            if axis_d.abs() > ext.max_e_dist {
                issue = Some(MoveIssue {
                    code: "extrude-only-too-long",
                    message: format!("Extrude only move too long ({axis_d:.3}mm vs {:.3}mm)", ext.max_e_dist),
                });
            }
            let inv_extrude_r = 1.0 / axis_r.abs();
            m.limit_speed(ext.max_e_velocity * inv_extrude_r, ext.max_e_accel * inv_extrude_r);
            issue
        } else if axis_r > ext.max_extrude_ratio {
            if axis_d <= ext.nozzle_diameter * ext.max_extrude_ratio {
                return None;
            }
            Some(MoveIssue {
                code: "over-extrusion",
                message: format!(
                    "Move exceeds maximum extrusion ({:.3}mm^2 vs {:.3}mm^2)",
                    axis_r * ext.filament_area,
                    ext.max_extrude_ratio * ext.filament_area
                ),
            })
        } else {
            None
        }
    }

    /// Queues a move to `newpos` at `speed` mm/s. With `strict`, a move Klipper rejects is not
    /// queued and its issue is returned as an error; otherwise it is queued and the issue
    /// returned alongside.
    pub fn move_to(
        &mut self,
        newpos: [f64; 4],
        speed: f64,
        meta: Meta,
        strict: bool,
    ) -> Result<Option<MoveIssue>, MoveIssue> {
        let r = self.move_to_inner(newpos, speed, meta, strict);
        self.next_kind = None;
        self.next_flags = 0;
        r
    }

    fn move_to_inner(
        &mut self,
        newpos: [f64; 4],
        speed: f64,
        meta: Meta,
        strict: bool,
    ) -> Result<Option<MoveIssue>, MoveIssue> {
        // The move is built in its queue slot (a Move is a few hundred bytes: no copies).
        self.queue.push(EMPTY_MOVE);
        let idx = self.queue.len() - 1;
        let (limits, zv, za, ext) = (self.limits, self.max_z_velocity, self.max_z_accel, self.ext);
        let start = self.pos;
        let mv = {
            let (max_accel, max_velocity, jd, mcr) =
                (self.max_accel, self.max_velocity, self.junction_deviation, self.mcr_pseudo_accel);
            let m = &mut self.queue[idx];
            init_move_fields(m, start, newpos, speed, max_accel, max_velocity, jd, mcr);
            m
        };
        if mv.move_d == 0.0 {
            self.queue.pop();
            return Ok(None);
        }
        let mut issue = None;
        if mv.kinematic {
            issue = Self::kin_check(&limits, zv, za, mv);
        }
        let de = mv.d(3);
        if de != 0.0 {
            let e_issue = Self::extruder_check(&ext, mv);
            if issue.is_none() {
                issue = e_issue;
            }
        }
        if strict {
            if let Some(i) = issue {
                self.queue.pop();
                return Err(i);
            }
        }
        mv.meta = meta;
        mv.kind = if mv.kinematic {
            if de > 0.0 {
                kind::PRINT
            } else {
                kind::TRAVEL
            }
        } else if de < 0.0 {
            kind::RETRACT
        } else {
            kind::EXTRUDE_ONLY
        };
        mv.flags = (if mv.kinematic { flag::KINEMATIC } else { 0 }) | self.next_flags;
        if let Some(k) = self.next_kind {
            mv.kind = k;
        }
        let end = mv.end;
        self.next_flags = 0;
        self.next_kind = None;
        self.pos = end;
        self.motors_enabled = true;
        if self.link_last() {
            self.process_lookahead(true);
        }
        if self.print_time > self.need_check_pause {
            self.check_pause();
        }
        Ok(issue)
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len() - self.head
    }

    /// Drops `n` planned moves from the front of the queue.
    fn pop_front(&mut self, n: usize) {
        self.head += n;
        if self.head >= self.queue.len() {
            self.queue.clear();
            self.unlinked = 0;
            self.head = 0;
        } else if self.head >= 1024 && self.head * 2 >= self.queue.len() {
            self.queue.drain(..self.head);
            self.head = 0;
        }
    }

    fn add_move(&mut self, m: Move) -> bool {
        self.queue.push(m);
        self.link_last()
    }

    /// Klipper's `add_move` for the move just pushed: its junction with the one before, and
    /// whether enough is queued for a lazy flush.
    #[inline(always)]
    fn link_last(&mut self) -> bool {
        self.seq += 1;
        let n = self.queue.len();
        let m = &mut self.queue[n - 1];
        m.seq = self.seq;
        if n - 1 == self.head {
            return false;
        }
        // The junction itself is computed when the queue is flushed, for all new moves in one
        // tight loop (its square roots and divisions then overlap from move to move).
        self.unlinked += 1;
        self.junction_flush -= m.min_move_t;
        self.junction_flush <= 0.0
    }

    /// Junction limits of the moves queued since the last flush.
    fn link_pending(&mut self) {
        let n = self.queue.len();
        let from = n - self.unlinked;
        self.unlinked = 0;
        let icv = self.ext.icv;
        for i in from.max(self.head + 1)..n {
            let (before, rest) = self.queue.split_at_mut(i);
            rest[0].calc_junction(&before[i - 1], icv);
        }
    }

    /// Klipper's look-ahead flush: a backward pass for the reachable junction speeds (with the
    /// minimum-cruise-ratio pseudo acceleration deciding where moves may peak), then a forward
    /// pass that sets each trapezoid. Lazy: only the moves that later moves can no longer
    /// change. Returns how many moves from the queue front were planned.
    fn lookahead_flush(&mut self, lazy: bool) -> usize {
        if self.unlinked > 0 {
            self.link_pending();
        }
        self.junction_flush = LOOKAHEAD_FLUSH_TIME;
        let mut update_flush_count = lazy;
        let q = &mut self.queue[self.head..];
        let mut flush_count = q.len();
        let mut next_start_v2 = 0.0f64;
        let mut next_mcr_start_v2 = 0.0f64;
        let mut peak_cruise_v2 = 0.0f64;
        let mut pending_cv2_assign = 0usize;
        for i in (0..q.len()).rev() {
            let m = &mut q[i];
            let reachable_start_v2 = next_start_v2 + m.delta_v2;
            let start_v2 = pmin(m.max_start_v2, reachable_start_v2);
            let mut cruise_v2 = f64::NAN;
            pending_cv2_assign += 1;
            let reach_mcr_start_v2 = next_mcr_start_v2 + m.mcr_delta_v2;
            let mcr_start_v2 = pmin(m.max_mcr_start_v2, reach_mcr_start_v2);
            if mcr_start_v2 < reach_mcr_start_v2 {
                // This move can accelerate.
                if mcr_start_v2 + m.mcr_delta_v2 > next_mcr_start_v2 || pending_cv2_assign > 1 {
                    // It can both accelerate and decelerate, or it is a full acceleration
                    // followed by a full deceleration: a peak.
                    if update_flush_count && peak_cruise_v2 != 0.0 {
                        flush_count = i + pending_cv2_assign;
                        update_flush_count = false;
                    }
                    peak_cruise_v2 = (mcr_start_v2 + reach_mcr_start_v2) * 0.5;
                }
                cruise_v2 = pmin(pmin((start_v2 + reachable_start_v2) * 0.5, m.max_cruise_v2), peak_cruise_v2);
                pending_cv2_assign = 0;
            }
            m.j_start_v2 = start_v2;
            m.j_cruise_v2 = cruise_v2;
            m.j_next_v2 = next_start_v2;
            next_start_v2 = start_v2;
            next_mcr_start_v2 = mcr_start_v2;
        }
        if update_flush_count || flush_count == 0 {
            return 0;
        }
        let mut prev_cruise_v2 = 0.0f64;
        // The end speed of one move is usually the start speed of the next: one square root.
        let mut sqrt_memo = (0.0f64, 0.0f64);
        for m in q[..flush_count].iter_mut() {
            let mut cruise_v2 = m.j_cruise_v2;
            if cruise_v2.is_nan() {
                // Cannot accelerate: carry the previous cruise speed.
                cruise_v2 = pmin(prev_cruise_v2, m.j_start_v2);
            }
            m.set_junction(pmin(m.j_start_v2, cruise_v2), cruise_v2, pmin(m.j_next_v2, cruise_v2), &mut sqrt_memo);
            prev_cruise_v2 = cruise_v2;
        }
        flush_count
    }

    fn calc_print_time(&mut self) {
        let kin_time = MIN_KIN_TIME.max(self.last_step_gen_time) + self.kin_flush_delay;
        let min_print_time = BUFFER_TIME_START.max(kin_time);
        if min_print_time > self.print_time {
            self.print_time = min_print_time;
        }
    }

    fn note_movequeue_activity(&mut self, mq_time: f64) {
        let t = mq_time + self.kin_flush_delay;
        self.need_step_gen_time = self.need_step_gen_time.max(t);
        self.need_flush_time = self.need_flush_time.max(t);
        if self.timer_kick {
            self.timer_kick = false;
            self.timer_armed = true;
        }
    }

    fn emit(&mut self, m: &Move, t: f64) {
        self.moves_planned += 1;
        if self.record {
            push_move(&mut self.timeline, m, t);
        }
    }

    fn emit_markers(&mut self, seq: u64, t: f64) {
        while let Some(mk) = self.markers.front() {
            if mk.after_seq > seq {
                break;
            }
            let mk = self.markers.pop_front().expect("front exists");
            self.run_callback(mk.cb, t);
        }
    }

    /// A row that is not a move (dwell, wait).
    pub fn emit_event(&mut self, meta: Meta, kind_: u8, t: f64, duration: f64) {
        if !self.record {
            return;
        }
        let p = self.pos;
        self.timeline.push(&Row {
            meta,
            kind: kind_,
            flags: 0,
            t_start: t,
            cruise_t: duration,
            start: p,
            end: p,
            ..Row::default()
        });
    }

    fn process_lookahead(&mut self, lazy: bool) {
        let n = self.lookahead_flush(lazy);
        if n == 0 {
            return;
        }
        if self.need_prime {
            self.need_prime = false;
            self.need_check_pause = -1.0;
            self.calc_print_time();
        }
        let mut t = self.print_time;
        if self.markers.is_empty() {
            // Common case: the batch's rows are appended column by column.
            let moves = &self.queue[self.head..self.head + n];
            self.t_buf.clear();
            for m in moves {
                self.t_buf.push(t);
                t = t + m.accel_t + m.cruise_t + m.decel_t;
            }
            if self.record {
                self.timeline.extend_moves(moves, &self.t_buf);
            }
        } else {
            for i in self.head..self.head + n {
                let m = &self.queue[i];
                if self.record {
                    push_move(&mut self.timeline, m, t);
                }
                t = t + m.accel_t + m.cruise_t + m.decel_t;
                if !self.markers.is_empty() {
                    let seq = m.seq;
                    self.emit_markers(seq, t);
                }
            }
        }
        self.moves_planned += n as u64;
        self.pop_front(n);
        self.print_time = self.print_time.max(t);
        self.note_movequeue_activity(t);
    }

    fn flush_lookahead(&mut self) {
        self.process_lookahead(false);
        self.need_prime = true;
        self.need_check_pause = -1.0;
        self.junction_flush = BUFFER_TIME_HIGH;
    }

    /// The clock after everything queued (Klipper's `get_last_move_time`).
    pub fn get_last_move_time(&mut self) -> f64 {
        if self.need_prime {
            self.flush_lookahead();
            self.calc_print_time();
        } else {
            self.process_lookahead(false);
        }
        self.print_time
    }

    /// G4 and friends: flush, then wait.
    pub fn dwell(&mut self, delay: f64) -> f64 {
        self.flush_lookahead();
        let start = self.get_last_move_time();
        let next = start + delay.max(0.0);
        self.print_time = self.print_time.max(next);
        self.check_pause();
        start
    }

    /// M400.
    pub fn wait_moves(&mut self) {
        self.flush_lookahead();
    }

    /// A heater or fan command: tied to the end of the queued moves, or (queue empty) to the
    /// clock now, which re-syncs it. With `row`, a zero-length row marks the spot.
    pub fn lookahead_callback(&mut self, row: Option<(Meta, u8)>) {
        self.register_callback(row.map(|(meta, k)| Callback::Row(meta, k)));
    }

    /// M106/M107 (`value` 0..1), when the printer has a `[fan]`.
    pub fn set_fan(&mut self, value: f64) {
        if self.fan.enabled {
            self.register_callback(Some(Callback::Fan(value)));
        }
    }

    fn register_callback(&mut self, cb: Option<Callback>) {
        if self.queue_len() == 0 {
            let t = self.get_last_move_time();
            if let Some(cb) = cb {
                self.run_callback(cb, t);
            }
        } else if let Some(cb) = cb {
            let after_seq = self.queue.last().expect("not empty").seq;
            self.markers.push_back(Marker { after_seq, cb });
        }
    }

    fn run_callback(&mut self, cb: Callback, t: f64) {
        match cb {
            Callback::Row(meta, k) => self.emit_event(meta, k, t, 0.0),
            Callback::Fan(value) => {
                self.fan.requests.push_back((t, value));
                self.note_flush_activity(t);
            }
        }
    }

    /// Activity that is not step generation (MCU output pins).
    fn note_flush_activity(&mut self, t: f64) {
        self.need_flush_time = self.need_flush_time.max(t);
        if self.timer_kick {
            self.timer_kick = false;
            self.timer_armed = true;
        }
    }

    /// The fan queue's flush callback: requests due by `must_flush_time` go to the MCU.
    fn fan_flush(&mut self, must_flush_time: f64) {
        let mut guard = 0;
        while !self.fan.requests.is_empty() {
            guard += 1;
            if guard > 1_000_000 {
                self.fan.requests.clear();
                return;
            }
            let next_time = self.fan.requests[0].0.max(self.fan.next_min_flush_time);
            if next_time > must_flush_time {
                return;
            }
            // Requests overridden by a later one that is also due are skipped.
            let mut pos = 0;
            while pos + 1 < self.fan.requests.len() && self.fan.requests[pos + 1].0 <= next_time {
                pos += 1;
            }
            let req = self.fan.requests[pos].1;
            let f = &mut self.fan;
            let mut value = if req < f.off_below { 0.0 } else { req };
            value = (value * f.max_power).clamp(0.0, f.max_power);
            if value == f.last_value {
                self.fan.requests.drain(..=pos);
                continue;
            }
            if value != 0.0 && f.kick_start_time != 0.0 && (f.last_value == 0.0 || value - f.last_value > 0.5) {
                // Kick start: full power first, the request itself again later.
                f.last_value = f.max_power;
                f.next_min_flush_time = f.next_min_flush_time.max(next_time + f.kick_start_time);
                self.fan.requests.drain(..pos);
            } else {
                f.last_value = value;
                self.fan.requests.drain(..=pos);
            }
            self.fan.next_min_flush_time = self.fan.next_min_flush_time.max(next_time + MIN_SCHEDULE_TIME);
            let t = self.fan.next_min_flush_time;
            self.note_flush_activity(t);
        }
    }

    fn advance_flush_time(&mut self, want_flush_time: f64, want_step_gen_time: f64) {
        let flush_time = want_flush_time.max(self.last_flush_time).max(want_step_gen_time - 0.050);
        let step_gen_time = want_step_gen_time.max(self.last_step_gen_time).max(flush_time);
        // The toolhead's flush callback: a running queue whose steps are all generated is
        // flushed completely (Klipper's look-ahead "runout").
        if !self.need_prime && step_gen_time >= self.print_time - self.kin_flush_delay - 0.001 {
            self.flush_lookahead();
        }
        if !self.fan.requests.is_empty() {
            self.fan_flush(flush_time);
        }
        self.last_flush_time = flush_time;
        self.last_step_gen_time = step_gen_time;
    }

    fn flush_all_steps(&mut self) {
        let t = self.need_step_gen_time;
        self.advance_flush_time(t, 0.0);
    }

    pub fn flush_step_generation(&mut self) {
        self.flush_lookahead();
        self.flush_all_steps();
    }

    /// Klipper's `set_position`: flushes everything, then moves the commanded position.
    pub fn set_position(&mut self, newpos: [f64; 4], homing_axes: [Option<(f64, f64)>; 3]) {
        self.flush_step_generation();
        self.pos[0] = newpos[0];
        self.pos[1] = newpos[1];
        self.pos[2] = newpos[2];
        for (i, r) in homing_axes.iter().enumerate() {
            if let Some(r) = r {
                self.limits[i] = *r;
            }
        }
    }

    /// One run of the batch-mode background flush timer.
    pub fn flush_timer(&mut self) {
        if !self.timer_armed {
            return;
        }
        let faux_time = self.need_flush_time - BGFLUSH_FAUX_LAG;
        let mut flush_count = 0u64;
        while self.last_step_gen_time < faux_time {
            let mut target = self.last_step_gen_time + BGFLUSH_BATCH_TIME;
            if flush_count > 100 && faux_time > target {
                target += ((faux_time - target) / BGFLUSH_BATCH_TIME).floor() * BGFLUSH_BATCH_TIME;
            }
            self.advance_flush_time(0.0, target);
            flush_count += 1;
            if flush_count > 1_000_000 {
                break;
            }
        }
        if flush_count > 0 {
            return;
        }
        let t = self.need_flush_time + BGFLUSH_EXTRA_TIME;
        self.advance_flush_time(t, 0.0);
        self.timer_kick = true;
        self.timer_armed = false;
    }

    /// A homing move: the queue is flushed and the move is planned alone, start to stop.
    /// Returns its start time.
    pub fn drip_move(&mut self, newpos: [f64; 3], speed: f64, meta: Meta) -> f64 {
        let target = [newpos[0], newpos[1], newpos[2], self.pos[3]];
        let mut m = self.new_move(self.pos, target, speed);
        if m.move_d != 0.0 {
            let _ = self.kin_check_move(&mut m);
        }
        let kfd = self.kin_flush_delay;
        self.dwell(kfd);
        self.process_lookahead(false);
        // _drip_load_trapq
        if m.move_d != 0.0 {
            self.pos = m.end;
            self.motors_enabled = true;
            m.meta = meta;
            m.kind = kind::HOME;
            m.flags = flag::KINEMATIC | flag::DRIP;
            self.add_move(m);
        }
        let n = self.lookahead_flush(false);
        self.calc_print_time();
        let start = self.print_time;
        let mut end = start;
        for i in self.head..self.head + n {
            let mv = self.queue[i];
            self.emit(&mv, end);
            end = end + mv.accel_t + mv.cruise_t + mv.decel_t;
        }
        self.queue.clear();
        self.unlinked = 0;
        self.head = 0;
        self.junction_flush = LOOKAHEAD_FLUSH_TIME;
        // drip_update_time: steps are generated up to the end, then one look-back more.
        self.timer_armed = false;
        self.timer_kick = false;
        self.advance_flush_time(start - SDS_CHECK_TIME, start);
        if end > start {
            self.note_movequeue_activity(end);
            self.advance_flush_time(end - SDS_CHECK_TIME, end);
        }
        self.timer_armed = true;
        self.advance_flush_time(end.max(start) + self.kin_flush_delay, 0.0);
        start
    }

    /// Batch-mode end of input: the flush timer, then the final clock.
    pub fn finish(&mut self, timer: FlushTimer) -> f64 {
        if timer != FlushTimer::Off {
            self.flush_timer();
        }
        self.get_last_move_time()
    }

    /// Moves still queued (not yet planned).
    pub fn pending(&self) -> usize {
        self.queue_len()
    }
}

const EMPTY_MOVE: Move = Move {
    start: [0.0; 4],
    end: [0.0; 4],
    axes_r: [0.0; 4],
    move_d: 0.0,
    accel: 0.0,
    junction_deviation: 0.0,
    kinematic: false,
    min_move_t: 0.0,
    max_start_v2: 0.0,
    max_cruise_v2: 0.0,
    delta_v2: 0.0,
    max_mcr_start_v2: 0.0,
    mcr_delta_v2: 0.0,
    j_start_v2: 0.0,
    j_cruise_v2: 0.0,
    j_next_v2: 0.0,
    start_v: 0.0,
    cruise_v: 0.0,
    end_v: 0.0,
    accel_t: 0.0,
    cruise_t: 0.0,
    decel_t: 0.0,
    meta: Meta { line: 0, offset: 0, layer: -1, feature: -1, object: -1 },
    kind: 0,
    flags: 0,
    seq: 0,
};

/// Klipper's `Move.__init__`, written in place.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn init_move_fields(
    m: &mut Move,
    start: [f64; 4],
    end: [f64; 4],
    speed: f64,
    max_accel: f64,
    max_velocity: f64,
    junction_deviation: f64,
    mcr_pseudo_accel: f64,
) {
    let mut end = end;
    let mut axes_d = [end[0] - start[0], end[1] - start[1], end[2] - start[2], end[3] - start[3]];
    let mut move_d = (axes_d[0] * axes_d[0] + axes_d[1] * axes_d[1] + axes_d[2] * axes_d[2]).sqrt();
    let mut accel = max_accel;
    let mut velocity = pmin(speed, max_velocity);
    let kinematic;
    let inv_move_d;
    if move_d < 0.000000001 {
        // Extruder-only: the tiny XYZ part is dropped (and stays pending in Klipper too).
        end[0] = start[0];
        end[1] = start[1];
        end[2] = start[2];
        axes_d[0] = 0.0;
        axes_d[1] = 0.0;
        axes_d[2] = 0.0;
        move_d = axes_d[3].abs();
        inv_move_d = if move_d != 0.0 { 1.0 / move_d } else { 0.0 };
        accel = EXTRUDE_ONLY_ACCEL;
        velocity = speed;
        kinematic = false;
    } else {
        inv_move_d = 1.0 / move_d;
        kinematic = true;
    }
    m.start = start;
    m.end = end;
    m.axes_r = [axes_d[0] * inv_move_d, axes_d[1] * inv_move_d, axes_d[2] * inv_move_d, axes_d[3] * inv_move_d];
    m.move_d = move_d;
    m.accel = accel;
    m.junction_deviation = junction_deviation;
    m.kinematic = kinematic;
    m.min_move_t = move_d / velocity;
    m.max_start_v2 = 0.0;
    m.max_cruise_v2 = velocity * velocity;
    m.delta_v2 = 2.0 * move_d * accel;
    m.max_mcr_start_v2 = 0.0;
    m.mcr_delta_v2 = 2.0 * move_d * mcr_pseudo_accel;
}

/// Python's `max(a, b)`: the first unless the second is larger.
#[inline(always)]
fn pmax(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)`: the first unless the second is smaller.
#[inline(always)]
fn pmin(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

impl Timeline {
    /// Appends planned moves (starting at `t`), one column at a time.
    fn extend_moves(&mut self, moves: &[Move], t: &[f64]) {
        self.line.extend(moves.iter().map(|m| m.meta.line));
        self.offset.extend(moves.iter().map(|m| m.meta.offset));
        self.kind.extend(moves.iter().map(|m| m.kind));
        self.flags.extend(moves.iter().map(|m| m.flags));
        self.t_start.extend_from_slice(t);
        self.accel_t.extend(moves.iter().map(|m| m.accel_t));
        self.cruise_t.extend(moves.iter().map(|m| m.cruise_t));
        self.decel_t.extend(moves.iter().map(|m| m.decel_t));
        self.start_v.extend(moves.iter().map(|m| m.start_v));
        self.cruise_v.extend(moves.iter().map(|m| m.cruise_v));
        self.end_v.extend(moves.iter().map(|m| m.end_v));
        self.accel.extend(moves.iter().map(|m| m.accel));
        self.start_x.extend(moves.iter().map(|m| m.start[0]));
        self.start_y.extend(moves.iter().map(|m| m.start[1]));
        self.start_z.extend(moves.iter().map(|m| m.start[2]));
        self.start_e.extend(moves.iter().map(|m| m.start[3]));
        self.end_x.extend(moves.iter().map(|m| m.end[0]));
        self.end_y.extend(moves.iter().map(|m| m.end[1]));
        self.end_z.extend(moves.iter().map(|m| m.end[2]));
        self.end_e.extend(moves.iter().map(|m| m.end[3]));
        self.distance.extend(moves.iter().map(|m| m.move_d));
        self.layer.extend(moves.iter().map(|m| m.meta.layer));
        self.feature.extend(moves.iter().map(|m| m.meta.feature));
        self.object.extend(moves.iter().map(|m| m.meta.object));
    }
}

/// Appends a planned move to the timeline.
#[inline]
fn push_move(tl: &mut Timeline, m: &Move, t: f64) {
    tl.push(&Row {
        meta: m.meta,
        kind: m.kind,
        flags: m.flags,
        t_start: t,
        accel_t: m.accel_t,
        cruise_t: m.cruise_t,
        decel_t: m.decel_t,
        start_v: m.start_v,
        cruise_v: m.cruise_v,
        end_v: m.end_v,
        accel: m.accel,
        start: m.start,
        end: m.end,
        distance: m.move_d,
    });
}
