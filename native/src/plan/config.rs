//! Printer limits read from a Klipper `printer.cfg`, with Klipper's defaults where a value is
//! missing. Only what changes motion timing is kept.

use std::collections::HashMap;

/// One linear axis (`[stepper_x]` ...): travel range and the homing parameters the batch-mode
/// `G28` model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rail {
    pub position_min: f64,
    pub position_max: f64,
    pub position_endstop: f64,
    pub homing_speed: f64,
    pub second_homing_speed: f64,
    pub homing_retract_speed: f64,
    pub homing_retract_dist: f64,
    /// Homing towards `position_max`; inferred from where the endstop sits when not given.
    pub homing_positive_dir: bool,
}

impl Rail {
    fn with_range(min: f64, max: f64) -> Rail {
        Rail {
            position_min: min,
            position_max: max,
            position_endstop: min,
            homing_speed: 5.0,
            second_homing_speed: 2.5,
            homing_retract_speed: 5.0,
            homing_retract_dist: 5.0,
            homing_positive_dir: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Extruder {
    pub nozzle_diameter: f64,
    pub filament_diameter: f64,
    /// mm² of the largest allowed extrusion cross section (default 4 × nozzle²).
    pub max_extrude_cross_section: f64,
    pub max_extrude_only_velocity: f64,
    pub max_extrude_only_accel: f64,
    pub max_extrude_only_distance: f64,
    pub instantaneous_corner_velocity: f64,
    pub pressure_advance: f64,
    pub pressure_advance_smooth_time: f64,
}

impl Extruder {
    pub fn filament_area(&self) -> f64 {
        std::f64::consts::PI * (self.filament_diameter * 0.5).powi(2)
    }
    /// E mm per XYZ mm above which an extrusion is rejected.
    pub fn max_extrude_ratio(&self) -> f64 {
        self.max_extrude_cross_section / self.filament_area()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FirmwareRetraction {
    pub retract_length: f64,
    pub retract_speed: f64,
    pub unretract_extra_length: f64,
    pub unretract_speed: f64,
}

impl Default for FirmwareRetraction {
    fn default() -> Self {
        FirmwareRetraction {
            retract_length: 0.0,
            retract_speed: 20.0,
            unretract_extra_length: 0.0,
            unretract_speed: 10.0,
        }
    }
}

/// `[fan]`: only what shapes the MCU queue timing of fan changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Fan {
    pub max_power: f64,
    pub kick_start_time: f64,
    pub off_below: f64,
}

/// How long heater waits (`M109`, `M190`, `TEMPERATURE_WAIT`) take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitModel {
    /// As Klipper's batch mode: no time, no flush.
    Batch,
    /// A fixed dwell of this many seconds per wait (the look-ahead is flushed first).
    Fixed(f64),
}

/// A problem in the configuration text; parsing goes on with the default.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PrinterConfig {
    pub kinematics: String,
    pub max_velocity: f64,
    pub max_accel: f64,
    pub minimum_cruise_ratio: f64,
    pub square_corner_velocity: f64,
    pub max_z_velocity: f64,
    pub max_z_accel: f64,
    pub extruder: Extruder,
    /// `[gcode_arcs] resolution`; None when the section is absent (G2/G3 are then unknown).
    pub arc_resolution: Option<f64>,
    /// None when `[firmware_retraction]` is absent (G10/G11 are then unknown).
    pub firmware_retraction: Option<FirmwareRetraction>,
    pub rails: [Rail; 3],
    /// `[fan]`; None when absent (M106/M107 are then ignored).
    pub fan: Option<Fan>,
    /// `[threedpai_probe] assume_homed`: X/Y/Z start homed at 0,0,0.
    pub assume_homed: bool,
    /// `[gcode_macro NAME]` sections, upper case. They run as no-ops, except `M84`, `M18` and
    /// `M221`, which follow the reference configuration's filters (see `machine`).
    pub macros: Vec<String>,
    pub exclude_object: bool,
    pub pause_resume: bool,
    pub heater_wait: WaitModel,
    pub issues: Vec<ConfigIssue>,
}

impl Default for PrinterConfig {
    /// A plain Cartesian printer with Klipper's defaults (max_velocity 300, max_accel 3000 as
    /// placeholders for Klipper's required options).
    fn default() -> Self {
        PrinterConfig::from_sections(&Sections::default())
    }
}

/// `[section]` → option → (value, line), names lower case as Klipper reads them.
#[derive(Debug, Default, Clone)]
pub struct Sections {
    pub order: Vec<String>,
    pub map: HashMap<String, HashMap<String, (String, usize)>>,
}

impl Sections {
    /// Reads Klipper's INI dialect: `key: value` or `key = value`, `#`/`;` comments, indented
    /// continuation lines (macro bodies) kept but unused.
    pub fn parse(text: &str) -> Sections {
        let mut s = Sections::default();
        let mut current: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = strip_comment(raw);
            if line.trim().is_empty() {
                continue;
            }
            let indented = raw.starts_with(' ') || raw.starts_with('\t');
            if indented {
                // Continuation of the previous option (multi-line values such as `gcode:`).
                if let (Some(sec), Some(key)) = (&current, &last_key) {
                    if let Some(entry) = s.map.get_mut(sec).and_then(|m| m.get_mut(key)) {
                        entry.0.push('\n');
                        entry.0.push_str(line.trim());
                    }
                }
                continue;
            }
            let t = line.trim();
            if t.starts_with('[') {
                let name = t.trim_start_matches('[').trim_end_matches(']').trim().to_ascii_lowercase();
                let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
                if !s.map.contains_key(&name) {
                    s.order.push(name.clone());
                }
                s.map.entry(name.clone()).or_default();
                current = Some(name);
                last_key = None;
                continue;
            }
            let Some(sec) = &current else { continue };
            let split = t.find([':', '=']);
            let (k, v) = match split {
                Some(p) => (&t[..p], &t[p + 1..]),
                None => (t, ""),
            };
            let key = k.trim().to_ascii_lowercase();
            s.map.get_mut(sec).expect("section exists").insert(key.clone(), (v.trim().to_string(), i + 1));
            last_key = Some(key);
        }
        s
    }

    pub fn has(&self, section: &str) -> bool {
        self.map.contains_key(section)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&(String, usize)> {
        self.map.get(section).and_then(|m| m.get(key))
    }

    /// Applies `section.key=value` overrides (the reference table's `config_override`).
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let sec = section.to_ascii_lowercase();
        if !self.map.contains_key(&sec) {
            self.order.push(sec.clone());
        }
        self.map.entry(sec).or_default().insert(key.to_ascii_lowercase(), (value.to_string(), 0));
    }
}

fn strip_comment(line: &str) -> &str {
    // Klipper's config parser treats `#` and `;` as comment starts.
    match line.find(['#', ';']) {
        Some(p) => &line[..p],
        None => line,
    }
}

struct Reader<'a> {
    s: &'a Sections,
    issues: Vec<ConfigIssue>,
}

impl Reader<'_> {
    fn float(&mut self, section: &str, key: &str, default: f64) -> f64 {
        match self.s.get(section, key) {
            None => default,
            Some((v, line)) => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                _ => {
                    self.issues.push(ConfigIssue {
                        line: *line,
                        message: format!("[{section}] {key}: {v:?} is not a number; using {default}"),
                    });
                    default
                }
            },
        }
    }

    /// A value Klipper requires; `fallback` is used (and noted) when it is missing.
    fn required(&mut self, section: &str, key: &str, fallback: f64) -> f64 {
        if self.s.get(section, key).is_none() {
            self.issues.push(ConfigIssue {
                line: 0,
                message: format!("[{section}] {key} is required by Klipper; using {fallback}"),
            });
        }
        self.float(section, key, fallback)
    }

    fn positive(&mut self, section: &str, key: &str, default: f64) -> f64 {
        let v = self.float(section, key, default);
        if v > 0.0 {
            v
        } else {
            self.issues
                .push(ConfigIssue { line: 0, message: format!("[{section}] {key} must be above 0; using {default}") });
            default
        }
    }

    fn boolean(&mut self, section: &str, key: &str) -> Option<bool> {
        let (v, line) = self.s.get(section, key)?;
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => {
                self.issues
                    .push(ConfigIssue { line: *line, message: format!("[{section}] {key}: {v:?} is not a boolean") });
                None
            }
        }
    }
}

impl PrinterConfig {
    /// Parses printer.cfg text.
    pub fn parse(text: &str) -> PrinterConfig {
        PrinterConfig::from_sections(&Sections::parse(text))
    }

    /// Parses printer.cfg text, then applies `section.key=value` overrides (separated by `;`
    /// or newlines, as in the reference table's `config_override` column).
    pub fn parse_with_overrides(text: &str, overrides: &str) -> PrinterConfig {
        let mut s = Sections::parse(text);
        for item in overrides.split([';', '\n']) {
            let item = item.trim();
            let Some((lhs, value)) = item.split_once('=') else { continue };
            if let Some((sec, key)) = lhs.trim().rsplit_once('.') {
                s.set(sec.trim(), key.trim(), value.trim());
            }
        }
        PrinterConfig::from_sections(&s)
    }

    pub fn from_sections(s: &Sections) -> PrinterConfig {
        let mut r = Reader { s, issues: Vec::new() };
        let p = "printer";
        let kinematics =
            s.get(p, "kinematics").map_or_else(|| "cartesian".to_string(), |v| v.0.trim().to_ascii_lowercase());
        if kinematics != "cartesian" && s.has(p) {
            r.issues.push(ConfigIssue {
                line: 0,
                message: format!(
                    "kinematics {kinematics:?} is planned as cartesian (only the Z limits differ by kinematics)"
                ),
            });
        }
        let max_velocity = r.required(p, "max_velocity", 300.0).max(1e-9);
        let max_accel = r.required(p, "max_accel", 3000.0).max(1e-9);
        let minimum_cruise_ratio = match s.get(p, "minimum_cruise_ratio") {
            Some(_) => r.float(p, "minimum_cruise_ratio", 0.5),
            None => match s.get(p, "max_accel_to_decel") {
                // Older Klipper: the decel-limited pseudo accel becomes a cruise ratio.
                Some(_) => 1.0 - r.float(p, "max_accel_to_decel", max_accel * 0.5).min(max_accel) / max_accel,
                None => 0.5,
            },
        };
        let minimum_cruise_ratio = minimum_cruise_ratio.clamp(0.0, 0.999_999);
        let square_corner_velocity = r.float(p, "square_corner_velocity", 5.0).max(0.0);
        let max_z_velocity = r.positive(p, "max_z_velocity", max_velocity).min(max_velocity);
        let max_z_accel = r.positive(p, "max_z_accel", max_accel).min(max_accel);

        let e = "extruder";
        let nozzle_diameter = r.positive(e, "nozzle_diameter", 0.4);
        let filament_diameter = r.positive(e, "filament_diameter", 1.75).max(nozzle_diameter);
        let filament_area = std::f64::consts::PI * (filament_diameter * 0.5).powi(2);
        let def_cross = 4.0 * nozzle_diameter * nozzle_diameter;
        let def_ratio = def_cross / filament_area;
        let extruder = Extruder {
            nozzle_diameter,
            filament_diameter,
            max_extrude_cross_section: r.positive(e, "max_extrude_cross_section", def_cross),
            max_extrude_only_velocity: r.positive(e, "max_extrude_only_velocity", max_velocity * def_ratio),
            max_extrude_only_accel: r.positive(e, "max_extrude_only_accel", max_accel * def_ratio),
            max_extrude_only_distance: r.float(e, "max_extrude_only_distance", 50.0).max(0.0),
            instantaneous_corner_velocity: r.float(e, "instantaneous_corner_velocity", 1.0).max(0.0),
            pressure_advance: r.float(e, "pressure_advance", 0.0).max(0.0),
            pressure_advance_smooth_time: r.float(e, "pressure_advance_smooth_time", 0.040).clamp(1e-9, 0.2),
        };

        let arc_resolution = s.has("gcode_arcs").then(|| r.positive("gcode_arcs", "resolution", 1.0));
        let firmware_retraction = s.has("firmware_retraction").then(|| {
            let f = "firmware_retraction";
            let d = FirmwareRetraction::default();
            FirmwareRetraction {
                retract_length: r.float(f, "retract_length", d.retract_length).max(0.0),
                retract_speed: r.float(f, "retract_speed", d.retract_speed).max(1.0),
                unretract_extra_length: r.float(f, "unretract_extra_length", d.unretract_extra_length).max(0.0),
                unretract_speed: r.float(f, "unretract_speed", d.unretract_speed).max(1.0),
            }
        });

        let default_ranges = [(0.0, 200.0), (0.0, 200.0), (0.0, 200.0)];
        let rails = [0usize, 1, 2].map(|i| {
            let sec = format!("stepper_{}", ["x", "y", "z"][i]);
            if !s.has(&sec) {
                let (a, b) = default_ranges[i];
                return Rail::with_range(a, b);
            }
            let position_min = r.float(&sec, "position_min", 0.0);
            let mut position_max = r.required(&sec, "position_max", position_min + 200.0);
            if position_max <= position_min {
                r.issues
                    .push(ConfigIssue { line: 0, message: format!("[{sec}] position_max must be above position_min") });
                position_max = position_min + 1.0;
            }
            let position_endstop = r.required(&sec, "position_endstop", position_min).clamp(position_min, position_max);
            let homing_speed = r.positive(&sec, "homing_speed", 5.0);
            let second_homing_speed = r.positive(&sec, "second_homing_speed", homing_speed / 2.0);
            let homing_retract_speed = r.positive(&sec, "homing_retract_speed", homing_speed);
            let homing_retract_dist = r.float(&sec, "homing_retract_dist", 5.0).max(0.0);
            let axis_len = position_max - position_min;
            let homing_positive_dir = match r.boolean(&sec, "homing_positive_dir") {
                Some(b) => b,
                None => position_endstop > position_min + axis_len / 4.0,
            };
            Rail {
                position_min,
                position_max,
                position_endstop,
                homing_speed,
                second_homing_speed,
                homing_retract_speed,
                homing_retract_dist,
                homing_positive_dir,
            }
        });

        let fan = s.has("fan").then(|| Fan {
            max_power: r.float("fan", "max_power", 1.0).clamp(1e-9, 1.0),
            kick_start_time: r.float("fan", "kick_start_time", 0.1).max(0.0),
            off_below: r.float("fan", "off_below", 0.0).clamp(0.0, 1.0),
        });
        for (section, what) in [
            ("safe_z_home", "G28 is modelled as plain homing, without [safe_z_home]"),
            ("homing_override", "G28 is modelled as plain homing, without [homing_override]"),
            (
                "input_shaper",
                "input shaping widens Klipper's step-generation window; re-sync gaps may differ by milliseconds",
            ),
        ] {
            if s.has(section) {
                r.issues.push(ConfigIssue { line: 0, message: what.to_string() });
            }
        }
        for name in s.order.iter().filter(|n| n.starts_with("include ")) {
            r.issues
                .push(ConfigIssue { line: 0, message: format!("[{name}] is not followed; only this file is read") });
        }
        let assume_homed = r.boolean("threedpai_probe", "assume_homed").unwrap_or(false);
        let macros = s
            .order
            .iter()
            .filter_map(|n| n.strip_prefix("gcode_macro "))
            .map(|n| n.trim().to_ascii_uppercase())
            .collect();
        let issues = r.issues;
        PrinterConfig {
            kinematics,
            max_velocity,
            max_accel,
            minimum_cruise_ratio,
            square_corner_velocity,
            max_z_velocity,
            max_z_accel,
            extruder,
            arc_resolution,
            firmware_retraction,
            rails,
            fan,
            assume_homed,
            macros,
            exclude_object: s.has("exclude_object"),
            pause_resume: s.has("pause_resume"),
            heater_wait: WaitModel::Batch,
            issues,
        }
    }

    pub fn has_macro(&self, name: &str) -> bool {
        self.macros.iter().any(|m| m == name)
    }
}
