//! Who keeps the memory alive, and that it is released exactly once: the
//! producer's owner counts its drops (the deleter releasing it).

#![allow(deprecated)] // burn 0.22 deprecates its ndarray backend for burn-flex

use std::sync::atomic::AtomicUsize;
use std::thread;

use burn_std::{TensorData, Writer};
use burn_tensor::{Device, Float, Tensor};
use dlpack_burn::IntoBurn;
use dlpack_burn::consumer::into_tensor;
use dlpack_core::export::Export;
use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};

mod common;
use common::{Counted, count};

/// A fresh export of 0..12 as a 3 x 4 f32 tensor, and its release counter.
fn exported(read_only: bool) -> (ManagedTensorVersioned, std::sync::Arc<AtomicUsize>) {
    let (owner, drops) = Counted::new((0..12).map(|i| i as f32).collect::<Vec<_>>());
    let t = Export::new(owner)
        .shape(&[3, 4])
        .read_only(read_only)
        .versioned()
        .unwrap();
    (t, drops)
}

#[test]
fn data_dropped_releases_once() {
    let (t, drops) = exported(false);
    let data = t.into_tensor_data().unwrap();
    assert_eq!(count(&drops), 0);
    drop(data);
    assert_eq!(count(&drops), 1);
}

#[test]
fn clones_share_the_tensor_and_the_last_releases() {
    let (t, drops) = exported(true);
    let data = t.into_tensor_data().unwrap();
    let clone = data.clone();
    assert_eq!(
        clone.bytes().as_ptr(),
        data.bytes().as_ptr(),
        "a clone shares"
    );
    drop(data);
    assert_eq!(count(&drops), 0, "released while a clone holds it");
    assert_eq!(clone.as_slice::<f32>().unwrap()[11], 11.0);
    drop(clone);
    assert_eq!(count(&drops), 1);
}

#[test]
fn refused_import_releases_once() {
    let (owner, drops) = Counted::new(vec![0u8; 6]);
    let t = Export::new(owner)
        .shape(&[2, 3])
        .strides(&[1, 2])
        .versioned()
        .unwrap();
    assert!(t.into_tensor_data().is_err());
    assert_eq!(count(&drops), 1);
}

#[test]
fn tensor_outlives_the_data_and_the_producer() {
    let device = Device::ndarray();
    let (t, drops) = exported(false);
    let tensor: Tensor<2, Float> = into_tensor(t, &device).unwrap();
    // Every Rust handle of the producer is gone; the burn tensor alone
    // holds the memory, across a thread.
    let tensor = thread::spawn(move || {
        let sum = tensor.clone().sum().into_scalar::<f32>();
        assert_eq!(sum, 66.0);
        tensor
    })
    .join()
    .unwrap();
    assert_eq!(count(&drops), 0);
    let shifted = tensor.clone() + 1.0; // a new buffer: burn never writes borrowed memory
    assert_eq!(count(&drops), 0);
    drop(tensor);
    assert_eq!(
        count(&drops),
        1,
        "the last tensor over the memory released it"
    );
    assert_eq!(shifted.sum().into_scalar::<f32>(), 78.0);
}

#[test]
fn released_on_another_thread() {
    let (t, drops) = exported(false);
    let data = t.into_tensor_data().unwrap();
    thread::spawn(move || drop(data)).join().unwrap();
    assert_eq!(count(&drops), 1);
}

#[test]
fn source_dropped_before_the_consumer_reads() {
    // The producer's TensorData is gone; only the raw pointer a C consumer
    // holds keeps the bytes.
    let data = TensorData::new((0..64u16).collect::<Vec<_>>(), [8, 8]);
    let raw = dlpack_burn::IntoDlpack::into_dlpack_versioned(data)
        .unwrap()
        .into_raw();
    // Churn the allocator: freed bytes would likely be reused here.
    let noise: Vec<Vec<u16>> = (0..64).map(|i| vec![0xDEAD; 64 + i]).collect();
    // SAFETY: exported above, consumed once.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    assert!(
        t.view()
            .as_slice::<u16>()
            .unwrap()
            .iter()
            .copied()
            .eq(0..64)
    );
    drop(noise);
}

#[test]
fn writes_go_in_place_only_to_writable_unshared_memory() {
    // Writable and held alone: burn writes the producer's memory.
    let (t, drops) = exported(false);
    let address = t.view().data_ptr().cast_const();
    let mut data = t.into_tensor_data().unwrap();
    data.as_mut_slice::<f32>().unwrap()[0] = 42.0;
    assert_eq!(data.bytes().as_ptr(), address, "written in place");

    // Shared with a clone: the write copies, the clone keeps the old value.
    let clone = data.clone();
    data.as_mut_slice::<f32>().unwrap()[1] = 43.0;
    assert_ne!(data.bytes().as_ptr(), address, "copied on write");
    assert_eq!(clone.as_slice::<f32>().unwrap()[..2], [42.0, 1.0]);
    assert_eq!(count(&drops), 0, "the clone still holds the tensor");
    drop(clone);
    assert_eq!(
        count(&drops),
        1,
        "the clone was the last holder (data holds its copy)"
    );
    drop(data);
    assert_eq!(count(&drops), 1);

    // Read-only: a no-copy write is refused, a plain write copies.
    let (t, drops) = exported(true);
    let address = t.view().data_ptr().cast_const();
    let (mut bytes, _, _) = t.into_tensor_data().unwrap().into_parts();
    assert!(bytes.write(Writer::new().no_copy()).is_err());
    bytes.write(Writer::new()).unwrap()[0] = 7;
    assert_ne!(bytes.as_ptr(), address);
    assert_eq!(count(&drops), 1, "the copy released the read-only tensor");
    drop(bytes);
    assert_eq!(count(&drops), 1);
}

#[test]
fn legacy_tensors_are_read_only_and_released_once() {
    let (owner, drops) = Counted::new(vec![1i32, 2, 3]);
    let raw = Export::new(owner).legacy().unwrap().into_raw();
    // SAFETY: exported above, consumed once.
    let t = unsafe { ManagedTensor::from_raw(raw) }.unwrap();
    let address = t.view().data_ptr().cast_const();
    let (mut bytes, _, _) = t.into_tensor_data().unwrap().into_parts();
    assert_eq!(bytes.as_ptr(), address);
    // A legacy tensor cannot say it is writable: no in-place write.
    assert!(bytes.write(Writer::new().no_copy()).is_err());
    drop(bytes);
    assert_eq!(count(&drops), 1);
}
