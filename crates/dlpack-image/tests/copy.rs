//! `copy_image`, the one import that copies: every layout a view refuses,
//! compared with a slow reference that reads each subpixel by its strides.

use dlpack_core::export::Export;
use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::tensor::{Flags, TensorView};
use dlpack_image::consumer::{copy_image, image_view};
use image::{Luma, Rgb};

/// Subpixel `(y, x, c)` of a tensor over `data` whose first element is
/// `first`, read by the strides.
fn reference(data: &[u16], first: i64, strides: [i64; 3], y: i64, x: i64, c: i64) -> u16 {
    data[(first + y * strides[0] + x * strides[1] + c * strides[2]) as usize]
}

#[test]
fn every_layout_is_copied_in_hwc_order() {
    let mut data: Vec<u16> = (0..64).map(|i| 100 + i).collect();
    // (strides, first element): 2 x 3 RGB views of `data`.
    for (strides, first) in [
        ([9, 3, 1], 0),     // compact (one memcpy)
        ([3, 1, 6], 0),     // channel-first memory (CHW) read as HWC
        ([12, 3, 1], 5),    // a crop of a wider image
        ([-9, 3, 1], 9),    // flipped vertically
        ([9, -3, 1], 6),    // mirrored
        ([0, 3, 1], 0),     // one row broadcast
        ([0, 0, 1], 2),     // one pixel broadcast
        ([20, 6, 2], 1),    // every other subpixel
        ([-1, -2, -6], 63), // everything reversed, channel-first
    ] {
        let mut shape = [2i64, 3, 3];
        let mut strides_buf = strides;
        let raw = DLTensor {
            data: data.as_mut_ptr().cast(),
            device: DLDevice::cpu(),
            ndim: 3,
            dtype: DLDataType::U16,
            shape: shape.as_mut_ptr(),
            strides: strides_buf.as_mut_ptr(),
            byte_offset: first as u64 * 2,
        };
        // SAFETY: every case stays inside `data`.
        let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
        let img = copy_image::<Rgb<u16>>(&view).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        for (x, y, pixel) in img.enumerate_pixels() {
            let expected: [u16; 3] = std::array::from_fn(|c| {
                reference(&data, first, strides, i64::from(y), i64::from(x), c as i64)
            });
            assert_eq!(pixel.0, expected, "{strides:?} at ({x}, {y})");
        }
        assert_ne!(img.as_ptr(), data.as_ptr(), "a copy shares no memory");
    }
}

#[test]
fn rank_2_luma_is_copied_too() {
    let t = Export::new((0u8..12).collect::<Vec<_>>())
        .shape(&[3, 2])
        .strides(&[4, 1])
        .versioned()
        .unwrap();
    assert!(image_view::<Luma<u8>>(&t.view()).is_err());
    let img = copy_image::<Luma<u8>>(&t.view()).unwrap();
    assert_eq!(img.as_raw(), &[0, 1, 4, 5, 8, 9]);
}

#[test]
fn a_compact_copy_equals_the_view() {
    let t = Export::new((0..24).map(|i| i as f32).collect::<Vec<_>>())
        .shape(&[2, 4, 3])
        .versioned()
        .unwrap();
    let view = image_view::<Rgb<f32>>(&t.view()).unwrap();
    let copy = copy_image::<Rgb<f32>>(&t.view()).unwrap();
    assert_eq!(copy.as_raw().as_slice(), *view.as_raw());
    assert_ne!(copy.as_ptr(), view.as_ptr());
}
