//! Arrow's C data interface, the exporting side: column buffers owned by Rust are handed to any
//! Arrow implementation (pyarrow imports them) without a copy, and freed when it lets them go.
//! The layout and the release rules are the specification's:
//! <https://arrow.apache.org/docs/format/CDataInterface.html>. Only arrays are exported; the
//! importer supplies the schema (the binding layer passes pyarrow's own).

use std::any::Any;
use std::ffi::c_void;
use std::ptr;

/// `struct ArrowArray`, field for field.
#[repr(C)]
pub struct FfiArray {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub n_buffers: i64,
    pub n_children: i64,
    pub buffers: *mut *const c_void,
    pub children: *mut *mut FfiArray,
    pub dictionary: *mut FfiArray,
    pub release: Option<unsafe extern "C" fn(*mut FfiArray)>,
    pub private_data: *mut c_void,
}

/// A buffer's start and what keeps its memory alive (a `Vec`, or an `Arc` shared by several).
pub struct Buffer {
    ptr: *const c_void,
    owner: Box<dyn Any + Send>,
}

impl Buffer {
    /// The vector's elements; moving it into the owner keeps its heap memory where it is.
    pub fn new<T: Send + 'static>(values: Vec<T>) -> Buffer {
        Buffer { ptr: values.as_ptr().cast(), owner: Box::new(values) }
    }
    /// Memory several arrays read (the zeros under all-null columns).
    pub fn shared<T: Send + Sync + 'static>(values: &std::sync::Arc<Vec<T>>) -> Buffer {
        Buffer { ptr: values.as_ptr().cast(), owner: Box::new(values.clone()) }
    }
}

/// An array to export: its length, null count, buffers in the order its type lays them out
/// (None: an absent validity bitmap, allowed when nothing is null), child arrays, and for a
/// dictionary-encoded array (whose buffers are the indices) the dictionary's values.
pub struct Array {
    pub len: usize,
    pub null_count: usize,
    pub buffers: Vec<Option<Buffer>>,
    pub children: Vec<Array>,
    pub dictionary: Option<Box<Array>>,
}

/// What an exported array owns: the pointer arrays the C struct points into, its children's
/// and dictionary's structs, and its buffers' owners.
struct Private {
    buffers: Vec<*const c_void>,
    children: Vec<*mut FfiArray>,
    dictionary: *mut FfiArray,
    _owners: Vec<Box<dyn Any + Send>>,
}

/// The release callback: frees the children and the dictionary (the producer's job, per the
/// specification), then everything the array owns, and marks it released.
unsafe extern "C" fn release(array: *mut FfiArray) {
    // SAFETY: called by the importer on a struct `Array::export` filled in (or on a move of
    // it), once: the specification forbids calling a released struct's callback.
    unsafe {
        let array = &mut *array;
        let private = Box::from_raw(array.private_data.cast::<Private>());
        let dictionary = (!private.dictionary.is_null()).then_some(private.dictionary);
        for &child in private.children.iter().chain(&dictionary) {
            let mut child = Box::from_raw(child);
            if let Some(release_child) = child.release {
                release_child(&mut *child);
            }
        }
        drop(private);
        array.release = None;
        array.private_data = ptr::null_mut();
    }
}

impl Array {
    /// A struct-typed array of `children` (a record batch's layout), no nulls.
    pub fn record_batch(len: usize, children: Vec<Array>) -> Array {
        Array { len, null_count: 0, buffers: vec![None], children, dictionary: None }
    }

    /// The C struct. Until an importer takes it over, dropping an `Exported` frees it.
    pub fn export(self) -> FfiArray {
        let mut owners = Vec::with_capacity(self.buffers.len());
        let buffers: Vec<*const c_void> = self
            .buffers
            .into_iter()
            .map(|b| match b {
                Some(b) => {
                    owners.push(b.owner);
                    b.ptr
                }
                None => ptr::null(),
            })
            .collect();
        let boxed = |a: Array| Box::into_raw(Box::new(a.export()));
        let children = self.children.into_iter().map(boxed).collect();
        let dictionary = self.dictionary.map_or(ptr::null_mut(), |d| boxed(*d));
        let mut private = Box::new(Private { buffers, children, dictionary, _owners: owners });
        FfiArray {
            length: self.len as i64,
            null_count: self.null_count as i64,
            offset: 0,
            n_buffers: private.buffers.len() as i64,
            n_children: private.children.len() as i64,
            // The vectors' heap memory stays put when the box moves into `private_data`.
            buffers: private.buffers.as_mut_ptr(),
            children: private.children.as_mut_ptr(),
            dictionary,
            release: Some(release),
            private_data: Box::into_raw(private).cast(),
        }
    }
}

/// An exported array at a fixed address, for an importer to move out of (pyarrow's
/// `_import_from_c(address, schema)`); released on drop unless it was. A raw pointer, not a
/// box: the importer writes to the struct (it clears `release`) behind Rust's back.
pub struct Exported(*mut FfiArray);

// SAFETY: the struct owns everything it points to (buffers are `Send` owners), and nothing else
// holds those pointers until an importer takes the struct over.
unsafe impl Send for Exported {}
unsafe impl Sync for Exported {}

impl Exported {
    pub fn new(array: Array) -> Exported {
        Exported(Box::into_raw(Box::new(array.export())))
    }
    pub fn as_ptr(&self) -> *const FfiArray {
        self.0
    }
    pub fn address(&self) -> usize {
        self.0 as usize
    }
    pub fn is_released(&self) -> bool {
        // SAFETY: the struct lives until drop.
        unsafe { (*self.0).release.is_none() }
    }
}

impl Drop for Exported {
    fn drop(&mut self) {
        // SAFETY: allocated by `new`; released only if no importer took it over (that clears
        // `release`).
        unsafe {
            let mut array = Box::from_raw(self.0);
            if let Some(release) = array.release {
                release(&mut *array);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn f64s(values: Vec<f64>) -> Array {
        Array { len: values.len(), null_count: 0, buffers: vec![None, Some(Buffer::new(values))], children: vec![], dictionary: None }
    }

    #[test]
    fn exported_struct_reads_back_and_releases_everything_once() {
        let zeros = Arc::new(vec![0u64; 4]);
        let all_null = Array { len: 3, null_count: 3, buffers: vec![Some(Buffer::shared(&zeros)), Some(Buffer::shared(&zeros))], children: vec![], dictionary: None };
        let batch = Array::record_batch(3, vec![f64s(vec![1.5, -2.0, 3.25]), all_null]);
        let exported = Exported::new(batch);
        assert_eq!(Arc::strong_count(&zeros), 3);
        let c = unsafe { &*exported.0 };
        assert_eq!((c.length, c.null_count, c.n_buffers, c.n_children), (3, 0, 1, 2));
        // SAFETY: reading the struct as an importer would.
        unsafe {
            assert!((*c.buffers).is_null());
            let first = &**c.children;
            assert_eq!((first.length, first.n_buffers, first.n_children), (3, 2, 0));
            let values = std::slice::from_raw_parts(*first.buffers.add(1) as *const f64, 3);
            assert_eq!(values, [1.5, -2.0, 3.25]);
            let second = &**c.children.add(1);
            assert_eq!(second.null_count, 3);
            assert_eq!(*second.buffers as *const u64, zeros.as_ptr());
        }
        // An importer moves the struct out and releases its copy; the original is then inert.
        let mut moved = unsafe { ptr::read(exported.0) };
        unsafe { (*exported.0).release = None };
        assert!(exported.is_released());
        unsafe { (moved.release.unwrap())(&mut moved) };
        assert!(moved.release.is_none());
        assert_eq!(Arc::strong_count(&zeros), 1, "children's buffers freed with the parent");
        drop(exported); // does not release again
    }

    #[test]
    fn dropping_an_unimported_export_frees_it() {
        let zeros = Arc::new(vec![0u64; 2]);
        let col = Array { len: 1, null_count: 1, buffers: vec![Some(Buffer::shared(&zeros)), Some(Buffer::shared(&zeros))], children: vec![], dictionary: None };
        let exported = Exported::new(Array::record_batch(1, vec![col]));
        assert!(!exported.is_released() && exported.address() != 0);
        assert_eq!(Arc::strong_count(&zeros), 3);
        drop(exported);
        assert_eq!(Arc::strong_count(&zeros), 1);
    }

    #[test]
    fn the_dictionary_is_released_with_its_array() {
        let zeros = Arc::new(vec![0u64; 2]);
        let values = Array { len: 2, null_count: 0, buffers: vec![None, Some(Buffer::shared(&zeros))], children: vec![], dictionary: None };
        let indices = Array { len: 1, null_count: 0, buffers: vec![None, Some(Buffer::new(vec![1i32]))], children: vec![], dictionary: Some(Box::new(values)) };
        let exported = Exported::new(Array::record_batch(1, vec![indices]));
        // SAFETY: reading the struct as an importer would.
        let dictionary = unsafe { &*(**(*exported.0).children).dictionary };
        assert_eq!((dictionary.length, dictionary.n_buffers), (2, 2));
        assert_eq!(Arc::strong_count(&zeros), 2);
        drop(exported);
        assert_eq!(Arc::strong_count(&zeros), 1);
    }
}
