//! The heap work of each conversion, counted: an export is exactly one
//! allocation (the core's block) and its release two frees (the block and
//! the pixels); views and owned images allocate nothing; only `copy_image`
//! allocates a pixel buffer.

use std::sync::Arc;

use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_image::consumer::{copy_image, into_image};
use dlpack_image::{AsImage, IntoDlpack};
use dlpack_test_support::{Counting, counted};
use image::{ImageBuffer, Luma, Rgb, Rgba};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn export_is_one_allocation_and_release_two_frees() {
    let img = ImageBuffer::<Rgb<u8>, _>::from_pixel(8, 4, Rgb([1, 2, 3]));
    let (t, allocs, frees) = counted(|| img.into_dlpack_versioned().unwrap());
    assert_eq!((allocs, frees), (1, 0), "export of a Vec image");
    let raw = t.into_raw();
    // SAFETY: the deleter of our own export, called once as a consumer would.
    let ((), allocs, frees) = counted(|| unsafe { ((*raw).deleter.unwrap())(raw) });
    assert_eq!((allocs, frees), (0, 2), "release: the block and the pixels");

    let pixels: Arc<[f32]> = vec![0.5f32; 4 * 4].into();
    let img = ImageBuffer::<Rgba<f32>, _>::from_raw(2, 2, pixels).unwrap();
    let (t, allocs, _) = counted(|| img.into_dlpack_legacy().unwrap());
    assert_eq!(allocs, 1, "export of an Arc image");
    let ((), _, frees) = counted(|| drop(t));
    assert_eq!(frees, 2, "release: the block and the last Arc");
}

#[test]
fn imports_allocate_nothing_but_a_copy() {
    let img = ImageBuffer::<Luma<u16>, _>::from_pixel(5, 3, Luma([9]));
    let raw = img.into_dlpack_versioned().unwrap().into_raw();
    let (t, allocs, _) = counted(|| {
        // SAFETY: exported above, consumed once.
        unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap()
    });
    assert_eq!(allocs, 0, "taking ownership");
    let (width, allocs, _) = counted(|| t.as_image::<Luma<u16>>().unwrap().width());
    assert_eq!((width, allocs), (5, 0), "a view");
    let (copy, allocs, _) = counted(|| copy_image::<Luma<u16>>(&t.view()).unwrap());
    assert_eq!((copy.width(), allocs), (5, 1), "a copy: its pixel buffer");
    let (owned, allocs, _) = counted(|| into_image::<Luma<u16>, _>(t).unwrap());
    assert_eq!(
        (owned.height(), allocs),
        (3, 0),
        "an image owning the tensor"
    );
    let ((), _, frees) = counted(|| drop(owned));
    assert_eq!(frees, 2, "dropping it releases the export");
}
