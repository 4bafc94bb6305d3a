//! A parsed batch as an Arrow record batch for the C data interface: the column buffers move
//! into the exported arrays as they are, with no copy, and the dictionary columns carry their
//! dictionaries (shared by every batch of a parse), so the importer has nothing left to do.

use std::sync::Arc;

use super::columns::{Bitmap, F64Col, IdCol, StrCol};
use super::lexer::ParamCol;
use super::{Batch, Context, WORD_COLUMNS};
use crate::arrow_c::{Array, Buffer};
use crate::slicer::roles::role_of;

/// The exported columns in order (threedpai.gcode checks its schema against this list).
pub fn column_names() -> Vec<String> {
    let head = ["line", "offset", "command", "n", "checksum_ok"].map(String::from);
    let words = WORD_COLUMNS.iter().map(|&c| (c as char).to_string());
    let tail = ["params", "text", "comment", "layer", "z", "feature", "role", "object", "width", "height"].map(String::from);
    head.into_iter().chain(words).chain(tail).collect()
}

/// A dictionary's values as string buffers that every batch's array points at.
#[derive(Clone)]
pub struct Strings {
    len: usize,
    offsets: Arc<Vec<i32>>,
    data: Arc<Vec<u8>>,
}

impl Strings {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Strings {
        let (mut offsets, mut data) = (vec![0i32], Vec::new());
        for v in values {
            data.extend_from_slice(v.as_bytes());
            offsets.push(data.len() as i32);
        }
        Strings { len: offsets.len() - 1, offsets: Arc::new(offsets), data: Arc::new(data) }
    }
    fn array(&self) -> Array {
        let buffers = vec![None, Some(Buffer::shared(&self.offsets)), Some(Buffer::shared(&self.data))];
        Array { len: self.len, null_count: 0, buffers, children: vec![], dictionary: None }
    }
}

/// The values behind the `command`, `feature`, `role` and `object` indices.
pub struct Dictionaries {
    commands: Strings,
    features: Strings,
    roles: Strings,
    objects: Strings,
}

impl Dictionaries {
    /// The context's dictionaries (as they stand, for a stream); `role`'s are the features' roles.
    pub fn of(ctx: &Context) -> Dictionaries {
        let features = ctx.features.strings();
        Dictionaries {
            commands: Strings::new(ctx.commands.strings().iter().map(String::as_str)),
            roles: Strings::new(features.iter().map(|f| role_of(f))),
            features: Strings::new(features.iter().map(String::as_str)),
            objects: Strings::new(ctx.objects.strings().iter().map(String::as_str)),
        }
    }
}

/// Zeros enough for every buffer of an all-null column of `rows` rows (values, validity,
/// offsets): one allocation serves every such column of a parse.
pub fn zeros(rows: usize) -> Arc<Vec<u64>> {
    Arc::new(vec![0; rows + 1])
}

/// `b` as a struct array of the columns `column_names` lists; `zeros` from `zeros(n)` with
/// `n >=` `b`'s rows.
pub fn batch_array(b: Batch, dicts: &Dictionaries, zeros: &Arc<Vec<u64>>) -> Array {
    let (lx, cx) = (b.lexed, b.context);
    let rows = lx.rows;
    assert!(zeros.len() > rows, "zeros for {} rows, batch of {rows}", zeros.len() - 1);
    let all_null = || Array { len: rows, null_count: rows, buffers: vec![Some(Buffer::shared(zeros)), Some(Buffer::shared(zeros))], children: vec![], dictionary: None };
    let f64s = |c: F64Col| if c.is_all_null() { all_null() } else { primitive(c.values, c.valid) };
    let string = |c: StrCol| {
        let (rows, nulls) = (c.valid.len, c.valid.null_count());
        let offsets = if c.is_all_null() { Buffer::shared(zeros) } else { Buffer::new(c.offsets) };
        let buffers = vec![validity(c.valid, nulls), Some(offsets), Some(Buffer::new(c.data))];
        Array { len: rows, null_count: nulls, buffers, children: vec![], dictionary: None }
    };
    let mut columns = vec![
        plain(cx.line),
        plain(lx.offset),
        indices(primitive(lx.command, lx.command_valid), &dicts.commands),
        if lx.n.is_empty() { all_null() } else { primitive(lx.n, lx.n_valid) },
        {
            let nulls = lx.checksum_valid.null_count();
            let buffers = vec![validity(lx.checksum_valid, nulls), Some(Buffer::new(lx.checksum_ok.bytes))];
            Array { len: rows, null_count: nulls, buffers, children: vec![], dictionary: None }
        },
    ];
    columns.extend(lx.words.into_iter().map(f64s));
    columns.push(params(lx.params, zeros, string));
    columns.push(string(lx.text));
    columns.push(string(lx.comment));
    columns.push(primitive(cx.layer.values, cx.layer.valid));
    columns.push(f64s(cx.z));
    // `feature` and `role` share one index buffer; only their dictionaries differ.
    let feature = shared_ids(cx.feature);
    columns.push(indices(feature(), &dicts.features));
    columns.push(indices(feature(), &dicts.roles));
    columns.push(indices(primitive(cx.object.values, cx.object.valid), &dicts.objects));
    columns.push(f64s(cx.width));
    columns.push(f64s(cx.height));
    Array::record_batch(rows, columns)
}

fn indices(ids: Array, dictionary: &Strings) -> Array {
    Array { dictionary: Some(Box::new(dictionary.array())), ..ids }
}

/// An id column whose buffers several arrays read.
fn shared_ids(c: IdCol) -> impl Fn() -> Array {
    let nulls = c.valid.null_count();
    let (values, valid) = (Arc::new(c.values), Arc::new(c.valid.bytes));
    move || {
        let buffers = vec![(nulls > 0).then(|| Buffer::shared(&valid)), Some(Buffer::shared(&values))];
        Array { len: values.len(), null_count: nulls, buffers, children: vec![], dictionary: None }
    }
}

/// A map column: offsets into the entries, a struct of key and value strings.
fn params(p: ParamCol, zeros: &Arc<Vec<u64>>, string: impl Fn(StrCol) -> Array) -> Array {
    let (rows, nulls) = (p.valid.len, p.valid.null_count());
    let offsets = if p.offsets.is_empty() { Buffer::shared(zeros) } else { Buffer::new(p.offsets) };
    let entries = Array::record_batch(p.keys.valid.len, vec![string(p.keys), string(p.values)]);
    Array { len: rows, null_count: nulls, buffers: vec![validity(p.valid, nulls), Some(offsets)], children: vec![entries], dictionary: None }
}

/// The validity bitmap, left out when nothing is null (as Arrow allows).
fn validity(b: Bitmap, nulls: usize) -> Option<Buffer> {
    (nulls > 0).then(|| Buffer::new(b.bytes))
}

fn primitive<T: Send + 'static>(values: Vec<T>, valid: Bitmap) -> Array {
    let nulls = valid.null_count();
    Array { len: values.len(), null_count: nulls, buffers: vec![validity(valid, nulls), Some(Buffer::new(values))], children: vec![], dictionary: None }
}

fn plain<T: Send + 'static>(values: Vec<T>) -> Array {
    Array { len: values.len(), null_count: 0, buffers: vec![None, Some(Buffer::new(values))], children: vec![], dictionary: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow_c::Exported;
    use crate::gcode::{parse, Options, Source};

    #[test]
    fn batch_exports_every_column_with_its_rows() {
        let text = b"G1 X1 Y2 ; a\nM117 hi\nSET_VELOCITY_LIMIT ACCEL=5\nG1 Z.3\n".to_vec();
        let parsed = parse(&Source::from_bytes(text, "t").unwrap(), &Options { threads: 1, ..Options::default() });
        let dicts = Dictionaries::of(&parsed.context);
        let b = parsed.batches.into_iter().next().unwrap();
        let rows = b.lexed.rows;
        let exported = Exported::new(batch_array(b, &dicts, &zeros(rows)));
        // SAFETY: reading the exported struct as an importer would.
        let c = unsafe { &*exported.as_ptr() };
        assert_eq!((c.length, c.n_children), (4, column_names().len() as i64));
        let child = |i: usize| unsafe { &**c.children.add(i) };
        let x = column_names().iter().position(|n| n == "X").unwrap();
        let (xs, ys) = (child(x), child(x + 1));
        assert_eq!((xs.length, xs.null_count, ys.null_count), (4, 3, 3));
        let x0 = unsafe { *(*xs.buffers.add(1) as *const f64) };
        assert_eq!(x0, 1.0);
        let params = child(column_names().iter().position(|n| n == "params").unwrap());
        assert_eq!((params.null_count, params.n_children), (3, 1));
        let entries = unsafe { &**params.children };
        assert_eq!((entries.length, entries.n_children), (1, 2));
        let command = child(2);
        let commands = unsafe { &*command.dictionary };
        assert_eq!((command.null_count, commands.length), (0, 3), "G1 M117 SET_VELOCITY_LIMIT G1: three commands");
    }
}
