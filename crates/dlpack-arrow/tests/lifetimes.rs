//! Who outlives whom: the Arrow array dropped before the tensor's consumer,
//! the tensor dropped before the array; an imported array and its slices
//! keep the producer's memory until the last of them is dropped, and the
//! deleter runs exactly once, from any thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::UInt16Array;
use arrow_array::types::UInt16Type;
use dlpack_arrow::ToDlpack;
use dlpack_arrow::consumer::ArrowImport;
use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::DLDevice;

#[test]
fn the_tensor_outlives_the_array_and_the_reverse() {
    let array = UInt16Array::from((0..1000).collect::<Vec<u16>>());
    let t = array.to_dlpack_versioned().unwrap();
    drop(array);
    // The buffer lives in the tensor: read it after the array is gone.
    assert_eq!(t.view().as_slice::<u16>().unwrap()[999], 999);

    let array = UInt16Array::from(vec![5u16; 10]);
    let t = array.to_dlpack_versioned().unwrap();
    drop(t);
    assert_eq!(array.value(9), 5, "the array keeps its own reference");
}

/// Counts the drops of the exported memory.
struct Counted(Vec<u16>, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the Vec's buffer is stable under moves and owned (writable).
unsafe impl TensorOwner for Counted {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.0.as_mut_ptr().cast(),
            len: self.0.len() * 2,
            device: DLDevice::cpu(),
            dtype: Some(dlpack_core::ffi::DLDataType::U16),
            read_only: false,
        }
    }
}

#[test]
fn the_imported_array_owns_the_tensor_until_its_last_slice() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = Export::new(Counted((0..100).collect(), drops.clone()))
        .versioned()
        .unwrap();
    let array = ArrowImport::new(t).primitive::<UInt16Type>().unwrap();
    let slice = array.slice(90, 10);
    drop(array);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the slice still uses it");
    // The last user is dropped on another thread: the deleter runs there,
    // once.
    std::thread::spawn(move || {
        assert_eq!(slice.value(9), 99);
        drop(slice);
    })
    .join()
    .unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refused_import_releases_the_tensor_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = Export::new(Counted(vec![0; 6], drops.clone()))
        .shape(&[2, 3])
        .versioned()
        .unwrap();
    assert!(ArrowImport::new(t).primitive::<UInt16Type>().is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
