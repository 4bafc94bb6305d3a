//! Modal context, resolved in file order: layer, layer Z, feature, object, width and height
//! per line, plus the file-level facts gathered on the way (settings, estimates, thumbnails).

use std::collections::HashMap;

use super::columns::{Bitmap, F64Col, IdCol};
use super::dict::Dict;
use super::lexer::{Event, Lexed, WORD_COLUMNS};
use super::summary::{LayerInfo, SummaryBuilder};

/// How layers are counted for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSource {
    /// Slicer comments (`;LAYER_CHANGE`, `;LAYER:n`, `; CHANGE_LAYER`, ...).
    Markers,
    /// No markers: a layer starts at the first extruding move above the current layer's Z.
    Z,
}

impl LayerSource {
    pub fn name(self) -> &'static str {
        match self {
            LayerSource::Markers => "markers",
            LayerSource::Z => "z",
        }
    }
}

/// Smallest Z rise that starts a new layer in `LayerSource::Z` mode (mm).
const MIN_LAYER_RISE: f64 = 0.01;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Other,
    Move,
    Absolute,
    Relative,
    AbsoluteE,
    RelativeE,
    SetPosition,
    M486,
    ExcludeStart,
    ExcludeEnd,
    Progress,
}

fn kind_of(name: &[u8]) -> Kind {
    match name {
        b"G0" | b"G1" | b"G2" | b"G3" => Kind::Move,
        b"G90" => Kind::Absolute,
        b"G91" => Kind::Relative,
        b"M82" => Kind::AbsoluteE,
        b"M83" => Kind::RelativeE,
        b"G92" => Kind::SetPosition,
        b"M486" => Kind::M486,
        b"EXCLUDE_OBJECT_START" => Kind::ExcludeStart,
        b"EXCLUDE_OBJECT_END" => Kind::ExcludeEnd,
        b"M73" => Kind::Progress,
        _ => Kind::Other,
    }
}

/// The context of a line, compared bitwise to find where runs end.
#[derive(Clone, Copy, PartialEq, Eq)]
struct State {
    layer: i32,
    z: u64,
    feature: i32,
    object: i32,
    width: u64,
    height: u64,
}

/// The context columns of one batch.
#[derive(Debug)]
pub struct ContextCols {
    /// 1-based line numbers: known once the pieces before are counted, and written here, in the
    /// in-order pass that overlaps the lexing, rather than when the batch is handed over.
    pub line: Vec<i64>,
    pub layer: IdCol,
    pub z: F64Col,
    pub feature: IdCol,
    pub object: IdCol,
    pub width: F64Col,
    pub height: F64Col,
}

pub struct Context {
    source: LayerSource,
    pub commands: Dict,
    kinds: Vec<Kind>,
    pub features: Dict,
    pub objects: Dict,
    pub summary: SummaryBuilder,
    rows_done: u64,
    layer: i32,
    z: f64,
    feature: i32,
    object: i32,
    width: f64,
    height: f64,
    z_pending: bool,
    /// Rows (file rows `start..end`) whose layer learned its Z only later in the layer, in this
    /// batch or earlier ones, for the caller to fill (`take_z_fills`): context must not depend on
    /// where a file is cut into batches.
    z_fills: Vec<(u64, u64, f64)>,
    /// File row where the current layer started.
    layer_first_row: u64,
    abs_xyz: bool,
    abs_e: bool,
    pos_z: f64,
    pos_e: f64,
    m486_names: HashMap<i64, i32>,
    /// An `M486 S<id>` without a name yet, and its row.
    pending_m486: Option<(i64, u64)>,
    in_thumbnail: bool,
    in_config: bool,
    thumbnail: Vec<u8>,
    thumbnail_size: (u32, u32),
    cura_settings: String,
    loose_settings: Vec<(u64, (String, String))>,
    config_block: bool,
    /// Objects are named by comments (`; printing object`); `M486` ids then only follow them.
    comment_objects: bool,
}

/// Sets bits `start..end` of a bitmap of words.
fn set_bits(bits: &mut [u64], start: usize, end: usize) {
    let mut i = start;
    while i < end {
        let n = (end - i).min(64 - i % 64); // 1..=64 bits in this word
        bits[i / 64] |= (u64::MAX >> (64 - n)) << (i % 64);
        i += n;
    }
}

/// `visit |= bitmap`, a 64-row word at a time (bitmaps are least significant bit first).
fn or_bitmap(visit: &mut [u64], b: &Bitmap) {
    for (w, chunk) in visit.iter_mut().zip(b.bytes.chunks(8)) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        *w |= u64::from_le_bytes(word);
    }
}

const SLOT_Z: usize = 2;
const SLOT_E: usize = 3;
const SLOT_R: usize = 8;
const SLOT_S: usize = 10;
const SLOT_T: usize = 11;

impl Context {
    pub fn new(source: LayerSource) -> Self {
        debug_assert_eq!(&WORD_COLUMNS[SLOT_Z..=SLOT_E], b"ZE");
        debug_assert_eq!(WORD_COLUMNS[SLOT_S], b'S');
        debug_assert_eq!(WORD_COLUMNS[SLOT_R], b'R');
        debug_assert_eq!(WORD_COLUMNS[SLOT_T], b'T');
        Context {
            source,
            commands: Dict::default(),
            kinds: Vec::new(),
            features: Dict::default(),
            objects: Dict::default(),
            summary: SummaryBuilder::default(),
            rows_done: 0,
            layer: -1,
            z: f64::NAN,
            feature: -1,
            object: -1,
            width: f64::NAN,
            height: f64::NAN,
            z_pending: false,
            z_fills: Vec::new(),
            layer_first_row: 0,
            abs_xyz: true,
            abs_e: true,
            pos_z: 0.0,
            pos_e: 0.0,
            m486_names: HashMap::new(),
            pending_m486: None,
            in_thumbnail: false,
            in_config: false,
            thumbnail: Vec::new(),
            thumbnail_size: (0, 0),
            cura_settings: String::new(),
            loose_settings: Vec::new(),
            config_block: false,
            comment_objects: false,
        }
    }

    pub fn source(&self) -> LayerSource {
        self.source
    }

    /// Rewrites `lx`'s command ids into the file-wide dictionary, fixes its line numbers, and
    /// computes its context columns.
    pub fn resolve(&mut self, lx: &mut Lexed) -> ContextCols {
        let rows = lx.rows;
        lx.first_line = self.rows_done + 1;
        for d in &mut lx.diagnostics {
            d.line += self.rows_done;
        }
        let map: Vec<i32> = lx
            .commands
            .dict
            .values
            .iter()
            .map(|name| {
                let id = self.commands.intern(name);
                if id as usize == self.kinds.len() {
                    self.kinds.push(kind_of(name));
                }
                id
            })
            .collect();
        let markers = self.source == LayerSource::Markers;
        // Rows whose command can change the context (modes, positions, objects, progress; every
        // move when layers follow Z), marked while the ids are rewritten.
        let changes: Vec<u64> = self.kinds.iter().map(|&k| (k != Kind::Other && !(k == Kind::Move && markers)) as u64).collect();
        let mut visit = vec![0u64; rows.div_ceil(64)];
        let mut counts = vec![0u64; self.commands.len()];
        // A run of one command (most rows repeat the one before) is found eight rows at a time,
        // then looked up, counted, rewritten and marked at once.
        let commands = &mut lx.command;
        let mut row = 0;
        while row < rows {
            let (start, local) = (row, commands[row]);
            row += 1;
            while let Some(next) = commands.get(row..row + 8) {
                if <&[i32; 8]>::try_from(next).expect("8 ids") != &[local; 8] {
                    break;
                }
                row += 8;
            }
            while row < rows && commands[row] == local {
                row += 1;
            }
            if local < 0 {
                continue;
            }
            let global = map[local as usize];
            counts[global as usize] += (row - start) as u64;
            commands[start..row].fill(global);
            if changes[global as usize] != 0 {
                set_bits(&mut visit, start, row);
            }
        }
        // An M486 id from the previous piece waiting for its name looks at this piece's first row.
        if self.pending_m486.is_some() && rows > 0 {
            visit[0] |= 1;
        }
        // And comment-only lines (where every event is) and rows with a Z word.
        or_bitmap(&mut visit, &lx.comment_only);
        if !lx.words[SLOT_Z].is_all_null() {
            or_bitmap(&mut visit, &lx.words[SLOT_Z].valid);
        }
        self.summary.add_command_counts(&self.commands, &counts);
        self.summary.count_checksums(lx.checksum_valid.count(), lx.checksum_ok.count(), lx.n_valid.count());

        let first = lx.first_line as i64;
        let mut out = ContextCols {
            line: (first..first + rows as i64).collect(),
            layer: IdCol::with_capacity(rows),
            z: F64Col::with_capacity(rows),
            feature: IdCol::with_capacity(rows),
            object: IdCol::with_capacity(rows),
            width: F64Col::with_capacity(rows),
            height: F64Col::with_capacity(rows),
        };
        let events = std::mem::take(&mut lx.events);
        let mut ev = events.iter().peekable();
        // Context is piecewise constant: rows are written a run at a time, when it changes.
        let mut run_start = 0;
        let mut next_event = ev.peek().map_or(usize::MAX, |(r, _)| *r as usize);
        let z_col = &lx.words[SLOT_Z];
        // Only the rows marked in `visit` can change the context; the others are skipped a
        // 64-row word at a time.
        let mut word = 0;
        let mut bits = 0u64;
        loop {
            while bits == 0 {
                if word == visit.len() {
                    break;
                }
                bits = visit[word];
                word += 1;
            }
            if bits == 0 {
                break;
            }
            let row = (word - 1) * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            // Rows that cannot change the context skip the general step below: no event, not a
            // comment line, no M486 id waiting for a name, and a command that is not a mode
            // change. In marker mode a move only needs its Z followed (E is not used there),
            // unless the layer waits for its Z.
            let cmd = lx.command[row];
            let kind = if cmd >= 0 { self.kinds[cmd as usize] } else { Kind::Other };
            if row != next_event && self.pending_m486.is_none() && !lx.comment_only.get(row) {
                match kind {
                    Kind::Other => continue,
                    Kind::Move if markers => match z_col.get(row).filter(|z| z.is_finite()) {
                        None => continue,
                        Some(z) if !(self.z_pending && self.layer >= 0) => {
                            self.pos_z = if self.abs_xyz { z } else { self.pos_z + z };
                            continue;
                        }
                        Some(_) => {}
                    },
                    _ => {}
                }
            }
            let before = self.state();
            let tagged = next_event == row;
            while let Some((_, e)) = ev.next_if(|(r, _)| *r as usize == row) {
                self.event(e, row);
            }
            next_event = ev.peek().map_or(usize::MAX, |(r, _)| *r as usize);
            if lx.comment_only.get(row) {
                self.comment_line(lx.comment.row(row).unwrap_or(b""), row, tagged);
            }
            if cmd >= 0 {
                self.command(kind, lx, row);
            }
            if let Some((id, _)) = self.pending_m486.filter(|&(_, at)| at < self.rows_done + row as u64) {
                self.pending_m486 = None;
                let obj = self.objects.intern(id.to_string().as_bytes());
                self.m486_names.insert(id, obj);
                self.object = obj;
            }
            if self.state() != before {
                Self::fill(&mut out, run_start, row, before);
                run_start = row;
            }
            // An M486 id waiting for its name looks at the next row too.
            if self.pending_m486.is_some() && row + 1 < rows {
                let next = row + 1;
                if next >> 6 == word - 1 {
                    bits |= 1 << (next & 63);
                } else {
                    visit[next >> 6] |= 1 << (next & 63);
                }
            }
        }
        Self::fill(&mut out, run_start, rows, self.state());
        self.rows_done += rows as u64;
        out
    }

    fn name_m486(&mut self, id: i64, name: &[u8]) -> i32 {
        let obj = self.objects.intern(name);
        self.m486_names.insert(id, obj);
        obj
    }

    /// The M486 id of the current object, if it was selected by number.
    fn selected_m486(&self) -> Option<i64> {
        (self.object >= 0).then(|| self.m486_names.iter().find(|(_, &o)| o == self.object).map(|(&id, _)| id)).flatten()
    }

    fn state(&self) -> State {
        State {
            layer: self.layer,
            z: self.z.to_bits(),
            feature: self.feature,
            object: self.object,
            width: self.width.to_bits(),
            height: self.height.to_bits(),
        }
    }

    /// Appends rows `start..end` (runs arrive in order and cover the batch).
    fn fill(out: &mut ContextCols, start: usize, end: usize, s: State) {
        let n = end - start;
        out.layer.extend(n, s.layer);
        out.feature.extend(n, s.feature);
        out.object.extend(n, s.object);
        out.z.extend(n, f64::from_bits(s.z));
        out.width.extend(n, f64::from_bits(s.width));
        out.height.extend(n, f64::from_bits(s.height));
    }

    fn new_layer(&mut self, z: Option<f64>, row: usize) {
        self.layer += 1;
        self.layer_first_row = self.rows_done + row as u64;
        match z {
            Some(z) => {
                self.z = z;
                self.z_pending = false;
            }
            None => {
                self.z = f64::NAN;
                self.z_pending = true;
            }
        }
        self.summary.layers.push(LayerInfo {
            z: self.z,
            first_line: self.rows_done + row as u64 + 1,
            height: f64::NAN,
        });
    }

    /// Sets the current layer's Z, to be filled into the layer's rows seen so far.
    fn set_layer_z(&mut self, z: f64, row: usize) {
        self.z = z;
        if self.z_pending {
            self.z_fills.push((self.layer_first_row, self.rows_done + row as u64, z));
            self.z_pending = false;
        }
        if let Some(l) = self.summary.layers.last_mut() {
            l.z = z;
        }
    }

    fn event(&mut self, e: &Event, row: usize) {
        match e {
            Event::LayerChange(z) if self.source == LayerSource::Markers => self.new_layer(*z, row),
            Event::LayerZ(z) if self.source == LayerSource::Markers && self.layer >= 0 => {
                self.set_layer_z(*z, row)
            }
            Event::Height(h) => {
                self.height = *h;
                if let Some(l) = self.summary.layers.last_mut() {
                    if l.height.is_nan() && self.source == LayerSource::Markers {
                        l.height = *h;
                    }
                }
            }
            Event::Width(w) => self.width = *w,
            Event::Feature(f) => self.feature = self.features.intern(f),
            Event::ObjectStart(o) => {
                self.object = self.objects.intern(o);
                self.comment_objects = true;
            }
            Event::ObjectEnd => self.object = -1,
            Event::ThumbnailBegin { width, height } => {
                self.in_thumbnail = true;
                self.thumbnail.clear();
                self.thumbnail_size = (*width, *height);
            }
            Event::ThumbnailEnd => {
                if self.in_thumbnail {
                    self.summary.add_thumbnail(&self.thumbnail, self.thumbnail_size);
                }
                self.in_thumbnail = false;
            }
            Event::ConfigBegin => self.in_config = true,
            Event::ConfigEnd => self.in_config = false,
            _ => {}
        }
    }

    /// A comment-only line; `tagged` when it was a slicer tag (`;TYPE:`, `;WIDTH:`, ...), which
    /// is neither a statistic nor a setting.
    fn comment_line(&mut self, comment: &[u8], row: usize, tagged: bool) {
        if self.in_thumbnail {
            if !comment.contains(&b' ') && !comment.starts_with(b"thumbnail") {
                self.thumbnail.extend_from_slice(comment);
            }
            return;
        }
        if self.in_config {
            if let Some((k, v)) = crate::slicer::meta::config_line(comment) {
                self.summary.settings.push((k, v));
                self.config_block = true;
            }
            return;
        }
        if tagged {
            return;
        }
        if let Some(payload) = comment.strip_prefix(b"SETTING_3 ") {
            self.cura_settings.push_str(&String::from_utf8_lossy(payload));
            return;
        }
        // Every statistic and setting has a `:`, `=` or `,` (`;WIPE_START` and the like have none).
        if memchr::memchr3(b':', b'=', b',', comment).is_none() {
            return;
        }
        for f in crate::slicer::meta::facts(comment) {
            self.summary.add_fact(f);
        }
        // PrusaSlicer before 2.4, SuperSlicer 2.3 and Slic3r end the file with unmarked
        // `; key = value` settings; kept aside and used when the file has no config block.
        if let Some(kv) = crate::slicer::meta::config_line(comment) {
            self.loose_settings.push((self.rows_done + row as u64 + 1, kv));
        }
    }

    fn command(&mut self, kind: Kind, lx: &Lexed, row: usize) {
        match kind {
            Kind::Other => {}
            Kind::Move => {
                let z = lx.words[SLOT_Z].get(row);
                let e = lx.words[SLOT_E].get(row);
                if let Some(z) = z.filter(|z| z.is_finite()) {
                    self.pos_z = if self.abs_xyz { z } else { self.pos_z + z };
                    if self.source == LayerSource::Markers && self.z_pending && self.layer >= 0 {
                        self.set_layer_z(self.pos_z, row);
                    }
                }
                if let Some(e) = e.filter(|e| e.is_finite()) {
                    let extrudes = if self.abs_e { e > self.pos_e } else { e > 0.0 };
                    self.pos_e = if self.abs_e { e } else { self.pos_e + e };
                    if extrudes
                        && self.source == LayerSource::Z
                        && (self.layer < 0 || self.pos_z > self.z + MIN_LAYER_RISE)
                    {
                        self.new_layer(Some(self.pos_z), row);
                    }
                }
            }
            Kind::Absolute => {
                self.abs_xyz = true;
                self.abs_e = true;
            }
            Kind::Relative => {
                self.abs_xyz = false;
                self.abs_e = false;
            }
            Kind::AbsoluteE => self.abs_e = true,
            Kind::RelativeE => self.abs_e = false,
            Kind::SetPosition => {
                if let Some(z) = lx.words[SLOT_Z].get(row).filter(|v| v.is_finite()) {
                    self.pos_z = z;
                }
                if let Some(e) = lx.words[SLOT_E].get(row).filter(|v| v.is_finite()) {
                    self.pos_e = e;
                }
            }
            Kind::M486 => {
                // M486 S<id> selects an object (S-1: none); M486 A<name> names the selected one.
                // An id selected before it has a name stays unnamed for one line, so that a name
                // on the next line (PrusaSlicer: `M486 S0` then `M486 ATC_Top.stl`) is used
                // without rewriting rows already emitted; then its number stands in as the name.
                let id = lx.words[SLOT_S].get(row).filter(|v| v.is_finite()).map(|v| v as i64);
                let name = lx.params.get(row, b"A");
                if let Some(id) = id {
                    self.pending_m486 = None;
                    self.object = match (self.m486_names.get(&id), name) {
                        _ if id < 0 => -1,
                        (_, Some(name)) => self.name_m486(id, name),
                        (Some(&obj), None) => obj,
                        // PrusaSlicer writes `; printing object NAME` then `M486 S<id>`.
                        (None, None) if self.comment_objects && self.object >= 0 => {
                            self.m486_names.insert(id, self.object);
                            self.object
                        }
                        (None, None) => {
                            self.pending_m486 = Some((id, self.rows_done + row as u64));
                            -1
                        }
                    };
                } else if let Some(name) = name {
                    let selected = self.pending_m486.take().map(|(id, _)| id).or(self.selected_m486());
                    self.object = match selected {
                        Some(id) => self.name_m486(id, name),
                        None => self.objects.intern(name),
                    };
                }
            }
            Kind::ExcludeStart => {
                if let Some(name) = lx.params.get(row, b"NAME") {
                    self.object = self.objects.intern(name);
                }
            }
            Kind::ExcludeEnd => self.object = -1,
            Kind::Progress => {
                // M73 P<percent> R<minutes left>: the slicer's own progress marks.
                let remaining = lx.words[SLOT_R].get(row).filter(|v| v.is_finite());
                self.summary.progress_marks += 1;
                if let Some(r) = remaining {
                    let best = self.summary.progress_total_min.get_or_insert(r);
                    *best = best.max(r);
                }
            }
        }
    }

    /// Settings from a container (the `.bgcode` slicer metadata block): the file's configuration.
    pub fn add_settings(&mut self, settings: impl Iterator<Item = (String, String)>) {
        let before = self.summary.settings.len();
        self.summary.settings.extend(settings);
        self.config_block |= self.summary.settings.len() > before;
    }

    /// Finishes file-level facts that need the whole file.
    /// Z values for rows already resolved (file rows `start..end`, 0-based) whose layer learned
    /// its Z only later; `gcode::fill_layer_z` writes them into the batches.
    pub fn take_z_fills(&mut self) -> Vec<(u64, u64, f64)> {
        std::mem::take(&mut self.z_fills)
    }

    /// The file row where the current layer started, while that layer still waits for its Z
    /// (its rows so far have none yet).
    pub fn layer_waiting_for_z(&self) -> Option<u64> {
        self.z_pending.then_some(self.layer_first_row)
    }

    pub fn finish(&mut self) {
        if !self.cura_settings.is_empty() {
            let settings = crate::slicer::meta::cura_settings(&self.cura_settings);
            self.config_block |= !settings.is_empty();
            self.summary.settings.extend(settings);
        }
        if !self.config_block {
            let after = self.summary.layers.last().map_or(0, |l| l.first_line);
            let loose = std::mem::take(&mut self.loose_settings);
            self.summary.settings.extend(loose.into_iter().filter(|(line, _)| *line > after).map(|(_, kv)| kv));
        }
        self.summary.layer_source = self.source.name();
        self.summary.rows = self.rows_done;
    }
}

#[cfg(test)]
mod tests {

    use crate::gcode::{parse, Options, Source};

    fn objects(text: &str, chunk_bytes: usize) -> Vec<Option<String>> {
        let source = Source::from_bytes(text.as_bytes().to_vec(), "t").unwrap();
        let parsed = parse(&source, &Options { threads: 1, chunk_bytes, ..Options::default() });
        let names = &parsed.context.objects.values;
        parsed
            .batches
            .iter()
            .flat_map(|b| b.context.object.values.iter())
            .map(|&o| (o >= 0).then(|| String::from_utf8(names[o as usize].clone()).unwrap()))
            .collect()
    }

    #[test]
    fn m486_names_and_numbers_the_same_in_any_piece_size() {
        let text = "M486 S0\nM486 ACube\nG1 X1\nM486 S-1\nM486 S1\nG1 X2\nM486 S0\nG1 X3\n";
        let expected: Vec<Option<String>> =
            [None, Some("Cube"), Some("Cube"), None, None, Some("1"), Some("Cube"), Some("Cube")]
                .iter()
                .map(|o| o.map(str::to_string))
                .collect();
        for chunk in [1, 5, 1 << 20] {
            assert_eq!(objects(text, chunk), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn comment_objects_take_the_m486_ids() {
        let text = "; printing object box id:0 copy 0\nM486 S0\nG1 X1\n; stop printing object box id:0 copy 0\nM486 S-1\nM486 S0\n";
        let o = objects(text, 1 << 20);
        assert_eq!(o[1].as_deref(), Some("box id:0 copy 0"));
        assert_eq!(o[4], None);
        assert_eq!(o[5].as_deref(), Some("box id:0 copy 0"));
    }

    #[test]
    fn set_bits_equals_a_bit_loop() {
        for start in 0..200 {
            for end in start..200 {
                let mut bits = vec![0u64; 4];
                super::set_bits(&mut bits, start, end);
                let expected: Vec<u64> =
                    (0..4).map(|w| (0..64).filter(|b| (start..end).contains(&(w * 64 + b))).fold(0, |m, b| m | 1 << b)).collect();
                assert_eq!(bits, expected, "{start}..{end}");
            }
        }
    }
}
