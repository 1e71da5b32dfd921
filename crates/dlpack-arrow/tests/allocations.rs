//! The heap work of each conversion, counted: an export is one allocation
//! (the core's block) and no copy; an import is one allocation (the
//! buffer's owner `Arc`) besides Arrow's own `Arc` of the buffer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use arrow_array::Float32Array;
use arrow_array::types::Float32Type;
use dlpack_arrow::ToDlpack;
use dlpack_arrow::consumer::ArrowImport;

/// Counts allocations and frees of the current thread.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static FREES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = FREES.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    let (a0, f0) = (ALLOCS.with(Cell::get), FREES.with(Cell::get));
    let out = f();
    (out, ALLOCS.with(Cell::get) - a0, FREES.with(Cell::get) - f0)
}

#[test]
fn export_is_one_allocation_import_two() {
    let array = Float32Array::from(vec![0.5f32; 1 << 16]);
    let (t, allocs, frees) = counted(|| array.to_dlpack_versioned().unwrap());
    assert_eq!((allocs, frees), (1, 0), "export: the core's block");
    let ((), _, frees) = counted(|| drop(t));
    assert_eq!(
        frees, 1,
        "release: the block (the array still holds the data)"
    );

    let t = array.to_dlpack_versioned().unwrap();
    let (back, allocs, _) = counted(|| ArrowImport::new(t).primitive::<Float32Type>().unwrap());
    assert_eq!(
        allocs, 2,
        "import: the owner Arc and Arrow's Bytes Arc, never the values"
    );
    assert_eq!(back.len(), 1 << 16);
}
