//! Export of an owned Vec makes exactly one heap allocation (header, shape,
//! strides and owner in one block), and frees exactly one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dlpack_core::export::Export;

/// Counts allocations made by the current thread (so the test harness's
/// other threads do not disturb the count).
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

fn counts() -> (usize, usize) {
    (ALLOCS.with(Cell::get), FREES.with(Cell::get))
}

#[test]
fn export_is_one_allocation() {
    for shape in [
        &[1024i64][..],
        &[4, 8, 8, 4],
        &[],
        &[2, 0, 3],
        &[1, 1, 1, 1, 1, 1, 1, 1, 2],
    ] {
        let n: i64 = shape.iter().product();
        let data = vec![0.5f32; n as usize];
        let (a0, f0) = counts();
        let versioned = Export::new(data).shape(shape).versioned().unwrap();
        let (a1, _) = counts();
        assert_eq!(a1 - a0, 1, "allocations for the export of shape {shape:?}");
        let raw = versioned.into_raw();
        // SAFETY: the deleter of our own export, called once as a consumer would.
        unsafe { ((*raw).deleter.unwrap())(raw) };
        let (a2, f2) = counts();
        assert_eq!(a2, a1, "the deleter allocates nothing");
        let buffers = usize::from(n > 0); // an empty Vec owns no heap buffer
        assert_eq!(
            f2 - f0,
            1 + buffers,
            "the block and the Vec's buffer are freed ({shape:?})"
        );
    }
    let data = vec![1u8; 16];
    let (a0, _) = counts();
    let legacy = Export::new(data)
        .shape(&[4, 4])
        .strides(&[1, 4])
        .legacy()
        .unwrap();
    assert_eq!(counts().0 - a0, 1);
    drop(legacy);
}
