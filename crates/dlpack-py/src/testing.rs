//! `dlpack._testing`: hooks for the Python test suite and benchmarks
//! (import through Rust, borrowed import, values through Rust, Rust-owned
//! exports).

use dlpack_core::export::{Export, Memory};
use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::tensor::TensorView;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::error::{IntoPyResult, buffer_err, type_err, value_err};
use crate::import::{ExtractOptions, extract, with_borrowed};
use crate::object::Tensor;
use crate::owner::Keep;

/// Returns `x` (the call floor for benchmarks).
#[pyfunction]
fn noop(x: Bound<'_, PyAny>) -> Bound<'_, PyAny> {
    x
}

/// Imports `obj` through the owning Rust import path; returns ndim.
#[pyfunction]
fn take(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    Ok(extract(obj, &ExtractOptions::default())?.view().ndim())
}

/// Calls `obj.__dlpack__(max_version=(1, 3))` from Rust exactly as the
/// import does and drops the capsule unconsumed (its destructor releases
/// the tensor): what calling the producer from compiled code costs, the
/// floor under every import from a producer with only `__dlpack__`.
#[pyfunction]
fn call_dlpack(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let cap = crate::vcall::dlpack_max_version_1_3(obj)?;
    // SAFETY: cap is a live object.
    Ok(usize::from(
        unsafe { pyo3::ffi::PyCapsule_CheckExact(cap.as_ptr()) } != 0,
    ))
}

/// Imports `obj` borrowed, for the call; returns ndim.
#[pyfunction]
fn take_borrowed(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    with_borrowed(obj, |v| v.ndim())
}

/// What the Rust import path got.
#[pyfunction]
fn import_info<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = obj.py();
    let t = extract(obj, &ExtractOptions::default())?;
    let v = t.view();
    let d = PyDict::new(py);
    let (name, version, flags) = match t.tensor() {
        dlpack_core::managed::AnyManagedTensor::Legacy(_) => ("dltensor", None, 0u64),
        dlpack_core::managed::AnyManagedTensor::Versioned(m) => {
            let ver = m.version();
            (
                "dltensor_versioned",
                Some((ver.major, ver.minor)),
                m.flags().bits(),
            )
        }
    };
    d.set_item("name", name)?;
    d.set_item("version", version)?;
    d.set_item("flags", flags)?;
    let dev = v.device();
    d.set_item("device", (dev.device_type.0, dev.device_id))?;
    let dt = v.dtype();
    d.set_item("dtype", (dt.code, dt.bits, dt.lanes))?;
    d.set_item("shape", PyTuple::new(py, v.shape())?)?;
    match v.raw_strides() {
        Some(s) => d.set_item("strides", PyTuple::new(py, s)?)?,
        None => d.set_item("strides", py.None())?,
    }
    d.set_item("byte_offset", v.raw().byte_offset)?;
    d.set_item("data", v.raw().data as usize)?;
    d.set_item("path", t.path().name())?;
    d.set_item("readonly", t.read_only())?;
    d.set_item("cai_stream", t.cai_stream())?;
    Ok(d)
}

/// Imports `obj` through the owning Rust import path and hands the tensor
/// back as a `dlpack.Tensor`: what a Rust function that takes a tensor and
/// returns it does.
#[pyfunction]
fn reexport(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    Ok(Tensor::new(
        extract(obj, &ExtractOptions::default())?.into_tensor(),
    ))
}

/// Calls `f` with the address of every element of a host view, row-major.
fn for_each_element(view: &TensorView<'_>, mut f: impl FnMut(*mut u8)) -> PyResult<()> {
    if !view.device().device_type.is_host_accessible() {
        return Err(buffer_err(format!(
            "the data is on {:?}, not host memory",
            view.device()
        )));
    }
    let n = view.num_elements();
    if n == 0 {
        return Ok(());
    }
    let size = match view.storage() {
        dlpack_core::dtype::Storage::Bytes(b) => b as i64,
        dlpack_core::dtype::Storage::PackedBits(_) => {
            return Err(buffer_err("packed sub-byte elements are not addressable"));
        }
    };
    let shape = view.shape();
    let strides: Vec<i64> = view.strides().collect();
    let first = view.data_ptr();
    let mut index = vec![0i64; shape.len()];
    for _ in 0..n {
        let off: i64 = index.iter().zip(&strides).map(|(i, s)| i * s).sum::<i64>() * size;
        f(first.wrapping_offset(off as isize));
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Ok(())
}

/// Sums a float64 tensor through Rust.
#[pyfunction]
fn sum_f64(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    let t = extract(obj, &ExtractOptions::default())?;
    let v = t.view();
    v.check_element::<f64>().py()?;
    let mut sum = 0.0;
    // SAFETY: every address is an aligned-or-not f64 inside the validated
    // host view; read_unaligned tolerates any alignment.
    for_each_element(&v, |p| sum += unsafe { p.cast::<f64>().read_unaligned() })?;
    Ok(sum)
}

/// Writes `value` to every element (BufferError for read-only data).
#[pyfunction]
fn fill(obj: &Bound<'_, PyAny>, value: f64) -> PyResult<()> {
    let t = extract(obj, &ExtractOptions::default())?;
    if t.read_only() {
        return Err(buffer_err(
            "the imported tensor is read-only (READ_ONLY flag, or a legacy capsule that cannot signal writability)",
        ));
    }
    let v = t.view();
    let dt = v.dtype();
    macro_rules! write {
        ($t:ty) => {
            // SAFETY: writable host elements of this type inside the view.
            for_each_element(&v, |p| unsafe {
                p.cast::<$t>().write_unaligned(value as $t)
            })
        };
    }
    match (dt.code, dt.bits, dt.lanes) {
        (2, 64, 1) => write!(f64),
        (2, 32, 1) => write!(f32),
        (0, 8, 1) => write!(i8),
        (0, 16, 1) => write!(i16),
        (0, 32, 1) => write!(i32),
        (0, 64, 1) => write!(i64),
        (1, 8, 1) => write!(u8),
        (1, 16, 1) => write!(u16),
        (1, 32, 1) => write!(u32),
        (1, 64, 1) => write!(u64),
        // SAFETY: bool elements are one byte, 0 or 1.
        (6, 8, 1) => for_each_element(&v, |p| unsafe { p.write(u8::from(value != 0.0)) }),
        _ => Err(type_err(format!("fill does not support dtype {dt:?}"))),
    }
}

/// A Rust-owned tensor `0, 1, ..., n-1` (Rust → Python export).
#[pyfunction]
#[pyo3(signature = (n, dtype="float32", shape=None, read_only=false))]
fn arange(n: usize, dtype: &str, shape: Option<Vec<i64>>, read_only: bool) -> PyResult<Tensor> {
    let (dt, size): (DLDataType, usize) = match dtype {
        "float32" => (DLDataType::F32, 4),
        "float64" => (DLDataType::F64, 8),
        "int8" => (DLDataType::I8, 1),
        "int16" => (DLDataType::I16, 2),
        "int32" => (DLDataType::I32, 4),
        "int64" => (DLDataType::I64, 8),
        "uint8" => (DLDataType::U8, 1),
        "uint16" => (DLDataType::U16, 2),
        "uint32" => (DLDataType::U32, 4),
        "uint64" => (DLDataType::U64, 8),
        "bool" => (DLDataType::BOOL, 1),
        other => return Err(value_err(format!("arange: unsupported dtype {other:?}"))),
    };
    let mut words = vec![0u64; (n * size).div_ceil(8).max(1)];
    let base = words.as_mut_ptr().cast::<u8>();
    for i in 0..n {
        // SAFETY: element i lies within the n * size bytes allocated.
        unsafe {
            let p = base.add(i * size);
            match dtype {
                "float32" => p.cast::<f32>().write(i as f32),
                "float64" => p.cast::<f64>().write(i as f64),
                "bool" => p.write(u8::from(i % 2 == 1)),
                _ => {
                    let bytes = (i as u64).to_ne_bytes();
                    let start = if cfg!(target_endian = "little") {
                        0
                    } else {
                        8 - size
                    };
                    std::ptr::copy_nonoverlapping(bytes.as_ptr().add(start), p, size);
                }
            }
        }
    }
    let memory = Memory {
        ptr: base.cast(),
        len: n * size,
        device: DLDevice::cpu(),
        dtype: Some(dt),
        read_only,
    };
    // SAFETY: the Vec's buffer is stable under moves and lives in the owner.
    let owner = unsafe { Keep::new(words, memory) };
    let shape = shape.unwrap_or_else(|| vec![n as i64]);
    let t = Export::new(owner)
        .dtype(dt)
        .shape(&shape)
        .read_only(read_only)
        .versioned()
        .py()?;
    Ok(Tensor::new(t))
}

/// Registers the functions of `dlpack._testing`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(noop, m)?)?;
    m.add_function(wrap_pyfunction!(take, m)?)?;
    m.add_function(wrap_pyfunction!(call_dlpack, m)?)?;
    m.add_function(wrap_pyfunction!(take_borrowed, m)?)?;
    m.add_function(wrap_pyfunction!(import_info, m)?)?;
    m.add_function(wrap_pyfunction!(sum_f64, m)?)?;
    m.add_function(wrap_pyfunction!(fill, m)?)?;
    m.add_function(wrap_pyfunction!(arange, m)?)?;
    m.add_function(wrap_pyfunction!(reexport, m)?)?;
    Ok(())
}
