//! The planner's input: one `Cmd` per G-code line that does something, converted from the
//! parser's columns. The planner sees only these types, never the parser's layout.
//!
//! A few places where Klipper reads a line differently from the lenient parser are decided
//! here from the raw text: `G01` is not `G1` for Klipper (an unknown command), a move with a
//! `( )` comment or stray text cannot be parsed, and a last line without a newline is never
//! executed.

use crate::gcode::{lexer::WORD_COLUMNS, Parsed};

use super::config::PrinterConfig;

/// A word's value: absent, present with a number, or present without one (`G28 X`). Kept in
/// eight bytes: the two non-numbers are NaN payloads (a number is never NaN).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Word(u64);

const ABSENT_BITS: u64 = 0x7ff8_0000_ab5e_0001;
const FLAG_BITS: u64 = 0x7ff8_0000_f1a6_0002;

impl Word {
    pub const ABSENT: Word = Word(ABSENT_BITS);
    pub const FLAG: Word = Word(FLAG_BITS);

    /// A number (a NaN is taken as a word without a number).
    #[inline(always)]
    pub fn of(v: f64) -> Word {
        if v.is_nan() {
            Word::FLAG
        } else {
            Word(v.to_bits())
        }
    }
    #[inline(always)]
    pub fn num(self) -> Option<f64> {
        let v = f64::from_bits(self.0);
        (!v.is_nan()).then_some(v)
    }
    #[inline(always)]
    pub fn present(self) -> bool {
        self.0 != ABSENT_BITS
    }
    #[inline(always)]
    pub fn is_flag(self) -> bool {
        self.0 == FLAG_BITS
    }
}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.num(), self.is_flag()) {
            (Some(v), _) => write!(f, "{v}"),
            (None, true) => write!(f, "Flag"),
            (None, false) => write!(f, "Absent"),
        }
    }
}

/// Coordinates and feed rate of a G0/G1/G2/G3 line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoveWords {
    pub x: Word,
    pub y: Word,
    pub z: Word,
    pub e: Word,
    pub f: Word,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArcWords {
    pub clockwise: bool,
    pub m: MoveWords,
    pub i: Word,
    pub j: Word,
    pub k: Word,
    pub r: Word,
}

/// SET_GCODE_OFFSET parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct GcodeOffset {
    pub xyz_e: [Option<f64>; 4],
    pub adjust: [Option<f64>; 4],
    pub mv: bool,
    pub speed: Option<f64>,
}

/// One planner command.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Move(MoveWords),
    Arc(Box<ArcWords>),
    /// G4: P milliseconds; S is read but Klipper ignores it.
    Dwell {
        p: Word,
        s: Word,
    },
    /// G28 with the axes named (none named: all).
    Home {
        x: bool,
        y: bool,
        z: bool,
    },
    AbsoluteCoords,
    RelativeCoords,
    AbsoluteExtrude,
    RelativeExtrude,
    SetPosition {
        x: Word,
        y: Word,
        z: Word,
        e: Word,
    },
    Retract,
    Unretract,
    SetRetraction {
        length: Option<f64>,
        speed: Option<f64>,
        extra: Option<f64>,
        unretract_speed: Option<f64>,
    },
    /// M204 S / P / T.
    SetAccel {
        s: Word,
        p: Word,
        t: Word,
    },
    SetVelocityLimit {
        velocity: Option<f64>,
        accel: Option<f64>,
        scv: Option<f64>,
        mcr: Option<f64>,
        bad: bool,
    },
    SpeedFactor(Word),
    ExtrudeFactor(Word),
    /// M400.
    WaitMoves,
    /// M84 / M18; `bare` when nothing but a comment follows the command.
    MotorsOff {
        bare: bool,
    },
    /// Commands Klipper ties to the end of the queued moves (heaters, fans): no time, but they
    /// re-sync the clock when the look-ahead queue is empty.
    LookaheadSync,
    /// M106 (S/255, S absent: full) / M107 (0), when the printer has a fan.
    Fan(Word),
    /// M109 / M190 / TEMPERATURE_WAIT (a `LookaheadSync` plus a wait in the time model).
    HeaterWait,
    Plane(u8),
    SaveState {
        name: String,
    },
    RestoreState {
        name: String,
        mv: bool,
        speed: Option<f64>,
    },
    SetGcodeOffset(Box<GcodeOffset>),
    SetPressureAdvance {
        advance: Option<f64>,
        smooth_time: Option<f64>,
    },
    /// Known to Klipper, no effect on timing.
    Nop,
    /// Not known to Klipper (`id` into `Input::names`).
    Unknown(u32),
    /// A line Klipper rejects with an error (unparsable move, G20, ...).
    Error(&'static str),
}

/// A command with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// 1-based source line.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
    /// Byte offset just past the line (its newline included).
    pub end: u64,
    pub layer: i32,
    pub feature: i32,
    pub object: i32,
    pub op: Op,
}

impl Cmd {
    /// `op` on source row `row` of a batch, with that row's layer/feature/object.
    fn at(ctx: &crate::gcode::ContextCols, row: usize, line: u64, offset: u64, end: u64, op: Op) -> Cmd {
        let (layer, feature, object) = (ctx.layer.values[row], ctx.feature.values[row], ctx.object.values[row]);
        Cmd { line, offset, end, layer, feature, object, op }
    }
}

/// How a command name is handled, decided once per distinct name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Move,
    ArcCw,
    ArcCcw,
    Dwell,
    Home,
    G90,
    G91,
    M82,
    M83,
    G92,
    G10,
    G11,
    SetRetraction,
    M204,
    SetVelocityLimit,
    M220,
    M221,
    /// M221 behind the reference configuration's macro: only a numeric S reaches Klipper.
    M221Filtered,
    M400,
    MotorsOff,
    /// M84/M18 behind the reference macro: arguments make it a no-op.
    MotorsOffFiltered,
    Sync,
    M106,
    M107,
    HeaterWait,
    Plane(u8),
    SaveState,
    RestoreState,
    SetGcodeOffset,
    SetPressureAdvance,
    G20,
    M112,
    Nop,
    Unknown,
}

/// Commands the reference Klipper knows and that do not affect timing.
const KNOWN_NOPS: &[&str] = &[
    "G21",
    "M105",
    "M110",
    "M114",
    "M115",
    "M21",
    "GET_POSITION",
    "GET_RETRACTION",
    "STATUS",
    "HELP",
    "ECHO",
    "RESTART",
    "FIRMWARE_RESTART",
    "TURN_OFF_HEATERS",
    "SET_STEPPER_ENABLE",
    "QUERY_ENDSTOPS",
    "QUERY_PROBE",
    "SET_IDLE_TIMEOUT",
    "M18.1",
    "M84.1",
    "M221.1",
    "ACTIVATE_EXTRUDER",
    "SYNC_EXTRUDER_MOTION",
    "SET_EXTRUDER_ROTATION_DISTANCE",
    "PID_CALIBRATE",
    "SET_TEMPERATURE_FAN_TARGET",
    "SAVE_CONFIG",
];
const EXCLUDE_OBJECT_CMDS: &[&str] =
    &["EXCLUDE_OBJECT", "EXCLUDE_OBJECT_START", "EXCLUDE_OBJECT_END", "EXCLUDE_OBJECT_DEFINE"];
const PAUSE_RESUME_CMDS: &[&str] = &["PAUSE", "RESUME", "CLEAR_PAUSE", "CANCEL_PRINT", "M24", "M25"];

fn classify(name: &str, cfg: &PrinterConfig) -> Class {
    // Macros first: Klipper runs a macro in place of a built-in it renames.
    if cfg.has_macro(name) {
        return match name {
            "M84" | "M18" => Class::MotorsOffFiltered,
            "M221" => Class::M221Filtered,
            _ => Class::Nop,
        };
    }
    match name {
        "G0" | "G1" => Class::Move,
        "G2" if cfg.arc_resolution.is_some() => Class::ArcCw,
        "G3" if cfg.arc_resolution.is_some() => Class::ArcCcw,
        "G17" if cfg.arc_resolution.is_some() => Class::Plane(0),
        "G18" if cfg.arc_resolution.is_some() => Class::Plane(1),
        "G19" if cfg.arc_resolution.is_some() => Class::Plane(2),
        "G4" => Class::Dwell,
        "G28" => Class::Home,
        "G90" => Class::G90,
        "G91" => Class::G91,
        "M82" => Class::M82,
        "M83" => Class::M83,
        "G92" => Class::G92,
        "G10" if cfg.firmware_retraction.is_some() => Class::G10,
        "G11" if cfg.firmware_retraction.is_some() => Class::G11,
        "SET_RETRACTION" if cfg.firmware_retraction.is_some() => Class::SetRetraction,
        "M204" => Class::M204,
        "SET_VELOCITY_LIMIT" => Class::SetVelocityLimit,
        "M220" => Class::M220,
        "M221" => Class::M221,
        "M400" => Class::M400,
        "M84" | "M18" => Class::MotorsOff,
        "M106" if cfg.fan.is_some() => Class::M106,
        "M107" if cfg.fan.is_some() => Class::M107,
        // Without a fan Klipper ignores these silently.
        "M106" | "M107" => Class::Nop,
        "M104" | "M140" | "SET_HEATER_TEMPERATURE" => Class::Sync,
        "M109" | "M190" | "TEMPERATURE_WAIT" => Class::HeaterWait,
        "SAVE_GCODE_STATE" => Class::SaveState,
        "RESTORE_GCODE_STATE" => Class::RestoreState,
        "SET_GCODE_OFFSET" => Class::SetGcodeOffset,
        "SET_PRESSURE_ADVANCE" => Class::SetPressureAdvance,
        "G20" => Class::G20,
        "M112" => Class::M112,
        _ if KNOWN_NOPS.contains(&name) => Class::Nop,
        _ if cfg.exclude_object && EXCLUDE_OBJECT_CMDS.contains(&name) => Class::Nop,
        _ if cfg.pause_resume && PAUSE_RESUME_CMDS.contains(&name) => Class::Nop,
        _ => Class::Unknown,
    }
}

const SLOT_X: usize = 0;
const SLOT_Y: usize = 1;
const SLOT_Z: usize = 2;
const SLOT_E: usize = 3;
const SLOT_F: usize = 4;
const SLOT_I: usize = 5;
const SLOT_J: usize = 6;
const SLOT_K: usize = 7;
const SLOT_R: usize = 8;
const SLOT_P: usize = 9;
const SLOT_S: usize = 10;
const SLOT_T: usize = 11;

/// Converts a parsed file into planner commands, lazily (an iterator: no command list is built).
pub struct Input<'a> {
    parsed: &'a Parsed,
    text: &'a [u8],
    classes: Vec<Class>,
    /// Command names, for `Op::Unknown` ids (the parser's command dictionary plus names such as
    /// `G01` that Klipper does not normalize).
    pub names: Vec<String>,
    /// Lines with lexer diagnostics that make a move unparsable for Klipper (sorted).
    bad_lines: Vec<u64>,
    bad_pos: usize,
    /// The parser kept only part of its diagnostics: moves are checked on their raw text.
    scan_all_moves: bool,
    /// Line number of a final line without a newline (Klipper never runs it).
    dropped_line: u64,
    batch: usize,
    row: usize,
}

impl<'a> Input<'a> {
    pub fn new(parsed: &'a Parsed, text: &'a [u8], cfg: &PrinterConfig) -> Input<'a> {
        debug_assert_eq!(&WORD_COLUMNS, b"XYZEFIJKRPST");
        let names = parsed.context.commands.strings();
        let classes = names.iter().map(|n| classify(n, cfg)).collect();
        let mut bad_lines: Vec<u64> = parsed
            .diagnostics
            .iter()
            .filter(|d| matches!(d.code, "unexpected" | "unbalanced-paren"))
            .map(|d| d.line)
            .collect();
        bad_lines.sort_unstable();
        bad_lines.dedup();
        let rows: u64 = parsed.batches.iter().map(|b| b.lexed.rows as u64).sum();
        let dropped_line = match text.last() {
            Some(b'\n') | None => 0,
            Some(_) => rows,
        };
        Input {
            parsed,
            text,
            classes,
            names,
            bad_lines,
            bad_pos: 0,
            scan_all_moves: parsed.diagnostics_total > parsed.diagnostics.len() as u64,
            dropped_line,
            batch: 0,
            row: 0,
        }
    }

    /// The raw bytes of a line up to its `;` comment (or end).
    fn raw_code(&self, offset: u64) -> &'a [u8] {
        let text = self.text;
        let start = (offset as usize).min(text.len());
        let rest = &text[start..];
        let end = memchr::memchr3(b'\n', b'\r', b';', rest).unwrap_or(rest.len());
        &rest[..end]
    }

    /// Klipper cannot parse a move whose code part has `(`, `{` or other stray characters.
    fn move_unparsable(&mut self, line: u64, offset: u64, has_comment: bool) -> bool {
        while self.bad_pos < self.bad_lines.len() && self.bad_lines[self.bad_pos] < line {
            self.bad_pos += 1;
        }
        if self.bad_lines.get(self.bad_pos) == Some(&line) {
            return true;
        }
        if self.scan_all_moves {
            return self.raw_code(offset).iter().any(|&b| !(b.is_ascii_alphanumeric() || b" \t.+-*_".contains(&b)));
        }
        has_comment && memchr::memchr(b'(', self.raw_code(offset)).is_some()
    }

    /// `G01`, `M0104`: Klipper keeps the zeros, so the command is not the one the parser named.
    fn leading_zero_name(&self, offset: u64) -> Option<String> {
        let code = self.raw_code(offset);
        let mut i = code.iter().position(|b| !b.is_ascii_whitespace())?;
        if matches!(code[i], b'N' | b'n') {
            i += 1;
            while i < code.len() && (code[i].is_ascii_digit() || code[i] == b' ' || code[i] == b'\t') {
                i += 1;
            }
        }
        let letter = code.get(i)?.to_ascii_uppercase();
        if !matches!(letter, b'G' | b'M') {
            return None;
        }
        let digits = &code[i + 1..];
        let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if n >= 2 && digits[0] == b'0' {
            let mut s = String::new();
            s.push(letter as char);
            s.push_str(std::str::from_utf8(&digits[..n]).unwrap_or("0"));
            return Some(s);
        }
        None
    }

    fn name_id(&mut self, name: String) -> u32 {
        match self.names.iter().position(|n| *n == name) {
            Some(i) => i as u32,
            None => {
                self.names.push(name);
                (self.names.len() - 1) as u32
            }
        }
    }
}

#[inline(always)]
fn word(words: &[crate::gcode::columns::F64Col], slot: usize, row: usize) -> Word {
    let Some(c) = words.get(slot) else { return Word::ABSENT };
    // A column without values (the parser allocates them lazily) has an empty bitmap.
    if !bit(&c.valid, row) {
        return Word::ABSENT;
    }
    match c.values.get(row) {
        None => Word::ABSENT,
        Some(&v) => Word::of(v),
    }
}

/// A bit of a validity bitmap; a bitmap left unallocated (an all-null column) reads as unset.
#[inline]
fn bit(b: &crate::gcode::columns::Bitmap, i: usize) -> bool {
    i < b.len && b.bytes.get(i >> 3).is_some_and(|x| x & (1 << (i & 7)) != 0)
}

/// Python's `float()` on a parameter value.
fn param_f64(v: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let s = s.replace('_', "");
    s.parse::<f64>().ok()
}

impl Iterator for Input<'_> {
    type Item = Cmd;

    fn next(&mut self) -> Option<Cmd> {
        loop {
            let batch = self.parsed.batches.get(self.batch)?;
            if self.row >= batch.lexed.rows {
                self.batch += 1;
                self.row = 0;
                continue;
            }
            let row = self.row;
            self.row += 1;
            if let Some(cmd) = self.convert(row) {
                return Some(cmd);
            }
        }
    }
}

impl Input<'_> {
    /// Runs `f` on every command in order until it returns false (the planner's loop: the
    /// conversion is inlined into it, with no iterator state to reload per row).
    pub fn for_each_until(&mut self, mut f: impl FnMut(&Cmd) -> bool) {
        while let Some(batch) = self.parsed.batches.get(self.batch) {
            let rows = batch.lexed.rows;
            while self.row < rows {
                let row = self.row;
                self.row += 1;
                if let Some(cmd) = self.convert(row) {
                    if !f(&cmd) {
                        return;
                    }
                }
            }
            self.batch += 1;
            self.row = 0;
        }
    }

    /// The command of `row` in the current batch, if the line has one.
    #[inline(always)]
    fn convert(&mut self, row: usize) -> Option<Cmd> {
        {
            let batch = &self.parsed.batches[self.batch];
            let lx = &batch.lexed;
            let id = lx.command[row];
            let line = lx.first_line + row as u64;
            if line == self.dropped_line {
                return None;
            }
            let offset = lx.offset[row] as u64;
            let end = match lx.offset.get(row + 1) {
                Some(&o) => o as u64,
                None => match self.parsed.batches.get(self.batch + 1).and_then(|b| b.lexed.offset.first()) {
                    Some(&o) => o as u64,
                    None => self.text.len() as u64,
                },
            };
            if id < 0 {
                // A line Klipper sees as a command although the parser sees a comment:
                // `(comment)` lines (Klipper has no parenthesis comments).
                if bit(&lx.comment.valid, row) {
                    if let Some(name) = self.paren_command(offset) {
                        let idu = self.name_id(name);
                        return Some(Cmd::at(&batch.context, row, line, offset, end, Op::Unknown(idu)));
                    }
                }
                return None;
            }
            let mut class = self.classes[id as usize];
            let w = &lx.words;
            let ctx = &batch.context;
            let mut unknown_name = None;
            if !matches!(class, Class::Unknown) {
                // Only classic commands can carry zeros the parser dropped.
                let name = &self.parsed.context.commands.values[id as usize];
                if name.len() >= 2 && matches!(name[0], b'G' | b'M') && name[1].is_ascii_digit() {
                    if let Some(raw) = self.zero_check(offset) {
                        unknown_name = Some(raw);
                        class = Class::Unknown;
                    }
                }
            }
            let op = match class {
                Class::Move | Class::ArcCw | Class::ArcCcw => {
                    let m = MoveWords {
                        x: word(w, SLOT_X, row),
                        y: word(w, SLOT_Y, row),
                        z: word(w, SLOT_Z, row),
                        e: word(w, SLOT_E, row),
                        f: word(w, SLOT_F, row),
                    };
                    if self.move_unparsable(line, offset, bit(&lx.comment.valid, row)) {
                        Op::Error("unable to parse move")
                    } else if class == Class::Move {
                        Op::Move(m)
                    } else {
                        Op::Arc(Box::new(ArcWords {
                            clockwise: class == Class::ArcCw,
                            m,
                            i: word(w, SLOT_I, row),
                            j: word(w, SLOT_J, row),
                            k: word(w, SLOT_K, row),
                            r: word(w, SLOT_R, row),
                        }))
                    }
                }
                Class::Dwell => Op::Dwell { p: word(w, SLOT_P, row), s: word(w, SLOT_S, row) },
                Class::Home => {
                    let (x, y, z) = (
                        word(w, SLOT_X, row).present(),
                        word(w, SLOT_Y, row).present(),
                        word(w, SLOT_Z, row).present(),
                    );
                    if x || y || z {
                        Op::Home { x, y, z }
                    } else {
                        Op::Home { x: true, y: true, z: true }
                    }
                }
                Class::G90 => Op::AbsoluteCoords,
                Class::G91 => Op::RelativeCoords,
                Class::M82 => Op::AbsoluteExtrude,
                Class::M83 => Op::RelativeExtrude,
                Class::G92 => Op::SetPosition {
                    x: word(w, SLOT_X, row),
                    y: word(w, SLOT_Y, row),
                    z: word(w, SLOT_Z, row),
                    e: word(w, SLOT_E, row),
                },
                Class::G10 => Op::Retract,
                Class::G11 => Op::Unretract,
                Class::SetRetraction => {
                    let p = |k: &[u8]| lx.params.get(row, k).and_then(param_f64);
                    Op::SetRetraction {
                        length: p(b"RETRACT_LENGTH"),
                        speed: p(b"RETRACT_SPEED"),
                        extra: p(b"UNRETRACT_EXTRA_LENGTH"),
                        unretract_speed: p(b"UNRETRACT_SPEED"),
                    }
                }
                Class::M204 => {
                    Op::SetAccel { s: word(w, SLOT_S, row), p: word(w, SLOT_P, row), t: word(w, SLOT_T, row) }
                }
                Class::SetVelocityLimit => {
                    let mut bad = false;
                    let mut p = |k: &[u8]| match lx.params.get(row, k) {
                        None => None,
                        Some(v) => {
                            let r = param_f64(v);
                            bad |= r.is_none();
                            r
                        }
                    };
                    let velocity = p(b"VELOCITY");
                    let accel = p(b"ACCEL");
                    let scv = p(b"SQUARE_CORNER_VELOCITY");
                    let mcr = p(b"MINIMUM_CRUISE_RATIO");
                    Op::SetVelocityLimit { velocity, accel, scv, mcr, bad }
                }
                Class::M220 => Op::SpeedFactor(word(w, SLOT_S, row)),
                Class::M221 => Op::ExtrudeFactor(word(w, SLOT_S, row)),
                Class::M221Filtered => match word(w, SLOT_S, row) {
                    w if w.num().is_some_and(|v| v >= 0.0) => Op::ExtrudeFactor(w),
                    _ => Op::Nop,
                },
                Class::M400 => Op::WaitMoves,
                Class::MotorsOff | Class::MotorsOffFiltered => {
                    let has_args =
                        bit(&lx.params.valid, row) || (0..WORD_COLUMNS.len()).any(|s| word(w, s, row).present());
                    if class == Class::MotorsOffFiltered && has_args {
                        Op::Nop
                    } else {
                        Op::MotorsOff { bare: !has_args }
                    }
                }
                Class::Sync => Op::LookaheadSync,
                Class::M106 => Op::Fan({
                    let s = word(w, SLOT_S, row);
                    match s.num() {
                        Some(v) => Word::of(v / 255.0),
                        None if s.is_flag() => Word::FLAG,
                        None => Word::of(1.0),
                    }
                }),
                Class::M107 => Op::Fan(Word::of(0.0)),
                Class::HeaterWait => Op::HeaterWait,
                Class::Plane(p) => Op::Plane(p),
                Class::SaveState => Op::SaveState { name: state_name(lx, row) },
                Class::RestoreState => Op::RestoreState {
                    name: state_name(lx, row),
                    mv: lx.params.get(row, b"MOVE").and_then(param_f64).is_some_and(|v| v != 0.0),
                    speed: lx.params.get(row, b"MOVE_SPEED").and_then(param_f64),
                },
                Class::SetGcodeOffset => {
                    let p = |k: &str| lx.params.get(row, k.as_bytes()).and_then(param_f64);
                    Op::SetGcodeOffset(Box::new(GcodeOffset {
                        xyz_e: [p("X"), p("Y"), p("Z"), p("E")],
                        adjust: [p("X_ADJUST"), p("Y_ADJUST"), p("Z_ADJUST"), p("E_ADJUST")],
                        mv: p("MOVE").is_some_and(|v| v != 0.0),
                        speed: p("MOVE_SPEED"),
                    }))
                }
                Class::SetPressureAdvance => Op::SetPressureAdvance {
                    advance: lx.params.get(row, b"ADVANCE").and_then(param_f64),
                    smooth_time: lx.params.get(row, b"SMOOTH_TIME").and_then(param_f64),
                },
                Class::G20 => Op::Error("machine does not support G20 (inches)"),
                Class::M112 => Op::Error("M112: emergency stop (Klipper shuts down)"),
                Class::Nop => Op::Nop,
                Class::Unknown => {
                    let idu = match unknown_name.take() {
                        Some(n) => self.name_id(n),
                        None => id as u32,
                    };
                    Op::Unknown(idu)
                }
            };
            Some(Cmd::at(ctx, row, line, offset, end, op))
        }
    }
}

impl Input<'_> {
    /// The command name Klipper reads from a line starting with `(`, if it does.
    fn paren_command(&self, offset: u64) -> Option<String> {
        let code = self.raw_code(offset);
        let start = code.iter().position(|b| !b.is_ascii_whitespace())?;
        let code = &code[start..];
        if code.first() != Some(&b'(') {
            return None;
        }
        // Klipper's name: the text before the first parameter letter, that letter run, and
        // what follows it up to the next letter.
        let up: Vec<u8> = code.iter().map(u8::to_ascii_uppercase).collect();
        let is_key = |b: u8| b.is_ascii_uppercase() || b == b'_' || b == b'*';
        let a = up.iter().position(|&b| is_key(b)).unwrap_or(up.len());
        let b = a + up[a..]
            .iter()
            .position(|&b| !(b.is_ascii_uppercase() || b == b'_'))
            .unwrap_or(up.len() - a)
            .max(usize::from(a < up.len()));
        let c = b + up[b..].iter().position(|&b| is_key(b)).unwrap_or(up.len() - b);
        Some(String::from_utf8_lossy(&up[..c]).trim().to_string())
    }

    #[inline]
    fn zero_check(&self, offset: u64) -> Option<String> {
        // Fast path: the line starts with the command letter itself.
        let o = offset as usize;
        let t = self.text;
        if o + 2 < t.len() && t[o].is_ascii_alphabetic() && t[o + 1] != b'0' {
            return None;
        }
        self.leading_zero_name(offset)
    }
}

fn state_name(lx: &crate::gcode::Lexed, row: usize) -> String {
    lx.params.get(row, b"NAME").map_or_else(|| "default".to_string(), |v| String::from_utf8_lossy(v).into_owned())
}
