//! Every refusal of the import, on hand-built C structs as a foreign
//! producer would send them: a typed error that carries the refused value,
//! a message that names it, and the deleter run exactly once.

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use dlpack_core::ffi::{
    DLDataType, DLDevice, DLDeviceType, DLManagedTensor, DLManagedTensorVersioned,
    DLPACK_FLAG_BITMASK_READ_ONLY, DLPackVersion, DLTensor,
};
use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};
use dlpack_core::tensor::{Access, Flags, TensorView};
use dlpack_core::{Error as CoreError, ErrorKind};
use dlpack_image::consumer::{copy_image, image_view, image_view_mut, into_image};
use dlpack_image::{AsImage, Error};
use image::{Luma, LumaA, Pixel, Rgb, Rgba};

/// A descriptor over `data` with the given dtype, shape and strides.
fn tensor<T>(
    data: *mut T,
    dtype: DLDataType,
    shape: &mut [i64],
    strides: Option<&mut [i64]>,
) -> DLTensor {
    DLTensor {
        data: data.cast(),
        device: DLDevice::cpu(),
        ndim: shape.len() as i32,
        dtype,
        shape: shape.as_mut_ptr(),
        strides: strides.map_or(ptr::null_mut(), |s| s.as_mut_ptr()),
        byte_offset: 0,
    }
}

/// The error of viewing `raw` as an image of `P`, with the checks that
/// every refusal has: kind as given, message naming `names`.
fn refused<P>(raw: &DLTensor, kind: ErrorKind, names: &[&str]) -> Error
where
    P: Pixel + std::fmt::Debug,
    P::Subpixel: dlpack_core::Element + std::fmt::Debug,
{
    // SAFETY: the callers' descriptors describe live memory.
    let view = unsafe { TensorView::from_raw(raw, Flags::from_bits(0)) }.unwrap();
    let err = image_view::<P>(&view).unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    let message = err.to_string();
    for name in names {
        assert!(message.contains(name), "{message:?} does not name {name:?}");
    }
    // The copying import refuses the same tensors (it takes any layout, but
    // not another dtype, device, rank or channel count).
    assert_eq!(copy_image::<P>(&view).unwrap_err(), err);
    err
}

#[test]
fn wrong_dtype() {
    let mut data = [0f32; 12];
    let mut shape = [2i64, 2, 3];
    let raw = tensor(data.as_mut_ptr(), DLDataType::F32, &mut shape, None);
    let err = refused::<Rgb<u8>>(&raw, ErrorKind::Type, &["float32", "uint8"]);
    assert_eq!(
        err,
        Error::Tensor(CoreError::DtypeMismatch {
            expected: DLDataType::U8,
            found: DLDataType::F32
        })
    );
    // u16 is not f32 either, even with the same channel count.
    let err = refused::<Rgb<u16>>(&raw, ErrorKind::Type, &[]);
    assert!(matches!(
        err,
        Error::Tensor(CoreError::DtypeMismatch { .. })
    ));
}

#[test]
fn device_memory_is_not_viewed() {
    let mut data = [0u8; 12];
    let mut shape = [2i64, 2, 3];
    let mut raw = tensor(data.as_mut_ptr(), DLDataType::U8, &mut shape, None);
    for device_type in [
        DLDeviceType::kDLCUDA,
        DLDeviceType::kDLROCM,
        DLDeviceType::kDLVulkan,
    ] {
        raw.device = DLDevice {
            device_type,
            device_id: 1,
        };
        let name = format!("{:?}", raw.device);
        let err = refused::<Rgb<u8>>(&raw, ErrorKind::Buffer, &[&name, ", 1)"]);
        assert_eq!(
            err,
            Error::Tensor(CoreError::NotHostAccessible { device: raw.device })
        );
    }
}

#[test]
fn wrong_rank() {
    let mut data = [0u8; 24];
    for shape in [
        &mut [24i64][..],
        &mut [2, 3, 2, 2][..],
        &mut [][..],
        &mut [4, 6][..],
    ] {
        let expected = shape.to_vec();
        let names = format!("{expected:?}");
        let raw = tensor(data.as_mut_ptr(), DLDataType::U8, shape, None);
        let err = refused::<Rgb<u8>>(&raw, ErrorKind::Type, &[&names, "(height, width, 3)"]);
        assert_eq!(
            err,
            Error::Rank {
                shape: expected,
                channels: 3
            }
        );
    }
    // Rank 2 is a one-channel image only.
    let mut shape = [4i64, 6];
    let raw = tensor(data.as_mut_ptr(), DLDataType::U8, &mut shape, None);
    // SAFETY: describes `data`.
    let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
    assert_eq!(image_view::<Luma<u8>>(&view).unwrap().dimensions(), (6, 4));
    let err = refused::<LumaA<u8>>(&raw, ErrorKind::Type, &["[4, 6]", "(height, width, 2)"]);
    assert!(matches!(err, Error::Rank { channels: 2, .. }));
    // ... and rank 1 is not one, even for Luma.
    let mut shape = [24i64];
    let raw = tensor(data.as_mut_ptr(), DLDataType::U8, &mut shape, None);
    let err = refused::<Luma<u8>>(&raw, ErrorKind::Type, &["[24]", "(height, width)"]);
    assert!(matches!(err, Error::Rank { channels: 1, .. }));
}

#[test]
fn wrong_channel_count() {
    let mut data = [0u16; 24];
    type Check = fn(&DLTensor) -> Error;
    let cases: [(i64, Check); 4] = [
        (4, |raw| {
            refused::<Rgb<u16>>(raw, ErrorKind::Type, &["4 channels", "has 3"])
        }),
        (3, |raw| {
            refused::<Rgba<u16>>(raw, ErrorKind::Type, &["3 channels", "has 4"])
        }),
        (2, |raw| {
            refused::<Luma<u16>>(raw, ErrorKind::Type, &["2 channels", "has 1"])
        }),
        (1, |raw| {
            refused::<LumaA<u16>>(raw, ErrorKind::Type, &["1 channels", "has 2"])
        }),
    ];
    for (channels, check) in cases {
        let mut shape = [2i64, 24 / 2 / channels, channels];
        let raw = tensor(data.as_mut_ptr(), DLDataType::U16, &mut shape, None);
        let err = check(&raw);
        assert!(
            matches!(err, Error::Channels { found, .. } if found == channels),
            "{err:?}"
        );
    }
}

#[test]
fn extents_beyond_u32_are_refused() {
    // Stride 0 on every axis: a valid descriptor of one element, whose
    // width no image buffer can count.
    let mut data = [0u8; 1];
    let mut shape = [1i64, 1 << 32, 1];
    let mut strides = [0i64, 0, 0];
    let raw = tensor(
        data.as_mut_ptr(),
        DLDataType::U8,
        &mut shape,
        Some(&mut strides),
    );
    let err = refused::<Luma<u8>>(&raw, ErrorKind::Buffer, &["width", "4294967296"]);
    assert_eq!(
        err,
        Error::TooLarge {
            axis: "width",
            extent: 1 << 32
        }
    );
    let mut shape = [1i64 << 33, 1, 1];
    let raw = tensor(
        data.as_mut_ptr(),
        DLDataType::U8,
        &mut shape,
        Some(&mut strides),
    );
    let err = refused::<Luma<u8>>(&raw, ErrorKind::Buffer, &["height", "8589934592"]);
    assert!(matches!(err, Error::TooLarge { axis: "height", .. }));
}

#[test]
fn misaligned_subpixels() {
    let mut data = [0u16; 7];
    let mut shape = [2i64, 2, 3];
    let mut raw = tensor(data.as_mut_ptr(), DLDataType::U16, &mut shape, None);
    raw.data = data.as_mut_ptr().cast::<u8>().wrapping_add(1).cast();
    raw.byte_offset = 0;
    let err = refused::<Rgb<u16>>(&raw, ErrorKind::Buffer, &["aligned to 2"]);
    assert!(matches!(
        err,
        Error::Tensor(CoreError::Misaligned { align: 2, .. })
    ));
}

/// A view of `data` (2 x 3 RGB, `f32`) with the given strides: layouts an
/// image buffer cannot hold.
fn not_compact(data: &mut [f32], strides: [i64; 3], byte_offset: u64) -> Error {
    let mut shape = [2i64, 3, 3];
    let mut strides = strides;
    let mut raw = tensor(
        data.as_mut_ptr(),
        DLDataType::F32,
        &mut shape,
        Some(&mut strides),
    );
    raw.byte_offset = byte_offset;
    // SAFETY: the callers' strides stay inside `data`.
    let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
    let err = image_view::<Rgb<f32>>(&view).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Buffer);
    let message = err.to_string();
    assert!(message.contains(&format!("{strides:?}")), "{message}");
    assert!(message.contains("[9, 3, 1]"), "{message}");
    assert!(message.contains("copy_image"), "{message}");
    // Mutable views refuse the same.
    // SAFETY: nothing else accesses `data` meanwhile (and nothing is made).
    let mutable = unsafe { image_view_mut::<Rgb<f32>>(&view) };
    assert_eq!(mutable.unwrap_err(), err);
    err
}

#[test]
fn layouts_other_than_compact_hwc_are_refused() {
    let mut data: Vec<f32> = (0..40).map(|i| i as f32).collect();
    for (strides, byte_offset) in [
        ([1, 2, 6], 0),   // channel-first memory (CHW) seen as HWC
        ([12, 3, 1], 0),  // a crop: rows wider than the image
        ([-9, 3, 1], 36), // rows upside down
        ([9, -3, 1], 24), // columns mirrored
        ([0, 3, 1], 0),   // one row broadcast
        ([9, 3, 2], 0),   // every other channel
    ] {
        let err = not_compact(&mut data, strides, byte_offset);
        assert_eq!(
            err,
            Error::NotCompact {
                shape: vec![2, 3, 3],
                strides: strides.to_vec(),
                compact: vec![9, 3, 1]
            }
        );
    }
}

#[test]
fn extent_one_strides_are_not_looked_at() {
    // PyTorch and NumPy write anything as the stride of an axis of extent
    // 1; DLPack says it carries no meaning.
    let mut data = [1u8, 2, 3, 4, 5, 6];
    let mut shape = [1i64, 6, 1];
    let mut strides = [99i64, 1, -7];
    let raw = tensor(
        data.as_mut_ptr(),
        DLDataType::U8,
        &mut shape,
        Some(&mut strides),
    );
    // SAFETY: describes `data`.
    let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
    let img = image_view::<Luma<u8>>(&view).unwrap();
    assert_eq!(img.as_ptr(), data.as_ptr());
    assert_eq!(img.get_pixel(5, 0), &Luma([6]));
}

#[test]
fn size_zero_images_with_null_data_and_wild_strides() {
    let mut shape = [0i64, 5, 3];
    let mut strides = [i64::MAX, -3, 17];
    let raw = tensor(
        ptr::null_mut::<u8>(),
        DLDataType::U8,
        &mut shape,
        Some(&mut strides),
    );
    // SAFETY: size zero: no element is described.
    let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
    assert_eq!(image_view::<Rgb<u8>>(&view).unwrap().dimensions(), (5, 0));
    assert_eq!(copy_image::<Rgb<u8>>(&view).unwrap().dimensions(), (5, 0));
}

// --- Managed tensors built by hand, with a counting deleter ----------------

static VERSIONED_DELETES: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_versioned(_: *mut DLManagedTensorVersioned) {
    VERSIONED_DELETES.fetch_add(1, Ordering::SeqCst);
}

static LEGACY_DELETES: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_legacy(_: *mut DLManagedTensor) {
    LEGACY_DELETES.fetch_add(1, Ordering::SeqCst);
}

fn versioned(dl_tensor: DLTensor, flags: u64) -> DLManagedTensorVersioned {
    DLManagedTensorVersioned {
        version: DLPackVersion::CURRENT,
        manager_ctx: ptr::null_mut(),
        deleter: Some(count_versioned),
        flags,
        dl_tensor,
    }
}

// One test touches the counters, so their counts are this test's.
#[test]
fn managed_refusals_run_the_deleter_once() {
    let mut data = [0u8; 12];
    let mut shape = [2i64, 2, 3];

    // NULL data for a tensor with elements: refused when the handle is made.
    let mut m = versioned(
        tensor(ptr::null_mut::<u8>(), DLDataType::U8, &mut shape, None),
        0,
    );
    // SAFETY: `m` outlives the call; its deleter only counts.
    let err = unsafe { ManagedTensorVersioned::from_raw(&mut m) }.unwrap_err();
    assert_eq!(err, CoreError::NullData { elements: 12 });
    assert!(Error::from(err).to_string().contains("12 elements"));
    assert_eq!(VERSIONED_DELETES.load(Ordering::SeqCst), 1);

    // NULL shape with ndim 3.
    let mut raw = tensor(data.as_mut_ptr(), DLDataType::U8, &mut shape, None);
    raw.shape = ptr::null_mut();
    let mut m = versioned(raw, 0);
    // SAFETY: as above.
    let err = unsafe { ManagedTensorVersioned::from_raw(&mut m) }.unwrap_err();
    assert_eq!(err, CoreError::NullShape { ndim: 3 });
    assert_eq!(VERSIONED_DELETES.load(Ordering::SeqCst), 2);

    // A NULL managed pointer.
    // SAFETY: NULL is allowed and refused.
    let err = unsafe { ManagedTensorVersioned::from_raw(ptr::null_mut()) }.unwrap_err();
    assert_eq!(err, CoreError::NullManagedTensor);

    // A valid tensor of the wrong pixel type: the owned import drops it.
    let mut m = versioned(
        tensor(data.as_mut_ptr(), DLDataType::U8, &mut shape, None),
        0,
    );
    // SAFETY: as above.
    let t = unsafe { ManagedTensorVersioned::from_raw(&mut m) }.unwrap();
    let err = into_image::<Rgba<u8>, _>(t).unwrap_err();
    assert_eq!(
        err,
        Error::Channels {
            expected: 4,
            found: 3
        }
    );
    assert_eq!(VERSIONED_DELETES.load(Ordering::SeqCst), 3);

    // Read-only: viewed, not written, and dropped once.
    let mut m = versioned(
        tensor(data.as_mut_ptr(), DLDataType::U8, &mut shape, None),
        DLPACK_FLAG_BITMASK_READ_ONLY,
    );
    {
        // SAFETY: as above.
        let mut t = unsafe { ManagedTensorVersioned::from_raw(&mut m) }.unwrap();
        let err = t.as_image_mut::<Rgb<u8>>().unwrap_err();
        assert_eq!(
            err,
            Error::NotWritable {
                access: Access::ReadOnly
            }
        );
        assert_eq!(err.kind(), ErrorKind::Buffer);
        assert!(err.to_string().contains("READ_ONLY"));
        assert_eq!(t.as_image::<Rgb<u8>>().unwrap().as_ptr(), data.as_ptr());
    }
    assert_eq!(VERSIONED_DELETES.load(Ordering::SeqCst), 4);

    // Legacy: writability unknown, so no mutable image.
    let mut m = DLManagedTensor {
        dl_tensor: tensor(data.as_mut_ptr(), DLDataType::U8, &mut shape, None),
        manager_ctx: ptr::null_mut(),
        deleter: Some(count_legacy),
    };
    {
        // SAFETY: as above.
        let mut t = unsafe { ManagedTensor::from_raw(&mut m) }.unwrap();
        let err = t.as_image_mut::<Rgb<u8>>().unwrap_err();
        assert_eq!(
            err,
            Error::NotWritable {
                access: Access::Unknown
            }
        );
        assert!(err.to_string().contains("legacy"));
        let err = dlpack_image::consumer::into_image_mut::<Rgb<u8>, _>(t).unwrap_err();
        assert!(matches!(err, Error::NotWritable { .. }));
    }
    assert_eq!(LEGACY_DELETES.load(Ordering::SeqCst), 1);
}
