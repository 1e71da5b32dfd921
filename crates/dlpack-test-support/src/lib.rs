//! Test support shared by the workspace's crates (not published).
//!
//! [`Counting`] is a global allocator that counts the allocations and frees
//! of the current thread, so that a test can hold a conversion to the heap
//! work it promises (an export is one allocation, a view none) while the
//! test harness's other threads allocate as they like. A test file makes it
//! the global allocator and measures with [`counted`]:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: dlpack_test_support::Counting = dlpack_test_support::Counting;
//!
//! let (v, allocs, frees) = dlpack_test_support::counted(|| vec![1u8; 4]);
//! assert_eq!((allocs, frees), (1, 0));
//! ```
//!
//! (The example is not run: a doctest cannot choose its global allocator
//! after the fact, and without [`Counting`] installed every count is 0.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to [`System`] and counts the current thread's allocations and
/// frees (a reallocation counts as one of each, as `GlobalAlloc`'s default
/// `realloc` does both).
#[derive(Debug)]
pub struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static FREES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator with the caller's arguments; the
// counters are thread-local cells (`try_with`: no allocation, and no panic
// while the thread's locals are being destroyed).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = FREES.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The allocations and frees made so far on this thread.
pub fn counts() -> (usize, usize) {
    (ALLOCS.with(Cell::get), FREES.with(Cell::get))
}

/// Runs `f`; returns its result and the allocations and frees it made on
/// this thread (all 0 unless [`Counting`] is the global allocator).
pub fn counted<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    let (a0, f0) = counts();
    let out = f();
    let (a1, f1) = counts();
    (out, a1 - a0, f1 - f0)
}

/// Python for the adapters' `tests/python.rs` (feature `python`): CPython is
/// embedded by the test crate (pyo3's `auto-initialize`), with NumPy bound
/// as `np` and PyTorch as `torch` in every scope these make.
#[cfg(feature = "python")]
pub mod python {
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    /// A scope with `np`, `torch` and `locals` bound.
    fn scope<'py>(py: Python<'py>, locals: &[(&str, &Bound<'py, PyAny>)]) -> Bound<'py, PyDict> {
        let scope = PyDict::new(py);
        scope.set_item("np", py.import("numpy").unwrap()).unwrap();
        scope
            .set_item("torch", py.import("torch").unwrap())
            .unwrap();
        for (name, value) in locals {
            scope.set_item(name, value).unwrap();
        }
        scope
    }

    /// Evaluates `expr` with `locals` bound; panics with the expression and
    /// the Python error if it raises.
    pub fn eval_with<'py>(
        py: Python<'py>,
        expr: &str,
        locals: &[(&str, &Bound<'py, PyAny>)],
    ) -> Bound<'py, PyAny> {
        let code = std::ffi::CString::new(expr).unwrap();
        py.eval(&code, Some(&scope(py, locals)), None)
            .unwrap_or_else(|err| panic!("{expr}: {err}"))
    }

    /// Evaluates `expr` with `x` bound to `x`.
    pub fn eval<'py>(py: Python<'py>, expr: &str, x: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
        eval_with(py, expr, &[("x", x)])
    }

    /// Runs `code`, which binds `x`, and returns `x`.
    pub fn make<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyAny> {
        let scope = scope(py, &[]);
        let source = std::ffi::CString::new(code).unwrap();
        py.run(&source, Some(&scope), None)
            .unwrap_or_else(|err| panic!("{code}: {err}"));
        scope.get_item("x").unwrap().unwrap()
    }
}
