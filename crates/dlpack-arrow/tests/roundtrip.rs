//! Arrow → DLPack → Arrow over every Arrow type with a DLPack dtype, by
//! address: no copy on either side; and the tensors' shapes and strides.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, FixedSizeListArray, PrimitiveArray};
use arrow_schema::extension::FixedShapeTensor;
use arrow_schema::{DataType, Field};
use dlpack_arrow::ToDlpack;
use dlpack_arrow::consumer::ArrowImport;
use dlpack_arrow::producer::ArrowExport;
use dlpack_core::Element;
use dlpack_core::export::Export;
use dlpack_core::ffi::DLDataType;
use dlpack_core::managed::ManagedTensorVersioned;
use half::f16;

/// Through the raw C struct, as a foreign consumer would see it.
fn through_c(t: ManagedTensorVersioned) -> ManagedTensorVersioned {
    let raw = t.into_raw();
    // SAFETY: `raw` comes from an export and is consumed once.
    unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap()
}

fn round_trip<T>(values: Vec<T::Native>, dtype: DLDataType)
where
    T: ArrowPrimitiveType,
    T::Native: Element + PartialEq + std::fmt::Debug,
{
    let array = PrimitiveArray::<T>::from_iter_values(values.iter().copied());
    let ptr = array.values().as_ptr();
    let t = through_c(array.to_dlpack_versioned().unwrap());
    let view = t.view();
    assert_eq!(view.dtype(), dtype);
    assert_eq!(view.shape(), &[values.len() as i64]);
    assert!(t.flags().is_read_only(), "Arrow buffers are immutable");
    if !values.is_empty() {
        assert_eq!(
            view.data_ptr().cast_const(),
            ptr.cast::<u8>(),
            "export copied"
        );
    }
    assert_eq!(view.as_slice::<T::Native>().unwrap(), values.as_slice());
    drop(array);

    // Back, through both import paths.
    let back = ArrowImport::new(t).primitive::<T>().unwrap();
    if !values.is_empty() {
        assert_eq!(back.values().as_ptr(), ptr, "import copied");
    }
    assert_eq!(back.values().as_ref(), values.as_slice());
    let any = ArrowImport::new(through_c(back.to_dlpack_versioned().unwrap()))
        .array()
        .unwrap();
    assert_eq!(any.data_type(), &T::DATA_TYPE);
    if !values.is_empty() {
        assert_eq!(any.as_primitive::<T>().values().as_ptr(), ptr);
    }
}

#[test]
fn every_primitive_type() {
    round_trip::<Int8Type>(vec![-128, 0, 127], DLDataType::I8);
    round_trip::<Int16Type>(vec![-300, 0, 300], DLDataType::I16);
    round_trip::<Int32Type>(vec![i32::MIN, 1, i32::MAX], DLDataType::I32);
    round_trip::<Int64Type>(vec![i64::MIN, 2, i64::MAX], DLDataType::I64);
    round_trip::<UInt8Type>(vec![0, 1, 255], DLDataType::U8);
    round_trip::<UInt16Type>(vec![0, 1, u16::MAX], DLDataType::U16);
    round_trip::<UInt32Type>(vec![0, 1, u32::MAX], DLDataType::U32);
    round_trip::<UInt64Type>(vec![0, 1, u64::MAX], DLDataType::U64);
    round_trip::<Float16Type>(
        vec![f16::from_f32(0.5), f16::NEG_INFINITY, f16::MAX],
        DLDataType::F16,
    );
    round_trip::<Float32Type>(vec![0.5, -1.0, f32::MAX], DLDataType::F32);
    round_trip::<Float64Type>(vec![0.25, -1.0, f64::MIN_POSITIVE], DLDataType::F64);
    round_trip::<Float64Type>(vec![], DLDataType::F64);
}

#[test]
fn a_slice_exports_its_own_values() {
    let array = Int32Array::from((0..10).collect::<Vec<_>>());
    let slice = array.slice(3, 4);
    let t = slice.to_dlpack_versioned().unwrap();
    assert_eq!(t.view().as_slice::<i32>().unwrap(), &[3, 4, 5, 6]);
    assert_eq!(
        t.view().data_ptr().cast_const(),
        array.values()[3..].as_ptr().cast::<u8>()
    );
}

use arrow_array::Int32Array;

fn nested(values: Vec<f32>, sizes: &[i32]) -> ArrayRef {
    let mut array: ArrayRef = Arc::new(arrow_array::Float32Array::from(values));
    let mut item = DataType::Float32;
    for &size in sizes.iter().rev() {
        let field = Arc::new(Field::new_list_field(item, false));
        let list = FixedSizeListArray::try_new(field, size, array, None).unwrap();
        item = list.data_type().clone();
        array = Arc::new(list);
    }
    array
}

#[test]
fn nested_lists_are_n_d_tensors() {
    let values: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let array = nested(values.clone(), &[3, 4]);
    let leaf_ptr = array
        .as_fixed_size_list()
        .values()
        .as_fixed_size_list()
        .values()
        .as_primitive::<Float32Type>()
        .values()
        .as_ptr();
    let t = through_c(ArrowExport::new(array.as_ref()).versioned().unwrap());
    assert_eq!(t.view().shape(), &[2, 3, 4]);
    assert_eq!(t.view().strides().collect::<Vec<_>>(), [12, 4, 1]);
    assert_eq!(t.view().data_ptr().cast_const(), leaf_ptr.cast::<u8>());
    // A slice of the outer list: rows 1.. only.
    let sliced = array.slice(1, 1);
    let t2 = ArrowExport::new(sliced.as_ref()).versioned().unwrap();
    assert_eq!(t2.view().shape(), &[1, 3, 4]);
    assert_eq!(t2.view().as_slice::<f32>().unwrap(), &values[12..]);
    drop(array);

    let back = ArrowImport::new(t).array().unwrap();
    assert_eq!(back.data_type(), nested(vec![0.0; 12], &[3, 4]).data_type());
    let rows = back.as_fixed_size_list();
    assert_eq!(rows.len(), 2);
    let leaf = rows
        .values()
        .as_fixed_size_list()
        .values()
        .as_primitive::<Float32Type>();
    assert_eq!(leaf.values().as_ptr(), leaf_ptr, "import copied");
    assert_eq!(leaf.values().as_ref(), values.as_slice());
}

#[test]
fn fixed_shape_tensor_permutation_is_strides_both_ways() {
    // Physical shape (2, 3, 4) stored row-major; logical = permutation [2, 0, 1]
    // → logical shape (4, 2, 3).
    let values: Vec<f32> = (0..48).map(|i| i as f32).collect();
    let ext =
        FixedShapeTensor::try_new(DataType::Float32, [2, 3, 4], None, Some(vec![2, 0, 1])).unwrap();
    let list = nested(values.clone(), &[24]);
    let field = Field::new("t", list.data_type().clone(), false).with_extension_type(ext.clone());
    let t = ArrowExport::new(list.as_ref())
        .field(&field)
        .versioned()
        .unwrap();
    let view = t.view();
    assert_eq!(view.shape(), &[2, 4, 2, 3]);
    assert_eq!(view.strides().collect::<Vec<_>>(), [24, 1, 12, 4]);
    // Logical element [1, l0, l1, l2] is physical [l1, l2, l0] of tensor 1.
    let base = view.data_ptr().cast::<f32>();
    // SAFETY: index (1, 3, 1, 2) lies inside the tensor just exported.
    let x = unsafe { *base.add(24 + 3 + 12 + 2 * 4) };
    assert_eq!(x, values[24 + 12 + 2 * 4 + 3]);

    // Import gives the same extension back, without a copy.
    let ptr = view.data_ptr();
    let (field2, back) = ArrowImport::new(through_c(t)).fixed_shape_tensor().unwrap();
    // The specification's key (arrow-rs 60 writes "permutations", pyarrow
    // reads "permutation").
    assert_eq!(
        field2.metadata()["ARROW:extension:metadata"],
        r#"{"shape":[2,3,4],"permutation":[2,0,1]}"#
    );
    assert_eq!(
        field2.extension_type_name(),
        Some(dlpack_arrow::FIXED_SHAPE_TENSOR)
    );
    let _ = ext;
    assert_eq!(
        back.values()
            .as_primitive::<Float32Type>()
            .values()
            .as_ptr()
            .cast::<u8>(),
        ptr.cast_const()
    );
    assert_eq!(back.len(), 2);
}

#[test]
fn fixed_shape_tensor_of_a_row_major_tensor_has_no_permutation() {
    let t = Export::new((0..12u8).collect::<Vec<_>>())
        .shape(&[3, 2, 2])
        .versioned()
        .unwrap();
    let (field, list) = ArrowImport::new(t).fixed_shape_tensor().unwrap();
    let ext = field.try_extension_type::<FixedShapeTensor>().unwrap();
    assert_eq!((ext.shape(), ext.permutations()), (&[2, 2][..], None));
    assert_eq!(list.value_length(), 4);
    // And back: the extension's shape again.
    let t = ArrowExport::new(&list).field(&field).versioned().unwrap();
    assert_eq!(t.view().shape(), &[3, 2, 2]);
}

#[test]
fn temporal_types_export_their_integers_on_request() {
    let dates = Date32Array::from(vec![0, 19000]);
    assert!(matches!(
        dates.to_dlpack_versioned(),
        Err(dlpack_arrow::Error::UnsupportedType {
            data_type: DataType::Date32
        })
    ));
    let t = ArrowExport::new(&dates)
        .temporal_as_int(true)
        .versioned()
        .unwrap();
    assert_eq!(t.view().as_slice::<i32>().unwrap(), &[0, 19000]);
    let ts = TimestampNanosecondArray::from(vec![1, 2]).with_timezone("UTC");
    let t = ArrowExport::new(&ts)
        .temporal_as_int(true)
        .versioned()
        .unwrap();
    assert_eq!(t.view().as_slice::<i64>().unwrap(), &[1, 2]);
    // Import as a temporal type is the caller's choice of T.
    let back = ArrowImport::new(t).primitive::<Date64Type>().unwrap();
    assert_eq!(back.value(1), 2);
}

use arrow_array::{Date32Array, TimestampNanosecondArray};

#[test]
fn booleans_unpack_and_pack_only_with_a_copy() {
    let bools = arrow_array::BooleanArray::from(vec![true, false, true]);
    let t = ArrowExport::new(&bools).copy(true).versioned().unwrap();
    assert!(t.flags().is_copied() && t.flags().is_writable());
    assert_eq!(t.view().as_slice::<bool>().unwrap(), &[true, false, true]);
    assert!(matches!(
        ArrowImport::new(t).array(),
        Err(dlpack_arrow::Error::BitPacked)
    ));
    let t = Export::new(vec![false, true]).versioned().unwrap();
    let back = ArrowImport::new(t).copy(true).array().unwrap();
    assert_eq!(
        back.as_boolean(),
        &arrow_array::BooleanArray::from(vec![false, true])
    );
}

#[test]
fn strided_tensors_copy_only_when_asked() {
    // Every second element of 0..8.
    let t = Export::new((0..8i16).collect::<Vec<_>>())
        .shape(&[4])
        .strides(&[2])
        .versioned()
        .unwrap();
    let err = ArrowImport::new(t).primitive::<Int16Type>().unwrap_err();
    assert!(
        matches!(err, dlpack_arrow::Error::NotCompact { .. }),
        "{err}"
    );
    let t = Export::new((0..8i16).collect::<Vec<_>>())
        .shape(&[4])
        .strides(&[-2])
        .byte_offset(12)
        .versioned()
        .unwrap();
    let back = ArrowImport::new(t)
        .copy(true)
        .primitive::<Int16Type>()
        .unwrap();
    assert_eq!(back.values().as_ref(), &[6, 4, 2, 0]);
    assert_eq!(
        back.values().as_ptr() as usize % 64,
        0,
        "Arrow-aligned copy"
    );
}
