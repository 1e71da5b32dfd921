//! Every refusal, on C structs as a foreign producer sends them: a typed
//! error that carries the refused value, a message that names it, the
//! Python exception kind the standard asks for, and the deleter run
//! exactly once.

#![allow(deprecated)] // burn 0.22 deprecates its ndarray backend for burn-flex

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn_std::{BoolStore, DType, QuantScheme, TensorData};
use burn_tensor::{Device, Float, Int};
use dlpack_burn::consumer::{copy_tensor_data, data_into_tensor, into_tensor};
use dlpack_burn::{Error, IntoBurn, IntoDlpack};
use dlpack_core::ErrorKind;
use dlpack_core::export::Export;
use dlpack_core::ffi::{
    DLDataType, DLDataTypeCode, DLDevice, DLDeviceType, DLManagedTensorVersioned, DLPackVersion,
    DLTensor,
};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::tensor::{Flags, TensorView};

/// The checks every refusal has: kind as given, message naming `names`.
fn named(err: &Error, kind: ErrorKind, names: &[&str]) {
    assert_eq!(err.kind(), kind, "{err}");
    let message = err.to_string();
    for name in names {
        assert!(message.contains(name), "{message:?} does not name {name:?}");
    }
}

/// A versioned tensor over `data` whose deleter counts into `DELETES`.
#[repr(C)]
struct Foreign {
    managed: DLManagedTensorVersioned,
    shape: Vec<i64>,
    strides: Option<Vec<i64>>,
    deletes: Arc<AtomicUsize>,
}

unsafe extern "C" fn delete(managed: *mut DLManagedTensorVersioned) {
    // SAFETY: made by `foreign` with Box::into_raw of a Foreign, whose
    // first field is the managed struct (repr(C)).
    let foreign = unsafe { Box::from_raw(managed.cast::<Foreign>()) };
    foreign.deletes.fetch_add(1, Ordering::SeqCst);
}

/// A raw managed tensor as a C producer makes it.
fn foreign(
    data: *mut u8,
    device: DLDevice,
    dtype: DLDataType,
    shape: &[i64],
    strides: Option<&[i64]>,
) -> *mut DLManagedTensorVersioned {
    let mut boxed = Box::new(Foreign {
        managed: DLManagedTensorVersioned {
            version: DLPackVersion::CURRENT,
            manager_ctx: ptr::null_mut(),
            deleter: Some(delete),
            flags: 0,
            dl_tensor: DLTensor {
                data: data.cast(),
                device,
                ndim: shape.len() as i32,
                dtype,
                shape: ptr::null_mut(),
                strides: ptr::null_mut(),
                byte_offset: 0,
            },
        },
        shape: shape.to_vec(),
        strides: strides.map(<[i64]>::to_vec),
        deletes: Arc::new(AtomicUsize::new(0)),
    });
    boxed.managed.dl_tensor.shape = boxed.shape.as_mut_ptr();
    if let Some(strides) = &mut boxed.strides {
        boxed.managed.dl_tensor.strides = strides.as_mut_ptr();
    }
    Box::into_raw(boxed).cast()
}

/// Imports `raw` and returns the error, checking the deleter ran once.
fn refused_import(raw: *mut DLManagedTensorVersioned) -> Error {
    // SAFETY: `raw` is a live Foreign from `foreign`.
    let deletes = Arc::clone(unsafe { &(*raw.cast::<Foreign>()).deletes });
    // SAFETY: `raw` is a fresh tensor from `foreign`, consumed once.
    let result = unsafe { ManagedTensorVersioned::from_raw(raw) }
        .map_err(Error::from)
        .and_then(|t| t.into_tensor_data());
    let err = result.unwrap_err();
    assert_eq!(
        deletes.load(Ordering::SeqCst),
        1,
        "the deleter of a refused tensor ran once"
    );
    err
}

#[test]
fn dtypes_burn_lacks() {
    let mut data = [0u64; 8];
    let p = data.as_mut_ptr().cast();
    let float8 = DLDataType::new(DLDataTypeCode::kDLFloat8_e4m3fn, 8, 1);
    let vector = DLDataType::new(DLDataTypeCode::kDLFloat, 32, 2);
    for (dtype, name) in [
        (DLDataType::C64, "complex64"),
        (DLDataType::C128, "complex128"),
        (float8, "Float8_e4m3fn"),
        (vector, "float32x2"),
    ] {
        let err = refused_import(foreign(p, DLDevice::cpu(), dtype, &[2], None));
        assert_eq!(err, Error::NoBurnDtype { dtype });
        named(&err, ErrorKind::Buffer, &[name]);
    }
}

#[test]
fn device_memory_is_refused() {
    let mut data = [0f32; 4];
    let cuda = DLDevice {
        device_type: DLDeviceType::kDLCUDA,
        device_id: 1,
    };
    let raw = foreign(data.as_mut_ptr().cast(), cuda, DLDataType::F32, &[4], None);
    let err = refused_import(raw);
    assert_eq!(
        err,
        Error::Tensor(dlpack_core::Error::NotHostAccessible { device: cuda })
    );
    named(&err, ErrorKind::Buffer, &["CUDA"]);
}

#[test]
fn layouts_other_than_compact_row_major_are_refused_unless_copied() {
    let mut data: Vec<i16> = (0..6).collect();
    let p = data.as_mut_ptr().cast();
    for (shape, strides) in [
        (&[3i64, 2][..], &[1i64, 3][..]), // transposed
        (&[2, 2], &[3, 2]),               // a step
        (&[3, 2], &[0, 1]),               // broadcast
        (&[6], &[-1]),                    // reversed (offset below)
    ] {
        let raw = foreign(p, DLDevice::cpu(), DLDataType::I16, shape, Some(strides));
        if strides == [-1] {
            // SAFETY: raw is ours; the first element is the last one.
            unsafe { (*raw).dl_tensor.byte_offset = 10 };
        }
        // The copying import takes it.
        // SAFETY: raw describes `data`, which outlives the view.
        let view = unsafe { TensorView::from_raw(&(*raw).dl_tensor, Flags::from_bits(0)) }.unwrap();
        let copy = copy_tensor_data(&view).unwrap();
        assert_eq!(copy.shape().as_slice().len(), shape.len());
        let err = refused_import(raw);
        let compact = if shape.len() == 2 {
            vec![shape[1], 1]
        } else {
            vec![1]
        };
        assert_eq!(
            err,
            Error::NotCompact {
                shape: shape.to_vec(),
                strides: strides.to_vec(),
                compact,
            }
        );
        named(
            &err,
            ErrorKind::Buffer,
            &[&format!("{strides:?}"), "copy_tensor_data"],
        );
    }
    // What the copies hold, row-major.
    let raw = foreign(p, DLDevice::cpu(), DLDataType::I16, &[3, 2], Some(&[1, 3]));
    // SAFETY: as above.
    let view = unsafe { TensorView::from_raw(&(*raw).dl_tensor, Flags::from_bits(0)) }.unwrap();
    let copy = copy_tensor_data(&view).unwrap();
    assert_eq!(copy.as_slice::<i16>().unwrap(), &[0, 3, 1, 4, 2, 5]);
    drop(refused_import(raw));
}

#[test]
fn null_data_with_elements_is_refused() {
    let raw = foreign(
        ptr::null_mut(),
        DLDevice::cpu(),
        DLDataType::F64,
        &[2, 3],
        None,
    );
    let err = refused_import(raw);
    assert_eq!(
        err,
        Error::Tensor(dlpack_core::Error::NullData { elements: 6 })
    );
    named(&err, ErrorKind::Buffer, &["NULL", "6"]);
    // NULL with no elements is a valid empty tensor.
    let raw = foreign(
        ptr::null_mut(),
        DLDevice::cpu(),
        DLDataType::F64,
        &[2, 0],
        None,
    );
    // SAFETY: fresh, consumed once.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    let data = t.into_tensor_data().unwrap();
    assert_eq!(data.num_elements(), 0);
}

#[test]
fn misaligned_elements_are_refused() {
    let mut data = [0u32; 4];
    let p = data.as_mut_ptr().cast::<u8>().wrapping_add(1);
    let raw = foreign(p, DLDevice::cpu(), DLDataType::U32, &[2], None);
    let err = refused_import(raw);
    assert!(matches!(
        err,
        Error::Tensor(dlpack_core::Error::Misaligned { align: 4, .. })
    ));
    named(&err, ErrorKind::Buffer, &[&format!("{p:p}")[2..]]);
}

#[test]
fn quantized_and_u32_bools_are_not_exported() {
    let q = TensorData::from_bytes_vec(vec![0u8; 8], [8], DType::QFloat(QuantScheme::default()));
    let dtype = q.dtype();
    let err = q.into_dlpack_versioned().unwrap_err();
    assert_eq!(err, Error::NoDlpackDtype { dtype });
    named(&err, ErrorKind::Buffer, &["QFloat", "quantized"]);

    let bools = TensorData::from_bytes_vec(vec![0u8; 8], [2], DType::Bool(BoolStore::U32));
    let err = bools.into_dlpack_legacy().unwrap_err();
    named(&err, ErrorKind::Buffer, &["Bool(U32)"]);
}

#[test]
fn wrong_kind_rank_or_device_dtype_for_a_burn_tensor() {
    let device = Device::ndarray();
    let floats = || Export::new(vec![1.0f32, 2.0]).versioned().unwrap();

    let err = into_tensor::<1, Int, _>(floats(), &device).unwrap_err();
    assert_eq!(
        err,
        Error::Kind {
            dtype: DType::F32,
            kind: "Int"
        }
    );
    named(&err, ErrorKind::Type, &["F32", "Int"]);

    let err = into_tensor::<2, Float, _>(floats(), &device).unwrap_err();
    assert_eq!(
        err,
        Error::Tensor(dlpack_core::Error::NdimMismatch {
            expected: 2,
            found: 1
        })
    );
    named(&err, ErrorKind::Type, &["2", "1"]);

    // The ndarray backend has no f16 tensors: refused, not a panic.
    let halves = TensorData::new(vec![burn_std::f16::ONE; 2], [2]);
    let data = halves
        .into_dlpack_versioned()
        .unwrap()
        .into_tensor_data()
        .unwrap();
    let err = data_into_tensor::<1, Float>(data, &device).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DeviceDtype {
                dtype: DType::F16,
                ..
            }
        ),
        "{err:?}"
    );
    named(&err, ErrorKind::Buffer, &["F16"]);
}

#[test]
fn a_huge_broadcast_is_refused_not_aborted() {
    let mut data = [1f32; 1];
    // 2^50 elements, all the same one: 4 PiB as a copy.
    let raw = foreign(
        data.as_mut_ptr().cast(),
        DLDevice::cpu(),
        DLDataType::F32,
        &[1 << 50],
        Some(&[0]),
    );
    // SAFETY: raw describes `data` (stride 0), which outlives the view.
    let view = unsafe { TensorView::from_raw(&(*raw).dl_tensor, Flags::from_bits(0)) }.unwrap();
    let err = copy_tensor_data(&view).unwrap_err();
    assert_eq!(err, Error::CopyTooLarge { bytes: 1 << 52 });
    named(&err, ErrorKind::Buffer, &["4503599627370496"]);
    // 2^62 four-byte elements overflow the address space outright.
    let raw2 = foreign(
        data.as_mut_ptr().cast(),
        DLDevice::cpu(),
        DLDataType::F32,
        &[1 << 62],
        Some(&[0]),
    );
    // SAFETY: as above.
    let view = unsafe { TensorView::from_raw(&(*raw2).dl_tensor, Flags::from_bits(0)) }.unwrap();
    let err = copy_tensor_data(&view).unwrap_err();
    assert_eq!(err, Error::Tensor(dlpack_core::Error::ElementCountOverflow));
    drop(refused_import(raw2));
    drop(refused_import(raw));
}
