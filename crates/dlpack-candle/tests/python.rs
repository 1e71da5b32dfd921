//! The Python reach against the real consumers and producers: candle
//! tensors read by `numpy.from_dlpack` and `torch.from_dlpack` over
//! candle's own storage (any layout, read-only), and NumPy / torch tensors
//! copied into candle. CPython is embedded (pyo3 `auto-initialize`, the
//! interpreter of `PYO3_PYTHON`: `cargo xtask test` runs this with its venv).

use candle_core::{DType, Device, Storage, Tensor};
use dlpack_candle::Error as CandleError;
use dlpack_candle::python::{Error, copy_from_python, to_python};
use dlpack_test_support::python::{eval, eval_with};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

fn storage_ptr(t: &Tensor) -> usize {
    let (s, _) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*s else { panic!() };
    match cpu {
        candle_core::CpuStorage::F32(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::BF16(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::F8E4M3(v) => v.as_ptr() as usize,
        candle_core::CpuStorage::I64(v) => v.as_ptr() as usize,
        _ => unimplemented!(),
    }
}

#[test]
fn numpy_reads_candle_storage_in_place_read_only() {
    Python::attach(|py| {
        let t = Tensor::arange(0f32, 12., &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let a = eval(py, "np.from_dlpack(x)", &to_python(py, &t).unwrap());
        let got: ((usize, usize), String, bool, usize) = eval(
            py,
            "(x.shape, str(x.dtype), x.flags.writeable, x.ctypes.data)",
            &a,
        )
        .extract()
        .unwrap();
        assert_eq!(got, ((3, 4), "float32".into(), false, storage_ptr(&t)));
        // A transposed crop: candle's strides and offset, same memory.
        let v = t.narrow(1, 1, 2).unwrap().t().unwrap();
        let a = eval(py, "np.from_dlpack(x)", &to_python(py, &v).unwrap());
        let got: ((usize, usize), (usize, usize), usize) =
            eval(py, "(x.shape, x.strides, x.ctypes.data)", &a)
                .extract()
                .unwrap();
        assert_eq!(got, ((2, 3), (4, 16), storage_ptr(&t) + 4));
        drop((t, v)); // the array keeps the storage
        let vals: Vec<Vec<f32>> = eval(py, "x.tolist()", &a).extract().unwrap();
        assert_eq!(vals, [[1.0, 5.0, 9.0], [2.0, 6.0, 10.0]]);
    });
}

#[test]
fn torch_reads_candle_storage_in_place() {
    Python::attach(|py| {
        let t = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        for (dtype, name) in [
            (DType::F32, "torch.float32"),
            (DType::BF16, "torch.bfloat16"),
            (DType::I64, "torch.int64"),
            (DType::F8E4M3, "torch.float8_e4m3fn"),
        ] {
            let c = t.to_dtype(dtype).unwrap();
            let x = eval(py, "torch.from_dlpack(x)", &to_python(py, &c).unwrap());
            let got: (Vec<usize>, String, usize) =
                eval(py, "(list(x.shape), str(x.dtype), x.data_ptr())", &x)
                    .extract()
                    .unwrap();
            assert_eq!(
                got,
                (vec![2, 3], name.to_owned(), storage_ptr(&c)),
                "{dtype:?}"
            );
            let vals: Vec<f32> = eval(py, "x.float().flatten().tolist()", &x)
                .extract()
                .unwrap();
            assert_eq!(vals, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "{dtype:?}");
        }
    });
}

#[test]
fn numpy_and_torch_tensors_are_copied_into_candle() {
    Python::attach(|py| {
        let a = eval_with(py, "np.arange(6, dtype=np.float32).reshape(2, 3)", &[]);
        let t = copy_from_python(&a).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), [[0., 1., 2.], [3., 4., 5.]]);
        assert_ne!(
            storage_ptr(&t),
            eval(py, "x.ctypes.data", &a).extract::<usize>().unwrap()
        );
        // Strided producers: a torch permute, a NumPy negative stride.
        let x = eval_with(
            py,
            "torch.arange(6, dtype=torch.int64).reshape(2, 3).t()",
            &[],
        );
        assert_eq!(
            copy_from_python(&x).unwrap().to_vec2::<i64>().unwrap(),
            [[0, 3], [1, 4], [2, 5]]
        );
        let x = eval_with(py, "np.arange(4, dtype=np.int32)[::-1]", &[]);
        assert_eq!(
            copy_from_python(&x).unwrap().to_vec1::<i32>().unwrap(),
            [3, 2, 1, 0]
        );
        let x = eval_with(py, "torch.ones(3, dtype=torch.bfloat16)", &[]);
        assert_eq!(copy_from_python(&x).unwrap().dtype(), DType::BF16);
    });
}

#[test]
fn dtypes_candle_lacks_are_refused_with_the_typed_error() {
    Python::attach(|py| {
        for code in [
            "np.zeros(3, dtype=np.uint16)",
            "torch.zeros(2, dtype=torch.bool)",
            "np.zeros(2, dtype=np.complex64)",
        ] {
            match copy_from_python(&eval_with(py, code, &[])) {
                Err(Error::Candle(err @ CandleError::Dtype { .. })) => {
                    assert!(PyErr::from(Error::Candle(err)).is_instance_of::<PyTypeError>(py))
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        match copy_from_python(&py.None().into_bound(py)) {
            Err(Error::Python(err)) => assert!(err.is_instance_of::<PyTypeError>(py)),
            other => panic!("{other:?}"),
        }
    });
}
