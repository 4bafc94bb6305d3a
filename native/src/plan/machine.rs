//! G-code semantics as Klipper's `gcode_move`, `gcode_arcs`, `firmware_retraction`, homing
//! and the toolhead commands implement them, driving the `Toolhead`.

use std::collections::HashMap;

use super::config::{PrinterConfig, WaitModel};
use super::input::{ArcWords, Cmd, MoveWords, Op, Word};
use super::timeline::{flag, kind, Meta, Timeline};
use super::toolhead::{FlushTimer, MoveIssue, Toolhead};
use super::{Diagnostic, PlanOptions};

/// Klipper's per-G-code-stream state (`gcode_move`).
#[derive(Debug, Clone)]
struct GcodeState {
    absolute_coord: bool,
    absolute_extrude: bool,
    base_position: [f64; 4],
    last_position: [f64; 4],
    homing_position: [f64; 4],
    /// mm/s (already multiplied by the speed factor).
    speed: f64,
    /// M220 factor divided by 60 (converts mm/min to mm/s).
    speed_factor: f64,
    extrude_factor: f64,
}

impl Default for GcodeState {
    fn default() -> Self {
        GcodeState {
            absolute_coord: true,
            absolute_extrude: true,
            base_position: [0.0; 4],
            last_position: [0.0; 4],
            homing_position: [0.0; 4],
            speed: 25.0,
            speed_factor: 1.0 / 60.0,
            extrude_factor: 1.0,
        }
    }
}

/// Coordinates beyond this are rejected before any arithmetic (they would overflow squares).
const HUGE: f64 = 1e9;

pub struct Machine<'c> {
    cfg: &'c PrinterConfig,
    opts: PlanOptions,
    pub th: Toolhead,
    g: GcodeState,
    saved: HashMap<String, GcodeState>,
    plane: u8,
    retract: Option<super::config::FirmwareRetraction>,
    is_retracted: bool,
    pressure_advance: f64,
    smooth_time: f64,
    pub diagnostics: Vec<Diagnostic>,
    pub diagnostics_total: u64,
    pub unknown: HashMap<u32, u64>,
    pub invalid_m204: u64,
    pub g28_count: u64,
    pub g28_time: f64,
    pub arc_segments: u64,
    /// The first Klipper error (line, message); in strict mode planning stopped there.
    pub first_error: Option<(u64, String)>,
    pub stopped: bool,
    /// Input bytes read so far (`FlushTimer::Reads`): lines ending past it need a read.
    read_limit: u64,
}

impl<'c> Machine<'c> {
    pub fn new(cfg: &'c PrinterConfig, opts: PlanOptions, rows_hint: usize, reuse: Option<Timeline>) -> Machine<'c> {
        let mut th = Toolhead::new(cfg, rows_hint, opts.record, reuse);
        th.set_flush_timer(opts.flush_timer);
        if cfg.assume_homed {
            for i in 0..3 {
                th.limits[i] = (cfg.rails[i].position_min, cfg.rails[i].position_max);
            }
        }
        Machine {
            cfg,
            opts,
            th,
            g: GcodeState::default(),
            saved: HashMap::new(),
            plane: 0,
            retract: cfg.firmware_retraction.clone(),
            is_retracted: false,
            pressure_advance: cfg.extruder.pressure_advance,
            smooth_time: cfg.extruder.pressure_advance_smooth_time,
            diagnostics: Vec::new(),
            diagnostics_total: 0,
            unknown: HashMap::new(),
            invalid_m204: 0,
            g28_count: 0,
            g28_time: 0.0,
            arc_segments: 0,
            first_error: None,
            stopped: false,
            read_limit: 0,
        }
    }

    fn diag(&mut self, meta: &Meta, code: &'static str, message: String, klipper_error: bool) {
        self.diagnostics_total += 1;
        if klipper_error && self.first_error.is_none() {
            self.first_error = Some((meta.line, message.clone()));
        }
        if self.diagnostics.len() < self.opts.max_diagnostics {
            self.diagnostics.push(Diagnostic { line: meta.line, offset: meta.offset, code, message, klipper_error });
        }
    }

    /// A command Klipper rejects: noted, and in strict mode the run ends here (after everything
    /// queued before it is planned, as Klipper's batch mode does).
    fn error(&mut self, meta: &Meta, code: &'static str, message: String) {
        self.diag(meta, code, message, true);
        if self.opts.strict {
            self.th.get_last_move_time();
            self.stopped = true;
        }
    }

    fn issue(&mut self, meta: &Meta, issue: MoveIssue) {
        self.error(meta, issue.code, issue.message);
    }

    /// Runs one command.
    pub fn run(&mut self, cmd: &Cmd) {
        if self.stopped {
            return;
        }
        if cmd.end > self.read_limit {
            self.input_reads(cmd);
        }
        let meta =
            Meta { line: cmd.line, offset: cmd.offset, layer: cmd.layer, feature: cmd.feature, object: cmd.object };
        match &cmd.op {
            Op::Move(m) => self.cmd_g1(m, &meta, 0),
            Op::Arc(a) => self.cmd_arc(a, &meta),
            Op::Dwell { p, s } => {
                let delay = match p.num() {
                    None if !p.present() => 0.0,
                    Some(v) if v >= 0.0 => v / 1000.0,
                    _ => {
                        self.error(&meta, "bad-parameter", "G4: P must be a number >= 0".into());
                        return;
                    }
                };
                if s.num().is_some_and(|v| v > 0.0) && !p.present() {
                    self.diag(
                        &meta,
                        "g4-seconds-ignored",
                        "G4 S: Klipper only reads P (milliseconds); no wait".into(),
                        false,
                    );
                }
                let start = self.th.dwell(delay);
                self.th.emit_event(meta, kind::DWELL, start, delay);
            }
            Op::Home { x, y, z } => self.cmd_g28([*x, *y, *z], &meta),
            Op::AbsoluteCoords => self.g.absolute_coord = true,
            Op::RelativeCoords => self.g.absolute_coord = false,
            Op::AbsoluteExtrude => self.g.absolute_extrude = true,
            Op::RelativeExtrude => self.g.absolute_extrude = false,
            Op::SetPosition { x, y, z, e } => {
                let words = [*x, *y, *z, *e];
                if words.iter().any(|w| w.is_flag() || w.num().is_some_and(|v| !v.is_finite() || v.abs() > HUGE)) {
                    self.error(&meta, "bad-parameter", "G92: unable to parse a coordinate".into());
                    return;
                }
                if words.iter().all(|w| !w.present()) {
                    self.g.base_position = self.g.last_position;
                } else {
                    for (i, w) in words.iter().enumerate() {
                        if let Some(mut v) = w.num() {
                            if i == 3 {
                                v *= self.g.extrude_factor;
                            }
                            self.g.base_position[i] = self.g.last_position[i] - v;
                        }
                    }
                }
            }
            Op::Retract => self.cmd_fw_retract(true, &meta),
            Op::Unretract => self.cmd_fw_retract(false, &meta),
            Op::SetRetraction { length, speed, extra, unretract_speed } => {
                if let Some(r) = &mut self.retract {
                    if let Some(v) = length {
                        r.retract_length = v.max(0.0);
                    }
                    if let Some(v) = speed {
                        r.retract_speed = v.max(1.0);
                    }
                    if let Some(v) = extra {
                        r.unretract_extra_length = v.max(0.0);
                    }
                    if let Some(v) = unretract_speed {
                        r.unretract_speed = v.max(1.0);
                    }
                    self.is_retracted = false;
                }
            }
            Op::SetAccel { s, p, t } => {
                let bad = |w: &Word| w.is_flag() || w.num().is_some_and(|v| v.is_nan() || v <= 0.0 || !v.is_finite());
                if bad(s) {
                    self.error(&meta, "bad-parameter", "M204: S must be a number above 0".into());
                    return;
                }
                let accel = match s.num() {
                    Some(v) => v,
                    None => {
                        if bad(p) || bad(t) {
                            self.error(&meta, "bad-parameter", "M204: P and T must be numbers above 0".into());
                            return;
                        }
                        match (p.num(), t.num()) {
                            (Some(p), Some(t)) => p.min(t),
                            _ => {
                                self.invalid_m204 += 1;
                                self.diag(
                                    &meta,
                                    "invalid-m204",
                                    "M204 needs S, or both P and T; Klipper ignores this one".into(),
                                    false,
                                );
                                return;
                            }
                        }
                    }
                };
                self.th.set_max_velocities(None, Some(accel), None, None);
            }
            Op::SetVelocityLimit { velocity, accel, scv, mcr, bad } => {
                let pos = |v: &Option<f64>| v.is_none_or(|x| x > 0.0 && x.is_finite());
                let ok = !bad
                    && pos(velocity)
                    && pos(accel)
                    && scv.is_none_or(|x| (0.0..HUGE).contains(&x))
                    && mcr.is_none_or(|x| (0.0..1.0).contains(&x));
                if !ok {
                    self.error(&meta, "bad-parameter", "SET_VELOCITY_LIMIT: invalid value".into());
                    return;
                }
                self.th.set_max_velocities(*velocity, *accel, *scv, *mcr);
            }
            Op::SpeedFactor(s) => {
                let v = match s.num() {
                    None if !s.present() => 100.0,
                    Some(v) if v > 0.0 && v.is_finite() => v,
                    _ => {
                        self.error(&meta, "bad-parameter", "M220: S must be above 0".into());
                        return;
                    }
                };
                let value = v / (60.0 * 100.0);
                let gcode_speed = self.g.speed / self.g.speed_factor;
                self.g.speed = gcode_speed * value;
                self.g.speed_factor = value;
            }
            Op::ExtrudeFactor(s) => {
                let v = match s.num() {
                    None if !s.present() => 100.0,
                    Some(v) if v > 0.0 && v.is_finite() => v,
                    _ => {
                        self.error(&meta, "bad-parameter", "M221: S must be above 0".into());
                        return;
                    }
                };
                let new_factor = v / 100.0;
                let last_e = self.g.last_position[3];
                let e_value = (last_e - self.g.base_position[3]) / self.g.extrude_factor;
                self.g.base_position[3] = last_e - e_value * new_factor;
                self.g.extrude_factor = new_factor;
            }
            Op::WaitMoves => self.th.wait_moves(),
            Op::MotorsOff { bare: _ } => self.cmd_motors_off(&meta),
            Op::LookaheadSync => self.th.lookahead_callback(None),
            Op::Fan(v) => match v.num() {
                Some(v) if v >= 0.0 && v.is_finite() => self.th.set_fan(v),
                _ => self.error(&meta, "bad-parameter", "M106: S must be a number >= 0".into()),
            },
            Op::HeaterWait => match self.cfg.heater_wait {
                WaitModel::Batch => self.th.lookahead_callback(Some((meta, kind::WAIT))),
                WaitModel::Fixed(secs) => {
                    let start = self.th.dwell(secs);
                    self.th.emit_event(meta, kind::WAIT, start, secs.max(0.0));
                }
            },
            Op::Plane(p) => self.plane = *p,
            Op::SaveState { name } => {
                self.saved.insert(name.clone(), self.g.clone());
            }
            Op::RestoreState { name, mv, speed } => {
                let Some(state) = self.saved.get(name).cloned() else {
                    self.error(&meta, "unknown-state", format!("Unknown g-code state: {name}"));
                    return;
                };
                let e_diff = self.g.last_position[3] - state.last_position[3];
                let last = self.g.last_position;
                self.g = GcodeState { last_position: last, ..state.clone() };
                self.g.base_position[3] += e_diff;
                if *mv {
                    let sp = speed.unwrap_or(self.g.speed);
                    self.g.last_position[..3].copy_from_slice(&state.last_position[..3]);
                    self.do_move(sp, &meta);
                }
            }
            Op::SetGcodeOffset(o) => {
                let (xyz_e, adjust, mv, speed) = (&o.xyz_e, &o.adjust, &o.mv, &o.speed);
                let mut delta = [0.0; 4];
                for i in 0..4 {
                    let offset = match (xyz_e[i], adjust[i]) {
                        (Some(v), _) => v,
                        (None, Some(a)) => a + self.g.homing_position[i],
                        (None, None) => continue,
                    };
                    let d = offset - self.g.homing_position[i];
                    delta[i] = d;
                    self.g.base_position[i] += d;
                    self.g.homing_position[i] = offset;
                }
                if *mv {
                    let sp = speed.unwrap_or(self.g.speed);
                    for (i, d) in delta.iter().enumerate() {
                        self.g.last_position[i] += d;
                    }
                    self.do_move(sp, &meta);
                }
            }
            Op::SetPressureAdvance { advance, smooth_time } => {
                let pa = advance.unwrap_or(self.pressure_advance).max(0.0);
                let st = smooth_time.unwrap_or(self.smooth_time).clamp(0.0, 0.2);
                let old = if self.pressure_advance != 0.0 { self.smooth_time } else { 0.0 };
                let new = if pa != 0.0 { st } else { 0.0 };
                if new != old {
                    self.th.set_step_scan_window(new * 0.5);
                } else {
                    self.th.lookahead_callback(None);
                }
                self.pressure_advance = pa;
                self.smooth_time = st;
            }
            Op::Nop => {}
            Op::Unknown(id) => *self.unknown.entry(*id).or_default() += 1,
            Op::Error(msg) => self.error(&meta, "klipper-error", (*msg).to_string()),
        }
    }

    /// Klipper reads its input in `n`-byte pieces and runs its timers between them; a line
    /// runs once the piece holding its last byte has been read.
    #[cold]
    fn input_reads(&mut self, cmd: &Cmd) {
        let FlushTimer::Reads(n) = self.opts.flush_timer else {
            self.read_limit = u64::MAX;
            return;
        };
        let n = n.max(1);
        let last = cmd.end.max(cmd.offset + 1) - 1;
        let need = last / n + 1;
        while self.th.reads_done < need {
            if self.th.reads_done > 0 {
                self.th.flush_timer();
            }
            self.th.reads_done += 1;
            self.th.read_in_yield = false;
        }
        self.read_limit = self.th.reads_done * n;
    }

    /// Sends `last_position` to the toolhead (Klipper's `move_with_transform`).
    fn do_move(&mut self, speed: f64, meta: &Meta) -> bool {
        let target = self.g.last_position;
        if target.iter().any(|v| !v.is_finite() || v.abs() > HUGE) {
            self.diag(
                meta,
                "huge-coordinate",
                format!("move to {target:?} ignored: coordinate not finite or beyond 1e9"),
                true,
            );
            self.g.last_position = self.th.pos;
            if self.opts.strict {
                self.th.get_last_move_time();
                self.stopped = true;
            }
            return false;
        }
        let speed = if speed.is_finite() && speed > 1e-9 { speed } else { 1e-9 };
        match self.th.move_to(target, speed, *meta, self.opts.strict) {
            Ok(None) => true,
            Ok(Some(issue)) => {
                self.issue(meta, issue);
                true
            }
            Err(issue) => {
                self.g.last_position = self.th.pos;
                self.issue(meta, issue);
                false
            }
        }
    }

    /// G0/G1. `extra_flags` marks arc segments.
    fn cmd_g1(&mut self, m: &MoveWords, meta: &Meta, extra_flags: u8) {
        let words = [m.x, m.y, m.z, m.e];
        if m.x.is_flag() || m.y.is_flag() || m.z.is_flag() || m.e.is_flag() || m.f.is_flag() {
            self.error(meta, "unparsable-move", "Unable to parse move (a word has no number)".into());
            return;
        }
        if let Some(f) = m.f.num() {
            if f.is_nan() || f <= 0.0 {
                self.error(meta, "invalid-speed", format!("Invalid speed F{f}"));
                return;
            }
        }
        let mut pos = self.g.last_position;
        for (i, w) in words.iter().enumerate() {
            if let Some(mut v) = w.num() {
                let mut absolute = self.g.absolute_coord;
                if i == 3 {
                    v *= self.g.extrude_factor;
                    if !self.g.absolute_extrude {
                        absolute = false;
                    }
                }
                if absolute {
                    pos[i] = v + self.g.base_position[i];
                } else {
                    pos[i] += v;
                }
            }
        }
        if let Some(f) = m.f.num() {
            self.g.speed = f * self.g.speed_factor;
        }
        self.g.last_position = pos;
        self.th.next_flags = extra_flags;
        self.do_move(self.g.speed, meta);
    }

    /// G2/G3 cut into segments as Klipper's `gcode_arcs` does.
    fn cmd_arc(&mut self, a: &ArcWords, meta: &Meta) {
        let Some(resolution) = self.cfg.arc_resolution else { return };
        if !self.g.absolute_coord {
            self.error(meta, "arc-relative", "G2/G3 does not support relative move mode".into());
            return;
        }
        let all = [a.m.x, a.m.y, a.m.z, a.m.e, a.m.f, a.i, a.j, a.k, a.r];
        if all.iter().any(|w| w.is_flag() || w.num().is_some_and(|v| !v.is_finite() || v.abs() > HUGE)) {
            self.error(meta, "unparsable-move", "G2/G3: unable to parse a parameter".into());
            return;
        }
        // The G-code position (before offsets and the extrude factor).
        let mut cur = [0.0; 4];
        for (i, c) in cur.iter_mut().enumerate() {
            *c = self.g.last_position[i] - self.g.base_position[i];
        }
        cur[3] /= self.g.extrude_factor;
        let target = [a.m.x.num().unwrap_or(cur[0]), a.m.y.num().unwrap_or(cur[1]), a.m.z.num().unwrap_or(cur[2])];
        let (alpha, beta, helical) = match self.plane {
            1 => (0usize, 2usize, 1usize),
            2 => (1, 2, 0),
            _ => (0, 1, 2),
        };
        let (i, j, k) = (a.i.num().unwrap_or(0.0), a.j.num().unwrap_or(0.0), a.k.num().unwrap_or(0.0));
        let mut offset = match self.plane {
            1 => (i, k),
            2 => (j, k),
            _ => (i, j),
        };
        if let Some(r) = a.r.num() {
            // Klipper rejects R arcs; planned here from the radius for other uses.
            self.diag(meta, "arc-radius", "G2/G3 R: Klipper does not support R arcs".into(), true);
            if self.opts.strict {
                self.th.get_last_move_time();
                self.stopped = true;
                return;
            }
            match radius_to_offset(cur[alpha], cur[beta], target[alpha], target[beta], r, a.clockwise) {
                Some(o) => offset = o,
                None => {
                    self.diag(
                        meta,
                        "arc-inconsistent",
                        "G2/G3 R: radius too small for the end point; moving straight".into(),
                        false,
                    );
                    offset = (0.0, 0.0);
                }
            }
        }
        if offset.0 == 0.0 && offset.1 == 0.0 {
            if a.r.num().is_none() {
                self.error(meta, "arc-no-center", "G2/G3 requires IJ, IK or JK parameters".into());
                return;
            }
            let m = MoveWords {
                x: Word::of(target[0]),
                y: Word::of(target[1]),
                z: Word::of(target[2]),
                e: a.m.e,
                f: a.m.f,
            };
            self.cmd_g1(&m, meta, flag::ARC);
            return;
        }
        let r_p = -offset.0;
        let r_q = -offset.1;
        let center_p = cur[alpha] - r_p;
        let center_q = cur[beta] - r_q;
        let rt_alpha = target[alpha] - center_p;
        let rt_beta = target[beta] - center_q;
        let mut angular_travel = (r_p * rt_beta - r_q * rt_alpha).atan2(r_p * rt_alpha + r_q * rt_beta);
        if angular_travel < 0.0 {
            angular_travel += 2.0 * std::f64::consts::PI;
        }
        if a.clockwise {
            angular_travel -= 2.0 * std::f64::consts::PI;
        }
        if angular_travel == 0.0 && cur[alpha] == target[alpha] && cur[beta] == target[beta] {
            angular_travel = 2.0 * std::f64::consts::PI;
        }
        let linear_travel = target[helical] - cur[helical];
        let radius = r_p.hypot(r_q);
        let flat_mm = radius * angular_travel;
        let mm_of_travel = if linear_travel != 0.0 { flat_mm.hypot(linear_travel) } else { flat_mm.abs() };
        let segments = (mm_of_travel / resolution).floor().max(1.0);
        let max_segments = self.opts.max_arc_segments as f64;
        let segments = if segments > max_segments {
            self.diag(meta, "arc-too-long", format!("arc of {segments} segments cut to {max_segments}"), false);
            max_segments
        } else {
            segments
        };
        let theta_per_segment = angular_travel / segments;
        let linear_per_segment = linear_travel / segments;
        let abs_e = self.g.absolute_extrude;
        let mut e_per_move = 0.0;
        let mut e_base = 0.0;
        if let Some(e) = a.m.e.num() {
            if abs_e {
                e_base = cur[3];
            }
            e_per_move = (e - e_base) / segments;
        }
        let n = segments as u64;
        for s in 1..=n {
            if self.stopped {
                return;
            }
            let dist_helical = s as f64 * linear_per_segment;
            let c_theta = s as f64 * theta_per_segment;
            let (sin_ti, cos_ti) = c_theta.sin_cos();
            let r_p = -offset.0 * cos_ti + offset.1 * sin_ti;
            let r_q = -offset.0 * sin_ti - offset.1 * cos_ti;
            let mut c = [0.0; 3];
            c[alpha] = center_p + r_p;
            c[beta] = center_q + r_q;
            c[helical] = cur[helical] + dist_helical;
            if s == n {
                c = target;
            }
            let mut m =
                MoveWords { x: Word::of(c[0]), y: Word::of(c[1]), z: Word::of(c[2]), e: Word::ABSENT, f: a.m.f };
            if e_per_move != 0.0 {
                m.e = Word::of(e_base + e_per_move);
                if abs_e {
                    e_base += e_per_move;
                }
            }
            self.arc_segments += 1;
            self.cmd_g1(&m, meta, if s == 1 { flag::ARC } else { 0 });
        }
    }

    /// G10/G11: a relative E move at the retraction speed (Klipper runs a small script that
    /// saves and restores the G-code state around it).
    fn cmd_fw_retract(&mut self, retract: bool, meta: &Meta) {
        let Some(r) = self.retract.clone() else { return };
        if retract == self.is_retracted {
            return;
        }
        let (len, speed) = if retract {
            (-r.retract_length, r.retract_speed)
        } else {
            (r.retract_length + r.unretract_extra_length, r.unretract_speed)
        };
        let saved = self.g.clone();
        self.g.absolute_coord = false;
        // The script writes "E%.5f F%d".
        let e = (len * 1e5).round() / 1e5;
        let f = (speed * 60.0).trunc();
        self.cmd_g1(
            &MoveWords { x: Word::ABSENT, y: Word::ABSENT, z: Word::ABSENT, e: Word::of(e), f: Word::of(f) },
            meta,
            0,
        );
        let e_diff = self.g.last_position[3] - saved.last_position[3];
        let last = self.g.last_position;
        self.g = GcodeState { last_position: last, ..saved };
        self.g.base_position[3] += e_diff;
        self.is_retracted = retract;
    }

    /// M84/M18: flush, then (motors on) two 0.1 s pauses around switching them off; homing is
    /// forgotten.
    fn cmd_motors_off(&mut self, meta: &Meta) {
        self.th.flush_step_generation();
        if self.th.motors_enabled {
            let start = self.th.dwell(0.100);
            self.th.get_last_move_time();
            self.th.dwell(0.100);
            let end = self.th.print_time;
            self.th.emit_event(*meta, kind::DWELL, start, end - start);
            self.th.motors_enabled = false;
        }
        self.th.limits = [(1.0, -1.0); 3];
    }

    /// G28 in batch mode: endstops never trigger, so every homing move runs its full length.
    fn cmd_g28(&mut self, axes: [bool; 3], meta: &Meta) {
        self.g28_count += 1;
        let mut first: Option<f64> = None;
        for axis in 0..3 {
            if !axes[axis] || self.stopped {
                continue;
            }
            let rail = self.cfg.rails[axis].clone();
            let mut forcepos: [Option<f64>; 3] = [None; 3];
            let homepos_axis = rail.position_endstop;
            forcepos[axis] = Some(if rail.homing_positive_dir {
                homepos_axis - 1.5 * (rail.position_endstop - rail.position_min)
            } else {
                homepos_axis + 1.5 * (rail.position_max - rail.position_endstop)
            });
            let fill = |th: &Toolhead, c: [Option<f64>; 3]| {
                let mut p = th.pos;
                for i in 0..3 {
                    if let Some(v) = c[i] {
                        p[i] = v;
                    }
                }
                p
            };
            let mut movepos: [Option<f64>; 3] = [None; 3];
            movepos[axis] = Some(homepos_axis);
            let homepos = fill(&self.th, movepos);
            // The toolhead is told it sits at the far end of the axis.
            let startpos = fill(&self.th, forcepos);
            let mut homing_axes = [None; 3];
            homing_axes[axis] = Some((rail.position_min, rail.position_max));
            self.th.set_position(startpos, homing_axes);
            let t0 = self.homing_move(homepos, rail.homing_speed, meta);
            first.get_or_insert(t0);
            if rail.homing_retract_dist > 0.0 {
                let startpos = fill(&self.th, forcepos);
                let homepos = fill(&self.th, movepos);
                let axes_d: Vec<f64> = (0..4).map(|i| homepos[i] - startpos[i]).collect();
                let move_d = (axes_d[0] * axes_d[0] + axes_d[1] * axes_d[1] + axes_d[2] * axes_d[2]).sqrt();
                let retract_r = (rail.homing_retract_dist / move_d).min(1.0);
                let mut retractpos = [0.0; 4];
                for i in 0..4 {
                    retractpos[i] = homepos[i] - axes_d[i] * retract_r;
                }
                self.th.next_kind = Some(kind::HOME);
                let _ = self.th.move_to(retractpos, rail.homing_retract_speed, *meta, false);
                let mut start2 = [0.0; 4];
                for i in 0..4 {
                    start2[i] = retractpos[i] - axes_d[i] * retract_r;
                }
                self.th.set_position(start2, [None; 3]);
                self.homing_move(homepos, rail.second_homing_speed, meta);
            }
            self.th.flush_step_generation();
            // gcode_move: positions re-read, the homed axes get their homing origin.
            self.g.last_position = self.th.pos;
            self.g.base_position[axis] = self.g.homing_position[axis];
        }
        if let Some(t0) = first {
            self.g28_time += self.th.print_time - t0;
        }
    }

    /// One homing move; returns its start time.
    fn homing_move(&mut self, movepos: [f64; 4], speed: f64, meta: &Meta) -> f64 {
        self.th.flush_step_generation();
        self.th.get_last_move_time();
        self.th.dwell(0.001);
        let start = self.th.drip_move([movepos[0], movepos[1], movepos[2]], speed, *meta);
        self.th.get_last_move_time();
        self.th.flush_step_generation();
        self.th.set_position(movepos, [None; 3]);
        start
    }

    /// End of input (`input_len` bytes in all): Klipper's exit clock.
    pub fn finish(&mut self, input_len: Option<u64>) -> f64 {
        if self.stopped {
            return self.th.print_time;
        }
        if let (FlushTimer::Reads(n), Some(len)) = (self.opts.flush_timer, input_len) {
            // The rest of the input (comments) is read piece by piece, timers in between.
            let pieces = len.div_ceil(n.max(1));
            while self.th.reads_done < pieces {
                if self.th.reads_done > 0 {
                    self.th.flush_timer();
                }
                self.th.reads_done += 1;
            }
        }
        self.th.finish(self.opts.flush_timer)
    }
}

/// Center offset (I, J) of an R-form arc; None when the radius cannot reach the end point.
fn radius_to_offset(x0: f64, y0: f64, x1: f64, y1: f64, r: f64, clockwise: bool) -> Option<(f64, f64)> {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let d2 = dx * dx + dy * dy;
    if d2 == 0.0 || r == 0.0 {
        return None;
    }
    let h2 = r * r - d2 / 4.0;
    if h2 < -1e-9 * r * r {
        return None;
    }
    let h = h2.max(0.0).sqrt() / d2.sqrt();
    // A negative radius asks for the long way round.
    let mut sign = if clockwise { -1.0 } else { 1.0 };
    if r < 0.0 {
        sign = -sign;
    }
    let i = dx / 2.0 - sign * h * dy;
    let j = dy / 2.0 + sign * h * dx;
    Some((i, j))
}
