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
    /// Renames entry `id` (a placeholder such as an object number that later gets its name);
    /// returns the id that now holds `name`.
    pub fn rename(&mut self, id: i32, name: &[u8]) -> i32 {
        if let Some(&existing) = self.index.get(name) {
            return existing;
        }
        let old = std::mem::replace(&mut self.values[id as usize], name.to_vec());
        self.index.remove(&old);
        self.index.insert(name.to_vec(), id);
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
}

/// Classic commands (`G1`, `M104`, `T0`) are interned through a direct table first:
/// the hash map is only consulted for dotted and out-of-range numbers.
#[derive(Debug, Clone)]
pub struct CommandDict {
    pub dict: Dict,
    fast: Vec<i32>, // (letter slot, number) -> id, -1 unknown
}

const FAST_NUMBERS: usize = 1024;

impl Default for CommandDict {
    fn default() -> Self {
        CommandDict { dict: Dict::default(), fast: vec![-1; 3 * FAST_NUMBERS] }
    }
}

impl CommandDict {
    /// `letter` is upper case; `number` is the integer part when the command has no fraction.
    #[inline]
    pub fn classic(&mut self, letter: u8, int: Option<u64>, text: &[u8]) -> i32 {
        let slot = match letter {
            b'G' => 0,
            b'M' => 1,
            b'T' => 2,
            _ => usize::MAX,
        };
        if let (true, Some(n)) = (slot != usize::MAX, int) {
            if (n as usize) < FAST_NUMBERS {
                let k = slot * FAST_NUMBERS + n as usize;
                let id = self.fast[k];
                if id >= 0 {
                    return id;
                }
                let id = self.dict.intern(text);
                self.fast[k] = id;
                return id;
            }
        }
        self.dict.intern(text)
    }
}
