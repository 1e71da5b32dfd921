//! The owner of an export is released exactly once, on every path.
//!
//! The owner is an `ArcArray` clone; two more clones watch its reference
//! count through `is_unique`: with watchers `w1`, `w2` and the export, the
//! data has three holders. After the tensor is gone, `w1` must not be unique
//! while `w2` lives (else the owner was released twice) and must be unique
//! once `w2` is dropped (else it was never released). Owned `Array` exports
//! are covered by miri's leak and double-free checks in the other tests.

use dlpack_core::managed::{AnyManagedTensor, ManagedTensor, ManagedTensorVersioned};
use dlpack_ndarray::export::ArrayExport;
use dlpack_ndarray::{AsArray, IntoDlpack};
use ndarray::{ArcArray2, Ix2, s};

fn check_released_once(consume: impl FnOnce(ArcArray2<f32>)) {
    let w1 = ArcArray2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32);
    let w2 = w1.clone();
    consume(w1.clone());
    assert!(!w1.is_unique(), "the owner was released twice");
    drop(w2);
    assert!(w1.is_unique(), "the owner was never released");
}

#[test]
fn dropped_unconsumed() {
    check_released_once(|a| drop(a.into_dlpack_versioned().unwrap()));
    check_released_once(|a| {
        let t = ArrayExport::new(a)
            .select(|v| v.slice_move(s![..;-1, 1..]))
            .versioned()
            .unwrap();
        assert_eq!(t.as_array::<f32, Ix2>().unwrap()[[0, 0]], 9.0);
    });
}

#[test]
fn raw_then_from_raw_then_dropped() {
    check_released_once(|a| {
        let raw = a.into_dlpack_versioned().unwrap().into_raw();
        // SAFETY: exported above, consumed once.
        let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
        assert_eq!(t.as_array::<f32, Ix2>().unwrap()[[2, 3]], 11.0);
    });
}

#[test]
fn raw_deleter_called_directly() {
    check_released_once(|a| {
        let raw = a.into_dlpack_versioned().unwrap().into_raw();
        // A C consumer calls the deleter itself.
        // SAFETY: `raw` is owned here; its deleter is called once.
        unsafe { ((*raw).deleter.unwrap())(raw) };
    });
}

#[test]
fn legacy_paths() {
    // A unique ArcArray can travel as legacy (it is writable).
    let w = ArcArray2::<u8>::zeros((2, 2));
    let raw = ArrayExport::new(w).legacy().unwrap().into_raw();
    // SAFETY: exported above, consumed once.
    let t = AnyManagedTensor::from(unsafe { ManagedTensor::from_raw(raw) }.unwrap());
    assert_eq!(t.as_array::<u8, Ix2>().unwrap().sum(), 0);
    drop(t);
    // Shared ones are refused, and the refusal releases the owner.
    check_released_once(|a| {
        assert!(a.into_dlpack_legacy().is_err());
    });
}

#[test]
fn dropped_on_another_thread() {
    check_released_once(|a| {
        let t = a.into_dlpack_versioned().unwrap();
        std::thread::spawn(move || drop(t)).join().unwrap();
    });
}
