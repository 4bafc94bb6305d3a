//! The planner's output: one row per planned move (and per dwell or wait), as plain columns.

/// Row kinds.
pub mod kind {
    /// XYZ move that extrudes.
    pub const PRINT: u8 = 0;
    /// XYZ move without extrusion (or with a retraction while moving).
    pub const TRAVEL: u8 = 1;
    /// Extruder-only move backwards.
    pub const RETRACT: u8 = 2;
    /// Extruder-only move forwards (unretract, priming).
    pub const EXTRUDE_ONLY: u8 = 3;
    /// G4, or the motor-off pauses of M84/M18.
    pub const DWELL: u8 = 4;
    /// Moves made by G28.
    pub const HOME: u8 = 5;
    /// Heater waits (no time in the batch model).
    pub const WAIT: u8 = 6;

    pub const NAMES: [&str; 7] = ["print", "travel", "retract", "extrude-only", "dwell", "home", "wait"];
}

/// Row flags.
pub mod flag {
    /// The row moves X/Y/Z (Klipper's kinematic trapezoid queue).
    pub const KINEMATIC: u8 = 1;
    /// A homing "drip" move.
    pub const DRIP: u8 = 2;
    /// The row is the first segment of a G2/G3 arc (later segments carry the same line).
    pub const ARC: u8 = 4;
}

/// Where a row comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Meta {
    pub line: u64,
    pub offset: u64,
    pub layer: i32,
    pub feature: i32,
    pub object: i32,
}

/// Columns, one entry per row, in time order.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    pub line: Vec<u64>,
    pub offset: Vec<u64>,
    pub kind: Vec<u8>,
    pub flags: Vec<u8>,
    pub t_start: Vec<f64>,
    pub accel_t: Vec<f64>,
    pub cruise_t: Vec<f64>,
    pub decel_t: Vec<f64>,
    pub start_v: Vec<f64>,
    pub cruise_v: Vec<f64>,
    pub end_v: Vec<f64>,
    pub accel: Vec<f64>,
    pub start_x: Vec<f64>,
    pub start_y: Vec<f64>,
    pub start_z: Vec<f64>,
    pub start_e: Vec<f64>,
    pub end_x: Vec<f64>,
    pub end_y: Vec<f64>,
    pub end_z: Vec<f64>,
    pub end_e: Vec<f64>,
    /// Path length: XYZ distance for XYZ moves, |E| for extruder-only moves, 0 otherwise.
    pub distance: Vec<f64>,
    pub layer: Vec<i32>,
    pub feature: Vec<i32>,
    pub object: Vec<i32>,
}

/// One row's values (used to append).
#[derive(Debug, Clone, Copy, Default)]
pub struct Row {
    pub meta: Meta,
    pub kind: u8,
    pub flags: u8,
    pub t_start: f64,
    pub accel_t: f64,
    pub cruise_t: f64,
    pub decel_t: f64,
    pub start_v: f64,
    pub cruise_v: f64,
    pub end_v: f64,
    pub accel: f64,
    pub start: [f64; 4],
    pub end: [f64; 4],
    pub distance: f64,
}

impl Timeline {
    pub fn with_capacity(n: usize) -> Timeline {
        macro_rules! v {
            () => {
                Vec::with_capacity(n)
            };
        }
        Timeline {
            line: v!(),
            offset: v!(),
            kind: v!(),
            flags: v!(),
            t_start: v!(),
            accel_t: v!(),
            cruise_t: v!(),
            decel_t: v!(),
            start_v: v!(),
            cruise_v: v!(),
            end_v: v!(),
            accel: v!(),
            start_x: v!(),
            start_y: v!(),
            start_z: v!(),
            start_e: v!(),
            end_x: v!(),
            end_y: v!(),
            end_z: v!(),
            end_e: v!(),
            distance: v!(),
            layer: v!(),
            feature: v!(),
            object: v!(),
        }
    }

    pub fn len(&self) -> usize {
        self.t_start.len()
    }

    /// Empties the columns, keeping their memory, with room for `n` rows.
    pub fn clear_for(&mut self, n: usize) {
        macro_rules! each {
            ($($c:ident),*) => {
                $(
                    self.$c.clear();
                    self.$c.reserve(n);
                )*
            };
        }
        each!(
            line, offset, kind, flags, t_start, accel_t, cruise_t, decel_t, start_v, cruise_v, end_v, accel, start_x,
            start_y, start_z, start_e, end_x, end_y, end_z, end_e, distance, layer, feature, object
        );
    }

    pub fn is_empty(&self) -> bool {
        self.t_start.is_empty()
    }

    #[inline]
    pub fn push(&mut self, r: &Row) {
        self.line.push(r.meta.line);
        self.offset.push(r.meta.offset);
        self.kind.push(r.kind);
        self.flags.push(r.flags);
        self.t_start.push(r.t_start);
        self.accel_t.push(r.accel_t);
        self.cruise_t.push(r.cruise_t);
        self.decel_t.push(r.decel_t);
        self.start_v.push(r.start_v);
        self.cruise_v.push(r.cruise_v);
        self.end_v.push(r.end_v);
        self.accel.push(r.accel);
        self.start_x.push(r.start[0]);
        self.start_y.push(r.start[1]);
        self.start_z.push(r.start[2]);
        self.start_e.push(r.start[3]);
        self.end_x.push(r.end[0]);
        self.end_y.push(r.end[1]);
        self.end_z.push(r.end[2]);
        self.end_e.push(r.end[3]);
        self.distance.push(r.distance);
        self.layer.push(r.meta.layer);
        self.feature.push(r.meta.feature);
        self.object.push(r.meta.object);
    }

    /// Duration of row `i`.
    #[inline]
    pub fn duration(&self, i: usize) -> f64 {
        self.accel_t[i] + self.cruise_t[i] + self.decel_t[i]
    }

    /// End time of row `i`.
    #[inline]
    pub fn t_end(&self, i: usize) -> f64 {
        self.t_start[i] + self.duration(i)
    }

    /// Seconds per key (layer, feature or object id; -1 for none), summed over rows.
    pub fn totals_by(&self, key: &[i32]) -> Vec<(i32, f64)> {
        let mut out: std::collections::BTreeMap<i32, f64> = Default::default();
        for (i, &k) in key.iter().enumerate() {
            *out.entry(k).or_default() += self.duration(i);
        }
        out.into_iter().collect()
    }
}
