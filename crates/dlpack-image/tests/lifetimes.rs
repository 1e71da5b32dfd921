//! Who keeps the pixels alive, and that they are released exactly once.
//!
//! The source image is an `Arc<[T]>` image; a second `Arc` made before the
//! export watches the count: the pixels are held exactly while some tensor
//! or image holds them, and released once (miri's leak and double-free
//! checks cover the `Vec` and `Box` owners of the other tests). Each test
//! also passes under miri, which would flag any read of freed pixels.

use std::sync::Arc;
use std::thread;

use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};
use dlpack_image::consumer::{TensorImage, into_image};
use dlpack_image::{AsImage, IntoDlpack};
use image::{ImageBuffer, Rgb};

type Pixels = Arc<[u16]>;

/// An export of a 3 x 2 RGB image over fresh pixels; the source
/// `ImageBuffer` and its `Arc` are gone when this returns.
fn exported() -> ManagedTensorVersioned {
    let pixels: Pixels = (0..18u16).collect::<Vec<_>>().into();
    let source = ImageBuffer::<Rgb<u16>, _>::from_raw(3, 2, pixels).unwrap();
    let t = source.into_dlpack_versioned().unwrap();
    assert!(t.flags().is_writable(), "the only holder exports writable");
    t
}

/// Runs `consume` on an export of a fresh shared image; checks that the
/// pixels are alive while `consume` runs (and values intact), and freed
/// once after, counting with a second `Arc` made before the export.
fn check_released_once(consume: impl FnOnce(ManagedTensorVersioned)) {
    let pixels: Pixels = (0..18u16).collect::<Vec<_>>().into();
    let watcher = Arc::clone(&pixels);
    let source = ImageBuffer::<Rgb<u16>, _>::from_raw(3, 2, pixels).unwrap();
    let t = source.into_dlpack_versioned().unwrap();
    assert_eq!(Arc::strong_count(&watcher), 2);
    consume(t);
    assert_eq!(
        Arc::strong_count(&watcher),
        1,
        "the export's pixels were not released exactly once"
    );
    // The watcher's view is intact: nobody wrote into shared pixels.
    assert_eq!(watcher[17], 17);
}

#[test]
fn dropped_unconsumed() {
    check_released_once(drop);
}

#[test]
fn raw_then_from_raw_then_dropped() {
    check_released_once(|t| {
        let raw = t.into_raw();
        // SAFETY: exported, consumed once.
        let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
        assert_eq!(
            t.as_image::<Rgb<u16>>().unwrap().get_pixel(2, 1),
            &Rgb([15, 16, 17])
        );
    });
}

#[test]
fn raw_deleter_called_directly() {
    check_released_once(|t| {
        let raw = t.into_raw();
        // A C consumer calls the deleter itself.
        // SAFETY: `raw` is owned here; its deleter is called once.
        unsafe { ((*raw).deleter.unwrap())(raw) };
    });
}

#[test]
fn owned_image_dropped_on_another_thread() {
    check_released_once(|t| {
        let img = into_image::<Rgb<u16>, _>(t).unwrap();
        thread::spawn(move || {
            assert_eq!(img.get_pixel(0, 1), &Rgb([9, 10, 11]));
            drop(img);
        })
        .join()
        .unwrap();
    });
}

#[test]
fn failed_owned_import_releases_the_tensor() {
    check_released_once(|t| {
        assert!(into_image::<image::Rgba<u16>, _>(t).is_err());
    });
}

#[test]
fn image_handed_back_as_a_tensor() {
    check_released_once(|t| {
        let img = into_image::<Rgb<u16>, _>(t).unwrap();
        let t = img.into_raw().into_tensor();
        let raw = t.into_raw();
        // SAFETY: as above.
        let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
        assert_eq!(t.view().shape(), &[2, 3, 3]);
    });
}

#[test]
fn source_dropped_before_the_consumer_reads() {
    // The producer's image and every Rust handle of it are gone; only the
    // raw pointer a C consumer holds keeps the pixels.
    let t = exported();
    let raw = t.into_raw();
    // Churn the allocator: freed pixels would likely be reused here.
    let noise: Vec<Vec<u16>> = (0..64).map(|i| vec![0xDEAD; 18 + i]).collect();
    // SAFETY: exported, consumed once.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    let img = t.as_image::<Rgb<u16>>().unwrap();
    assert!(img.as_raw().iter().copied().eq(0..18u16));
    drop(noise);
}

/// A consumer that outlives its producer: the function that imported the
/// tensor returns, the image lives on (and crosses a thread) and keeps the
/// pixels alive until it is dropped.
fn load() -> TensorImage<Rgb<u16>> {
    let t = exported();
    into_image::<Rgb<u16>, _>(t).unwrap()
}

#[test]
fn consumer_outlives_the_source() {
    let img = load();
    let img = thread::spawn(move || {
        assert_eq!(img.get_pixel(1, 0), &Rgb([3, 4, 5]));
        img
    })
    .join()
    .unwrap();
    assert!(img.as_raw().iter().copied().eq(0..18u16));
}

#[test]
fn legacy_export_released_once() {
    let pixels: Pixels = (0..18u16).collect::<Vec<_>>().into();
    let watcher = Arc::clone(&pixels);
    let img = ImageBuffer::<Rgb<u16>, _>::from_raw(3, 2, pixels).unwrap();
    // Shared with `watcher`: read-only, which a legacy tensor cannot carry.
    assert!(img.clone().into_dlpack_legacy().is_err());
    assert_eq!(
        Arc::strong_count(&watcher),
        2,
        "the refused export dropped its Arc"
    );
    drop(watcher);
    let raw = img.into_dlpack_legacy().unwrap().into_raw();
    // SAFETY: exported, consumed once.
    let t = unsafe { ManagedTensor::from_raw(raw) }.unwrap();
    let img = into_image::<Rgb<u16>, _>(t).unwrap();
    assert_eq!(img.get_pixel(2, 0), &Rgb([6, 7, 8]));
}
