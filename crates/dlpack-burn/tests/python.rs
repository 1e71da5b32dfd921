//! burn ⇄ Python through dlpack-py, with an embedded CPython (the venv's,
//! as `cargo xtask test` runs it): burn data consumed by NumPy and torch,
//! NumPy and torch tensors consumed by burn, addresses checked both ways.

#![allow(deprecated)] // burn 0.22 deprecates its ndarray backend for burn-flex

use burn_std::{DType, TensorData, bf16, f16};
use burn_tensor::{Device, Float, Int, Tensor};
use dlpack_burn::consumer::data_into_tensor;
use dlpack_burn::python::{copy_from_python, from_python, to_python};
use dlpack_test_support::python::eval_with as eval;
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;

/// The addresses NumPy and torch see for one object made from `data`
/// (each `__dlpack__` call shares the same bytes), and NumPy's values.
fn consumed_addresses(data: TensorData) -> (usize, usize, Vec<f64>) {
    Python::attach(|py| {
        let obj = to_python(py, data).unwrap();
        let array = eval(py, "np.from_dlpack(obj)", &[("obj", &obj)]);
        let np_ptr: usize = eval(py, "a.ctypes.data", &[("a", &array)])
            .extract()
            .unwrap();
        let values: Vec<f64> = eval(py, "a.astype('float64').ravel().tolist()", &[("a", &array)])
            .extract()
            .unwrap();
        let tensor = eval(py, "torch.from_dlpack(obj)", &[("obj", &obj)]);
        let torch_ptr: usize = eval(py, "t.data_ptr()", &[("t", &tensor)])
            .extract()
            .unwrap();
        (np_ptr, torch_ptr, values)
    })
}

#[test]
fn burn_data_into_numpy_and_torch_without_a_copy() {
    for data in [
        TensorData::new(vec![1.5f64, -2.0, 3.25, 4.0], [2, 2]),
        TensorData::new(vec![1.5f32, -2.0, 3.25, 4.0], [2, 2]),
        TensorData::new(vec![f16::from_f32(1.5), f16::from_f32(-2.0)], [2]),
        TensorData::new(vec![1i64 << 40, -3], [2]),
        TensorData::new(vec![7i32, -3, 2], [3, 1]),
        TensorData::new(vec![7i16, -3], [2]),
        TensorData::new(vec![7i8, -3], [2]),
        TensorData::new(vec![7u64, 3], [2]),
        TensorData::new(vec![7u32, 3], [2]),
        TensorData::new(vec![7u16, 3], [2]),
        TensorData::new(vec![7u8, 3, 255], [3]),
        TensorData::new(vec![true, false, true], [3]),
    ] {
        let dtype = data.dtype();
        let ptr = data.bytes().as_ptr() as usize;
        let expected: Vec<f64> = data.clone().convert_dtype(DType::F64).to_vec().unwrap();
        let (np_ptr, torch_ptr, values) = consumed_addresses(data);
        assert_eq!((np_ptr, torch_ptr), (ptr, ptr), "{dtype:?} copied");
        assert_eq!(values, expected, "{dtype:?}");
    }
    // bfloat16: torch only (NumPy has no bfloat16).
    let data = TensorData::new(vec![bf16::from_f32(2.5), bf16::from_f32(-1.0)], [2]);
    let ptr = data.bytes().as_ptr() as usize;
    Python::attach(|py| {
        let obj = to_python(py, data).unwrap();
        let t = eval(py, "torch.from_dlpack(obj)", &[("obj", &obj)]);
        assert_eq!(
            eval(py, "str(t.dtype)", &[("t", &t)])
                .extract::<String>()
                .unwrap(),
            "torch.bfloat16"
        );
        assert_eq!(
            eval(py, "t.data_ptr()", &[("t", &t)])
                .extract::<usize>()
                .unwrap(),
            ptr
        );
        let values: Vec<f64> = eval(py, "t.float().tolist()", &[("t", &t)])
            .extract()
            .unwrap();
        assert_eq!(values, [2.5, -1.0]);
    });
}

#[test]
fn an_ndarray_tensor_reaches_torch_in_its_own_buffer() {
    let values: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let ptr = values.as_ptr() as usize;
    let tensor = Tensor::<2>::from_data(TensorData::new(values, [2, 3]), &Device::ndarray());
    Python::attach(|py| {
        let obj = to_python(py, tensor).unwrap();
        let t = eval(py, "torch.from_dlpack(obj)", &[("obj", &obj)]);
        assert_eq!(
            eval(py, "t.data_ptr()", &[("t", &t)])
                .extract::<usize>()
                .unwrap(),
            ptr
        );
        assert_eq!(
            eval(py, "t.sum().item()", &[("t", &t)])
                .extract::<f64>()
                .unwrap(),
            15.0
        );
        // torch writes into burn's buffer: it was exported writable.
        eval(py, "t.__setitem__((0, 0), 100.0)", &[("t", &t)]);
        assert_eq!(
            eval(py, "t[0, 0].item()", &[("t", &t)])
                .extract::<f64>()
                .unwrap(),
            100.0
        );
    });
}

#[test]
fn numpy_and_torch_tensors_into_burn_without_a_copy() {
    let device = Device::ndarray();
    Python::attach(|py| {
        let array = eval(py, "np.arange(12, dtype=np.float32).reshape(3, 4)", &[]);
        let address: usize = eval(py, "a.ctypes.data", &[("a", &array)])
            .extract()
            .unwrap();
        let data = from_python(&array).unwrap();
        assert_eq!(
            data.bytes().as_ptr() as usize,
            address,
            "numpy import copied"
        );
        assert_eq!(data.dtype(), DType::F32);
        assert_eq!(data.shape().as_slice(), &[3, 4]);
        let tensor: Tensor<2, Float> = data_into_tensor(data, &device).unwrap();
        assert_eq!(tensor.sum().into_scalar::<f32>(), 66.0);

        let t = eval(py, "torch.arange(10, dtype=torch.int64)", &[]);
        let address: usize = eval(py, "t.data_ptr()", &[("t", &t)]).extract().unwrap();
        let data = from_python(&t).unwrap();
        assert_eq!(
            data.bytes().as_ptr() as usize,
            address,
            "torch import copied"
        );
        let tensor: Tensor<1, Int> = data_into_tensor(data, &device).unwrap();
        assert_eq!(tensor.sum().into_scalar::<i64>(), 45);

        let t = eval(py, "torch.ones(4, dtype=torch.bfloat16)", &[]);
        let data = from_python(&t).unwrap();
        assert_eq!(data.dtype(), DType::BF16);
        assert_eq!(data.as_slice::<bf16>().unwrap(), &[bf16::ONE; 4]);
    });
}

#[test]
fn the_python_source_may_go_first() {
    let data = Python::attach(|py| {
        let array = eval(py, "np.arange(1000, dtype=np.int32)", &[]);
        let data = from_python(&array).unwrap();
        // Drop every Python reference and collect.
        drop(array);
        py.import("gc").unwrap().call_method0("collect").unwrap();
        data
    });
    let values = data.as_slice::<i32>().unwrap();
    assert!(values.iter().copied().eq(0..1000));
}

#[test]
fn read_only_sources_are_never_written() {
    Python::attach(|py| {
        let array = eval(py, "np.arange(4, dtype=np.uint8)", &[]);
        eval(py, "a.setflags(write=False)", &[("a", &array)]);
        let mut data = from_python(&array).unwrap();
        data.as_mut_slice::<u8>().unwrap()[0] = 9;
        let first: u8 = eval(py, "int(a[0])", &[("a", &array)]).extract().unwrap();
        assert_eq!(first, 0, "a read-only NumPy array was written");
        assert_eq!(data.as_slice::<u8>().unwrap(), &[9, 1, 2, 3]);
    });
}

#[test]
fn other_layouts_are_refused_with_buffer_error_unless_copied() {
    Python::attach(|py| {
        let t = eval(
            py,
            "torch.arange(6, dtype=torch.float64).reshape(2, 3).t()",
            &[],
        );
        let err = PyErr::from(from_python(&t).unwrap_err());
        assert!(err.is_instance_of::<PyBufferError>(py), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("[1, 3]") && message.contains("copy_tensor_data"),
            "{message}"
        );
        let data = copy_from_python(&t).unwrap();
        assert_eq!(
            data.as_slice::<f64>().unwrap(),
            &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );

        let c = eval(py, "np.zeros(2, dtype=np.complex64)", &[]);
        let err = from_python(&c).unwrap_err();
        assert!(
            matches!(
                err,
                dlpack_burn::python::Error::Burn(dlpack_burn::Error::NoBurnDtype { .. })
            ),
            "{err}"
        );
        let err = PyErr::from(err);
        assert!(err.is_instance_of::<PyBufferError>(py), "{err}");
        assert!(err.to_string().contains("complex64"), "{err}");
    });
}
