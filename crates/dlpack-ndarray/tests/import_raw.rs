//! Import of hand-built C structs (as a foreign producer would send them),
//! mutability rules and every refusal.

use std::ptr;

use dlpack_core::ffi::{
    DLDataType, DLDevice, DLManagedTensor, DLManagedTensorVersioned, DLPACK_FLAG_BITMASK_READ_ONLY,
    DLPackVersion, DLTensor,
};
use dlpack_core::managed::{AnyManagedTensor, ManagedTensor, ManagedTensorVersioned};
use dlpack_core::tensor::{Flags, TensorView};
use dlpack_core::{Error, ErrorKind};
use dlpack_ndarray::AsArray;
use dlpack_ndarray::import::{array_view, array_view_dyn, array_view_mut};
use ndarray::{Ix0, Ix1, Ix2, Ix3, IxDyn, array};

fn tensor(
    data: *mut f32,
    shape: &mut [i64],
    strides: Option<&mut [i64]>,
    byte_offset: u64,
) -> DLTensor {
    DLTensor {
        data: data.cast(),
        device: DLDevice::cpu(),
        ndim: shape.len() as i32,
        dtype: DLDataType::F32,
        shape: shape.as_mut_ptr(),
        strides: strides.map_or(ptr::null_mut(), |s| s.as_mut_ptr()),
        byte_offset,
    }
}

fn writable() -> Flags {
    Flags::from_bits(0)
}

#[test]
fn negative_strides_with_byte_offset() {
    // 3x4 row-major 0..12; view: rows reversed, columns 3,1 (step -2).
    let mut data: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let mut shape = [3i64, 2];
    let mut strides = [-4i64, -2];
    // First element: row 2, column 3 = element 11 = byte 44.
    let raw = tensor(data.as_mut_ptr(), &mut shape, Some(&mut strides), 44);
    // SAFETY: `raw` describes `data`, all outlive the view.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    let a = array_view::<f32, Ix2>(&view).unwrap();
    assert_eq!(a, array![[11.0, 9.0], [7.0, 5.0], [3.0, 1.0]]);
    assert_eq!(a.strides(), &[-4, -2]);
    assert_eq!(a.as_ptr(), data[11..].as_ptr());
}

#[test]
fn null_strides_are_row_major() {
    let mut data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let mut shape = [2i64, 3, 4];
    let raw = tensor(data.as_mut_ptr(), &mut shape, None, 0);
    // SAFETY: as above.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    let a = array_view::<f32, Ix3>(&view).unwrap();
    assert_eq!(a.strides(), &[12, 4, 1]);
    assert!(a.is_standard_layout());
    assert_eq!(a[[1, 2, 3]], 23.0);
    assert_eq!(a.as_slice().unwrap(), &data[..]);
}

#[test]
fn zero_size_with_null_data_and_wild_strides() {
    let mut shape = [4i64, 0, 3];
    let mut strides = [i64::MIN, 7, i64::MAX];
    let raw = tensor(ptr::null_mut(), &mut shape, Some(&mut strides), 0);
    // SAFETY: size zero: no element is described.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    let a = array_view::<f32, Ix3>(&view).unwrap();
    assert_eq!(a.shape(), &[4, 0, 3]);
    assert_eq!(a.iter().count(), 0);
    // SAFETY: nothing else accesses the (zero) elements.
    let mut m = unsafe { array_view_mut::<f32, IxDyn>(&view) }.unwrap();
    m.fill(1.0);
    assert_eq!(m.len(), 0);
}

#[test]
fn zero_d_with_null_shape_and_strides() {
    let mut value = 42.5f32;
    let raw = DLTensor {
        data: (&raw mut value).cast(),
        device: DLDevice::cpu(),
        ndim: 0,
        dtype: DLDataType::F32,
        shape: ptr::null_mut(),
        strides: ptr::null_mut(),
        byte_offset: 0,
    };
    // SAFETY: describes `value`.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    assert_eq!(array_view::<f32, Ix0>(&view).unwrap()[()], 42.5);
    assert_eq!(array_view_dyn::<f32>(&view).unwrap().ndim(), 0);
    // SAFETY: nothing else accesses `value` while `m` lives.
    let mut m = unsafe { array_view_mut::<f32, Ix0>(&view) }.unwrap();
    m[()] = 1.0;
    assert_eq!(value, 1.0);
}

#[test]
fn extent_one_axes_with_absurd_strides() {
    let mut data = [1.0f32, 2.0, 3.0];
    let mut shape = [1i64, 3, 1];
    let mut strides = [i64::MIN, 1, i64::MAX];
    let raw = tensor(data.as_mut_ptr(), &mut shape, Some(&mut strides), 0);
    // SAFETY: describes `data`.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    let a = array_view::<f32, Ix3>(&view).unwrap();
    assert_eq!(a.strides(), &[0, 1, 0]);
    assert_eq!(a.as_slice().unwrap(), &data);
    // Operations that scale strides stay in range.
    assert_eq!(a.slice(ndarray::s![..;2, ..;2, ..;3]).len(), 2);
}

// --- Managed tensors built by hand, with a counting deleter ----------------

static mut VERSIONED_DELETES: usize = 0;

unsafe extern "C" fn count_versioned(_: *mut DLManagedTensorVersioned) {
    // SAFETY: only the single-threaded test below touches the counter.
    unsafe { VERSIONED_DELETES += 1 };
}

#[test]
fn read_only_versioned_refuses_mut_and_counts_deleter() {
    let mut data = [1.0f32, 2.0, 3.0, 4.0];
    let mut shape = [2i64, 2];
    let mut strides = [1i64, 2];
    let mut managed = DLManagedTensorVersioned {
        version: DLPackVersion::CURRENT,
        manager_ctx: ptr::null_mut(),
        deleter: Some(count_versioned),
        flags: DLPACK_FLAG_BITMASK_READ_ONLY,
        dl_tensor: tensor(data.as_mut_ptr(), &mut shape, Some(&mut strides), 0),
    };
    {
        // SAFETY: the struct outlives the handle; its deleter only counts.
        let mut t = unsafe { ManagedTensorVersioned::from_raw(&mut managed) }.unwrap();
        assert_eq!(t.as_array_mut::<f32, Ix2>().unwrap_err(), Error::ReadOnly);
        // Read-only access is fine; F order comes through.
        assert_eq!(
            t.as_array::<f32, Ix2>().unwrap(),
            array![[1.0, 3.0], [2.0, 4.0]]
        );
    }
    // SAFETY: the test is single-threaded.
    assert_eq!(unsafe { VERSIONED_DELETES }, 1);
}

static mut LEGACY_DELETES: usize = 0;

unsafe extern "C" fn count_legacy(_: *mut DLManagedTensor) {
    // SAFETY: only the test below touches the counter.
    unsafe { LEGACY_DELETES += 1 };
}

#[test]
fn legacy_refuses_mut() {
    let mut data = [1u8, 2, 3];
    let mut shape = [3i64];
    let mut managed = DLManagedTensor {
        dl_tensor: DLTensor {
            data: data.as_mut_ptr().cast(),
            device: DLDevice::cpu(),
            ndim: 1,
            dtype: DLDataType::U8,
            shape: shape.as_mut_ptr(),
            strides: ptr::null_mut(),
            byte_offset: 0,
        },
        manager_ctx: ptr::null_mut(),
        deleter: Some(count_legacy),
    };
    {
        // SAFETY: as above.
        let mut t =
            AnyManagedTensor::from(unsafe { ManagedTensor::from_raw(&mut managed) }.unwrap());
        let err = t.as_array_mut::<u8, Ix1>().unwrap_err();
        assert_eq!(err, Error::ReadOnly);
        assert_eq!(err.kind(), ErrorKind::Buffer);
        assert_eq!(t.as_array::<u8, Ix1>().unwrap(), array![1, 2, 3]);
    }
    // SAFETY: single-threaded.
    assert_eq!(unsafe { LEGACY_DELETES }, 1);
}

#[test]
fn writable_versioned_writes_reach_the_memory() {
    let mut data: Vec<i32> = (0..6).collect();
    let mut shape = [2i64, 3];
    let mut strides = [-3i64, 1];
    let raw = DLTensor {
        data: data.as_mut_ptr().cast(),
        device: DLDevice::cpu(),
        ndim: 2,
        dtype: DLDataType::I32,
        shape: shape.as_mut_ptr(),
        strides: strides.as_mut_ptr(),
        byte_offset: 12,
    };
    // SAFETY: describes `data`; only `m` accesses it while it lives.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    // SAFETY: as above.
    let mut m = unsafe { array_view_mut::<i32, Ix2>(&view) }.unwrap();
    m[[0, 0]] = 100; // row 0 of the view is row 1 of the memory
    m[[1, 2]] = 200;
    assert_eq!(data, [0, 1, 200, 100, 4, 5]);
}

#[test]
fn exported_tensor_written_through_mut_view() {
    use dlpack_ndarray::IntoDlpack;
    let a = ndarray::Array::from_shape_vec((2, 2), vec![1i64, 2, 3, 4])
        .unwrap()
        .reversed_axes();
    let mut t = a.into_dlpack_versioned().unwrap();
    t.as_array_mut::<i64, Ix2>().unwrap()[[0, 1]] = 30;
    // Transposed memory: [0, 1] of the view is element 2 of the buffer.
    assert_eq!(t.as_array::<i64, Ix2>().unwrap(), array![[1, 30], [2, 4]]);
}

// --- Refusals ---------------------------------------------------------------

fn with_view<R>(shape: &[i64], strides: &[i64], f: impl FnOnce(&TensorView<'_>) -> R) -> R {
    let mut data = [0.0f32; 16];
    let mut shape = shape.to_vec();
    let mut strides = strides.to_vec();
    let raw = tensor(data.as_mut_ptr(), &mut shape, Some(&mut strides), 0);
    // SAFETY: every layout used below stays inside `data`.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    f(&view)
}

#[test]
fn wrong_dtype() {
    with_view(&[2], &[1], |v| {
        let err = array_view::<i32, Ix1>(v).unwrap_err();
        assert_eq!(
            err,
            Error::DtypeMismatch {
                expected: DLDataType::I32,
                found: DLDataType::F32
            }
        );
        assert_eq!(err.kind(), ErrorKind::Type);
    });
}

#[test]
fn wrong_rank() {
    with_view(&[2, 2], &[2, 1], |v| {
        assert_eq!(
            array_view::<f32, Ix1>(v).unwrap_err(),
            Error::NdimMismatch {
                expected: 1,
                found: 2
            }
        );
        assert_eq!(
            array_view::<f32, Ix0>(v).unwrap_err(),
            Error::NdimMismatch {
                expected: 0,
                found: 2
            }
        );
        assert!(array_view::<f32, IxDyn>(v).is_ok());
    });
}

#[test]
fn device_memory_is_not_viewed() {
    let mut shape = [4i64];
    let mut strides = [1i64];
    let mut raw = tensor(
        ptr::without_provenance_mut::<f32>(0x1000),
        &mut shape,
        Some(&mut strides),
        0,
    );
    raw.device = DLDevice::cuda(0);
    // SAFETY: device memory: the core does not dereference it.
    let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
    assert_eq!(
        array_view::<f32, Ix1>(&view).unwrap_err(),
        Error::NotHostAccessible {
            device: DLDevice::cuda(0)
        }
    );
    // SAFETY: refused before any access.
    let err = unsafe { array_view_mut::<f32, Ix1>(&view) }.unwrap_err();
    assert_eq!(
        err,
        Error::NotHostAccessible {
            device: DLDevice::cuda(0)
        }
    );
}

/// Shape, strides, and the overlap expected (axis, stride).
type Case = (&'static [i64], &'static [i64], Option<(usize, i64)>);

#[test]
fn overlapping_elements_are_refused_for_mut_only() {
    // (shape, strides, overlapping?)
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (&[3, 4], &[0, 1], Some((0, 0))),   // broadcast rows
        (&[4], &[0], Some((0, 0))),         // one element four times
        (&[3, 3], &[1, 1], Some((1, 1))),   // sliding window
        (&[2, 3], &[2, 1], Some((0, 2))),   // rows overlap by one element
        (&[2, 3], &[-2, 1], Some((0, -2))), // same, reversed
        (&[2, 2], &[1, 2], None),           // F order
        (&[2, 3], &[3, 1], None),           // C order
        (&[2, 3], &[-3, -1], None),         // reversed
        (&[2, 2], &[4, 1], None),           // gaps
        (&[1, 4], &[0, 1], None),           // stride 0 on extent 1
        (&[0, 4], &[0, 0], None),           // size zero
    ];
    for &(shape, strides, overlap) in cases {
        let offset = strides
            .iter()
            .zip(shape)
            .map(|(&s, &e)| if s < 0 { -s * (e - 1) } else { 0 })
            .sum::<i64>();
        let mut data = [0.0f32; 16];
        let mut shape_v = shape.to_vec();
        let mut strides_v = strides.to_vec();
        let raw = tensor(
            data.as_mut_ptr(),
            &mut shape_v,
            Some(&mut strides_v),
            offset as u64 * 4,
        );
        // SAFETY: every layout stays inside `data`.
        let view = unsafe { TensorView::from_raw(&raw, writable()) }.unwrap();
        assert!(array_view::<f32, Ix2>(&view).is_ok() || shape.len() != 2);
        // SAFETY: no other access while the view lives.
        let result = unsafe { array_view_mut::<f32, IxDyn>(&view) };
        match overlap {
            Some((axis, stride)) => {
                let err = result.unwrap_err();
                assert_eq!(
                    err,
                    Error::OverlappingElements { axis, stride },
                    "{shape:?} {strides:?}"
                );
                assert!(err.to_string().contains("overlapping"));
            }
            None => assert!(result.is_ok(), "{shape:?} {strides:?}"),
        }
    }
}

#[test]
fn select_outside_the_owner_is_refused() {
    use dlpack_ndarray::export::ArrayExport;
    static OTHER: [f32; 3] = [1.0, 2.0, 3.0];
    let owner = ndarray::arr1(&[0.0f32; 3]).into_shared();
    let watcher = owner.clone();
    let err = ArrayExport::new(owner)
        .select(|_| ndarray::ArrayView1::from(&OTHER))
        .versioned()
        .unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { .. }), "{err:?}");
    assert!(watcher.is_unique(), "the owner is dropped on error");
}
