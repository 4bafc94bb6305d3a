//! String interning for dictionary-encoded columns (commands, features, objects).

use std::collections::HashMap;

/// Values in first-seen order; ids are their positions.
#[derive(Debug, Clone, Default)]
pub struct Dict {
    pub values: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, i32>,
}

impl Dict {
    #[inline]
    pub fn intern(&mut self, key: &[u8]) -> i32 {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        let id = self.values.len() as i32;
        self.values.push(key.to_vec());
        self.index.insert(key.to_vec(), id);
        id
    }
    pub fn get(&self, key: &[u8]) -> Option<i32> {
        self.index.get(key).copied()
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// The values as text (invalid UTF-8 replaced).
    pub fn strings(&self) -> Vec<String> {
        self.values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }
}

/// Classic commands (`G1`, `M104`, `T0`) are interned through a direct table first:
/// the hash map is only consulted for dotted and out-of-range numbers.
#[derive(Debug, Clone)]
pub struct CommandDict {
    pub dict: Dict,
    /// What the lexer needs to know about each command, by id (see `CommandClass`).
    pub class: Vec<CommandClass>,
    fast: Vec<i32>, // (letter slot, number) -> id, -1 unknown
}

/// How the rest of a line is read once its command is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandClass {
    /// Words (`G1 X1 Y2`); `move_` flags G0-G3, whose words must carry numbers.
    Words { move_: bool },
    /// `M486`: words, but `A` takes the rest of the line as an object name.
    M486,
    /// Free text to the end of the line (`M117 Hello`).
    Text,
    /// Klipper `KEY=VALUE` parameters.
    Extended,
}

/// Commands whose whole argument is free text (`M117 Hello world`), as Marlin reads them.
const TEXT_COMMANDS: [&[u8]; 9] = [b"M23", b"M28", b"M30", b"M32", b"M33", b"M117", b"M118", b"M928", b"M16"];

fn class_of(name: &[u8], extended: bool) -> CommandClass {
    if extended {
        CommandClass::Extended
    } else if TEXT_COMMANDS.contains(&name) {
        CommandClass::Text
    } else if name == b"M486" {
        CommandClass::M486
    } else {
        CommandClass::Words { move_: matches!(name, b"G0" | b"G1" | b"G2" | b"G3") }
    }
}

const FAST_NUMBERS: usize = 1024;

impl Default for CommandDict {
    fn default() -> Self {
        CommandDict { dict: Dict::default(), class: Vec::new(), fast: vec![-1; 3 * FAST_NUMBERS] }
    }
}

impl CommandDict {
    #[inline(always)]
    fn fast_slot(letter: u8, n: u64) -> Option<usize> {
        let slot = match letter {
            b'G' => 0,
            b'M' => 1,
            b'T' => 2,
            _ => return None,
        };
        ((n as usize) < FAST_NUMBERS).then_some(slot * FAST_NUMBERS + n as usize)
    }

    /// The id of `G<n>`/`M<n>`/`T<n>` if it was seen before (no key needs to be built).
    #[inline(always)]
    pub fn lookup(&self, letter: u8, n: u64) -> Option<i32> {
        Self::fast_slot(letter, n).map(|k| self.fast[k]).filter(|&id| id >= 0)
    }

    /// `letter` is upper case; `int` is the number when the command has no fraction; `text` is
    /// the normalized name.
    #[inline]
    pub fn classic(&mut self, letter: u8, int: Option<u64>, text: &[u8]) -> i32 {
        if let Some(n) = int {
            if let Some(k) = Self::fast_slot(letter, n) {
                let id = self.fast[k];
                if id >= 0 {
                    return id;
                }
                let id = self.intern(text, false);
                self.fast[k] = id;
                return id;
            }
        }
        self.intern(text, false)
    }

    /// Interns any command name (`extended` for Klipper-style identifiers).
    pub fn intern(&mut self, name: &[u8], extended: bool) -> i32 {
        let id = self.dict.intern(name);
        if id as usize == self.class.len() {
            self.class.push(class_of(name, extended));
        }
        id
    }
}
