//! The heap work of an export: the core's one block, nothing else (candle's
//! layout is read in place; the owner is a reference count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use candle_core::{Device, Tensor};

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = COUNT.with(Cell::get);
    f();
    COUNT.with(Cell::get) - before
}

#[test]
fn an_export_is_one_allocation() {
    let t = Tensor::arange(0f32, 24., &Device::Cpu)
        .unwrap()
        .reshape((2, 3, 4))
        .unwrap();
    let views = [
        t.clone(),
        t.permute((2, 0, 1)).unwrap(),
        t.narrow(2, 1, 2).unwrap(),
    ];
    for v in &views {
        let n = allocations(|| drop(dlpack_candle::export(v).unwrap()));
        assert_eq!(n, 1, "{:?}", v.layout());
    }
}
