//! Bad input refused with a typed error that names the value, both ways.

use std::sync::Arc;

use arrow_array::types::{Float32Type, Int32Type, Int64Type};
use arrow_array::{
    Array, BooleanArray, Decimal128Array, FixedSizeListArray, Float32Array, Int32Array, StringArray,
};
use arrow_schema::{DataType, Field};
use dlpack_arrow::Error;
use dlpack_arrow::ToDlpack;
use dlpack_arrow::consumer::ArrowImport;
use dlpack_arrow::producer::ArrowExport;
use dlpack_core::ErrorKind;
use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::{DLDataType, DLDevice, DLDeviceType};

#[test]
fn nulls_are_refused_even_with_a_copy() {
    let a = Int32Array::from(vec![Some(1), None, Some(3)]);
    for copy in [false, true] {
        let err = ArrowExport::new(&a).copy(copy).versioned().unwrap_err();
        assert_eq!(
            err,
            Error::Nulls {
                data_type: DataType::Int32,
                count: 1
            }
        );
        assert_eq!(err.kind(), ErrorKind::Buffer);
        assert!(err.to_string().contains("1 null"), "{err}");
    }
    // Nulls inside a nested list's values.
    let item = Arc::new(Field::new_list_field(DataType::Float32, true));
    let values = Arc::new(Float32Array::from(vec![Some(1.0), None]));
    let list = FixedSizeListArray::try_new(item, 2, values, None).unwrap();
    assert!(matches!(
        list.to_dlpack_versioned(),
        Err(Error::Nulls { count: 1, .. })
    ));
    // A slice without the null exports.
    assert!(a.slice(2, 1).to_dlpack_versioned().is_ok());
}

#[test]
fn types_without_a_dlpack_dtype_are_type_errors() {
    let cases: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from(vec!["a"])),
        Arc::new(Decimal128Array::from(vec![1i128])),
        Arc::new(arrow_array::Date64Array::from(vec![1])),
    ];
    for array in cases {
        let err = ArrowExport::new(array.as_ref())
            .copy(true)
            .versioned()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type, "{err}");
        assert!(
            err.to_string().contains(&array.data_type().to_string()),
            "{err}"
        );
    }
    let err = BooleanArray::from(vec![true])
        .to_dlpack_versioned()
        .unwrap_err();
    assert_eq!(err, Error::BitPacked);
}

#[test]
fn wrong_dtype_rank_and_layout_are_refused_on_import() {
    let t = Export::new(vec![1.0f32, 2.0]).versioned().unwrap();
    let err = ArrowImport::new(t).primitive::<Int32Type>().unwrap_err();
    assert!(matches!(
        err,
        Error::Tensor(dlpack_core::Error::DtypeMismatch { .. })
    ));

    let t = Export::new(vec![1i64; 4])
        .shape(&[2, 2])
        .versioned()
        .unwrap();
    let err = ArrowImport::new(t).primitive::<Int64Type>().unwrap_err();
    assert_eq!(
        err,
        Error::Rank {
            shape: vec![2, 2],
            expected: "1"
        }
    );
    let t = Export::new(vec![1i64]).shape(&[]).versioned().unwrap();
    assert!(matches!(
        ArrowImport::new(t).array(),
        Err(Error::Rank { .. })
    ));

    // A transpose is not row-major: refused as nested lists without a copy.
    let t = Export::new(vec![0f32; 6])
        .shape(&[3, 2])
        .strides(&[1, 3])
        .versioned()
        .unwrap();
    let err = ArrowImport::new(t).array().unwrap_err();
    assert_eq!(
        err,
        Error::NotCompact {
            shape: vec![3, 2],
            strides: vec![1, 3]
        }
    );
    assert_eq!(err.kind(), ErrorKind::Buffer);

    // bfloat16 and complex have no Arrow type.
    let t = Export::new(vec![0u16; 2])
        .dtype(DLDataType::BF16)
        .versioned()
        .unwrap();
    let err = ArrowImport::new(t).copy(true).array().unwrap_err();
    assert_eq!(
        err,
        Error::UnsupportedDtype {
            dtype: DLDataType::BF16
        }
    );
    assert_eq!(err.kind(), ErrorKind::Type);
}

/// Host memory described as CUDA memory (never dereferenced: refused).
struct OnDevice(Vec<f32>);

// SAFETY: the Vec's buffer is stable under moves; it is never written
// through this owner in these tests.
unsafe impl TensorOwner for OnDevice {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.0.as_mut_ptr().cast(),
            len: self.0.len() * 4,
            device: DLDevice {
                device_type: DLDeviceType::kDLCUDA,
                device_id: 0,
            },
            dtype: Some(DLDataType::F32),
            read_only: false,
        }
    }
}

#[test]
fn device_memory_and_misaligned_data_are_refused() {
    let t = Export::new(OnDevice(vec![0.0; 4])).versioned().unwrap();
    let err = ArrowImport::new(t).primitive::<Float32Type>().unwrap_err();
    assert!(matches!(
        err,
        Error::Tensor(dlpack_core::Error::NotHostAccessible { .. })
    ));

    // f32s starting one byte into a buffer.
    let t = Export::new(vec![0u8; 17])
        .dtype(DLDataType::F32)
        .shape(&[4])
        .byte_offset(1)
        .versioned()
        .unwrap();
    let err = ArrowImport::new(t).copy(true).array().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tensor(dlpack_core::Error::Misaligned { align: 4, .. })
        ),
        "{err}"
    );
}

#[test]
fn bad_extension_metadata_is_a_value_error() {
    let item = Arc::new(Field::new_list_field(DataType::Float32, false));
    let list =
        FixedSizeListArray::try_new(item, 4, Arc::new(Float32Array::from(vec![0.0; 8])), None)
            .unwrap();
    for json in [
        r#"{"shape":[3]}"#,
        r#"{"shape":[2,2],"permutation":[0,0]}"#,
        r#"{"shape":"x"}"#,
        "not json",
    ] {
        let metadata = std::collections::HashMap::from([
            (
                "ARROW:extension:name".to_owned(),
                "arrow.fixed_shape_tensor".to_owned(),
            ),
            ("ARROW:extension:metadata".to_owned(), json.to_owned()),
        ]);
        let field = Field::new("t", list.data_type().clone(), false).with_metadata(metadata);
        let err = ArrowExport::new(&list)
            .field(&field)
            .versioned()
            .unwrap_err();
        assert!(matches!(err, Error::Extension { .. }), "{json}: {err}");
        assert_eq!(err.kind(), ErrorKind::Value);
    }
}
