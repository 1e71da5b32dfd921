//! Round trips over every dtype burn has, with the addresses checked: no
//! element moves on the way out or back in, and the values survive.

#![allow(deprecated)] // burn 0.22 deprecates its ndarray backend for burn-flex

use burn_std::{BoolStore, DType, Element, TensorData, bf16, f16};
use burn_tensor::{Bool, Device, Float, Int, Tensor};
use dlpack_burn::consumer::{data_into_tensor, into_tensor, into_tensor_data};
use dlpack_burn::{IntoBurn, IntoDlpack};
use dlpack_core::export::Export;
use dlpack_core::ffi::DLDataType;
use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};

mod common;

/// `data` → DLPack (versioned, through the raw pointer) → `TensorData`:
/// same address, shape, dtype and bytes.
fn round_trip(data: TensorData, dl: DLDataType) {
    let ptr = data.bytes().as_ptr();
    let bytes = data.as_bytes().to_vec();
    let shape = data.shape().clone();
    let dtype = data.dtype();

    let t = data.clone().into_dlpack_versioned().unwrap();
    let view = t.view();
    assert_eq!(view.dtype(), dl, "{dtype:?}");
    let extents: Vec<i64> = shape.iter().map(|&e| e as i64).collect();
    assert_eq!(view.shape(), extents.as_slice());
    assert!(view.is_c_contiguous());
    assert!(t.flags().is_writable(), "own bytes export writable");
    let raw = t.into_raw();
    // SAFETY: exported above, consumed once.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    let exported = t.view().data_ptr().cast_const();

    let empty = bytes.is_empty();
    let back = t.into_tensor_data().unwrap();
    // A size-zero tensor has no address to keep (DLPack data may be NULL).
    if !empty {
        assert_eq!(back.bytes().as_ptr(), exported, "import copied {dtype:?}");
    }
    assert_eq!(back.dtype(), dtype);
    assert_eq!(back.shape(), &shape);
    assert_eq!(back.as_bytes(), bytes.as_slice());
    assert_eq!(back, data);

    // The same through the legacy ABI, from the data's own bytes.
    let t = data.into_dlpack_legacy().unwrap();
    if !empty {
        assert_eq!(
            t.view().data_ptr().cast_const(),
            ptr,
            "export copied {dtype:?}"
        );
    }
    let raw = t.into_raw();
    // SAFETY: exported above, consumed once.
    let t = unsafe { ManagedTensor::from_raw(raw) }.unwrap();
    let back = into_tensor_data(t).unwrap();
    if !empty {
        assert_eq!(back.bytes().as_ptr(), ptr, "legacy import copied {dtype:?}");
    }
    assert_eq!(back.as_bytes(), bytes.as_slice());
}

fn values<E: Element>(f: impl Fn(usize) -> E) -> TensorData {
    TensorData::new((0..24).map(f).collect::<Vec<E>>(), [2, 3, 4])
}

#[test]
fn every_dtype_round_trips_zero_copy() {
    round_trip(values(|i| i as f64 * 0.5 - 3.0), DLDataType::F64);
    round_trip(values(|i| i as f32 * 0.25 - 1.0), DLDataType::F32);
    round_trip(values(|i| f16::from_f32(i as f32 - 7.5)), DLDataType::F16);
    round_trip(values(|i| bf16::from_f32(i as f32 * 3.0)), DLDataType::BF16);
    round_trip(values(|i| i as i64 - (1 << 40)), DLDataType::I64);
    round_trip(values(|i| i as i32 - 100_000), DLDataType::I32);
    round_trip(values(|i| i as i16 - 300), DLDataType::I16);
    round_trip(values(|i| i as i8 - 12), DLDataType::I8);
    round_trip(values(|i| u64::MAX - i as u64), DLDataType::U64);
    round_trip(values(|i| u32::MAX - i as u32), DLDataType::U32);
    round_trip(values(|i| 60_000 + i as u16), DLDataType::U16);
    round_trip(values(|i| 200 + i as u8), DLDataType::U8);
    round_trip(values(|i| i % 3 == 0), DLDataType::BOOL);
}

#[test]
fn every_rank_including_scalars_and_empty() {
    round_trip(TensorData::new(vec![42.0f32], [0usize; 0]), DLDataType::F32);
    round_trip(TensorData::new(Vec::<i32>::new(), [0]), DLDataType::I32);
    round_trip(TensorData::new(Vec::<u8>::new(), [3, 0, 2]), DLDataType::U8);
    let nine = [1usize, 2, 1, 2, 1, 2, 1, 2, 1];
    round_trip(TensorData::new(vec![1i16; 16], nine), DLDataType::I16);
}

#[test]
fn flex32_and_u8_bools_export_as_their_storage() {
    let data = TensorData::new(vec![1.5f32, -2.0], [2]);
    let flex = TensorData::from_bytes_vec(data.as_bytes().to_vec(), [2], DType::Flex32);
    let t = flex.into_dlpack_versioned().unwrap();
    assert_eq!(t.view().dtype(), DLDataType::F32);
    assert_eq!(t.view().as_slice::<f32>().unwrap(), &[1.5, -2.0]);

    let bools = TensorData::from_bytes_vec(vec![1, 0, 1], [3], DType::Bool(BoolStore::U8));
    let t = bools.into_dlpack_versioned().unwrap();
    assert_eq!(t.view().dtype(), DLDataType::BOOL);
    assert_eq!(t.view().as_slice::<bool>().unwrap(), &[true, false, true]);
}

#[test]
fn foreign_tensor_into_an_ndarray_tensor_without_a_copy() {
    let device = Device::ndarray();
    let values: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let source = common::Leaked::new(values);
    let address = source.0;
    let t = Export::new(source).shape(&[3, 4]).versioned().unwrap();
    let tensor: Tensor<2, Float> = into_tensor(t, &device).unwrap();
    // burn reads the producer's memory in place: a write through the
    // producer's pointer shows in the tensor (a copy would not see it).
    // SAFETY: the memory is never freed; no reference into it is live
    // during the write (burn reads it only inside its operations).
    unsafe { address.write(-66.0) };
    assert_eq!(
        tensor.clone().sum().into_scalar::<f32>(),
        0.0,
        "copied on import"
    );
    // SAFETY: as above.
    unsafe { address.write(0.0) };
    let first_row = tensor.clone().slice([0..1, 0..4]);
    assert_eq!(
        first_row.to_data().as_slice::<f32>().unwrap(),
        &[0.0, 1.0, 2.0, 3.0]
    );
    assert_eq!(tensor.clone().sum().into_scalar::<f32>(), 66.0);
    let doubled = tensor * 2.0;
    assert_eq!(doubled.into_data().as_slice::<f32>().unwrap()[11], 22.0);

    let t = Export::new(vec![5i64, -6, 7]).versioned().unwrap();
    let ints: Tensor<1, Int> = t.into_burn_tensor(&device).unwrap();
    assert_eq!(ints.sum().into_scalar::<i64>(), 6);

    let t = Export::new(vec![true, false, true, true])
        .shape(&[2, 2])
        .versioned()
        .unwrap();
    let bools: Tensor<2, Bool> = t.into_burn_tensor(&device).unwrap();
    assert_eq!(bools.int().sum().into_scalar::<i64>(), 3);

    for dtype_data in [
        TensorData::new(vec![1.0f64, 2.0], [2]),
        TensorData::new(vec![1u16, 2], [2]),
        TensorData::new(vec![1i8, 2], [2]),
    ] {
        let dtype = dtype_data.dtype();
        let t = dtype_data.into_dlpack_versioned().unwrap();
        let data = t.into_tensor_data().unwrap();
        let sum = if dtype.is_float() {
            let t: Tensor<1, Float> = data_into_tensor(data, &device).unwrap();
            assert_eq!(t.dtype(), dtype, "kept, not converted to the default");
            t.sum().into_scalar::<f64>()
        } else {
            let t: Tensor<1, Int> = data_into_tensor(data, &device).unwrap();
            assert_eq!(t.dtype(), dtype, "kept, not converted to the default");
            t.sum().into_scalar::<i64>() as f64
        };
        assert_eq!(sum, 3.0, "{dtype:?}");
    }
}

#[test]
fn ndarray_tensor_exports_its_own_buffer() {
    let device = Device::ndarray();
    let values: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let ptr = values.as_ptr().cast::<u8>();
    let tensor = Tensor::<2>::from_data(TensorData::new(values, [2, 3]), &device);
    // into_data hands back the Vec the tensor was made from.
    let t = tensor.into_dlpack_versioned().unwrap();
    assert_eq!(
        t.view().data_ptr().cast_const(),
        ptr,
        "exported without a copy"
    );
    assert_eq!(t.view().shape(), &[2, 3]);
    assert_eq!(t.view().strides().collect::<Vec<_>>(), [3, 1]);
    assert_eq!(
        t.view().as_slice::<f32>().unwrap(),
        &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );

    // A transposed tensor is exported compact: burn's into_data lays it out.
    let tensor = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]),
        &device,
    );
    let t = tensor.transpose().into_dlpack_versioned().unwrap();
    assert_eq!(t.view().shape(), &[3, 2]);
    assert_eq!(t.view().strides().collect::<Vec<_>>(), [2, 1]);
    assert_eq!(
        t.view().as_slice::<f32>().unwrap(),
        &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
}
