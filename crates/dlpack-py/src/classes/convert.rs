//! One-call conversions that make the classes: an `ndarray` array as a
//! Python object that speaks DLPack ([`ndarray_to_python`]), and a tensor
//! as a NumPy array over its memory ([`tensor_to_pyarray`]). Zero-copy: the
//! Python object owns the tensor.

use std::ffi::{c_int, c_void};

use dlpack_core::managed::AnyManagedTensor;
use numpy::npyffi::{self, NPY_ARRAY_WRITEABLE};
use numpy::{PY_ARRAY_API, PyUntypedArray};
use pyo3::PyTypeInfo;
use pyo3::prelude::*;

use crate::classes::tensor::Tensor;
use crate::error::buffer_err;
use crate::export::shared::SharedTensor;
use crate::import::numpy::dtype_type_num;

/// An `ndarray` array (or `ArcArray`) as a Python object that speaks
/// DLPack (a [`Tensor`]), in one call and without copying: the object owns
/// the array, so its memory lives as long as any consumer's view of it.
///
/// # Errors
///
/// [`Error::Core`](crate::Error::Core) for an array DLPack cannot describe;
/// [`Error::Python`](crate::Error::Python) if the object cannot be made.
///
/// ```
/// use dlpack_py::prelude::*;
/// use ndarray::Array2;
///
/// Python::attach(|py| -> Result<(), dlpack_py::Error> {
///     let a = Array2::<f64>::from_shape_fn((2, 3), |(i, j)| (3 * i + j) as f64);
///     let first = a.as_ptr() as usize;
///     let t = dlpack_py::ndarray_to_python(py, a)?;
///     let np = py.import("numpy")?;
///     let b = np.call_method1("from_dlpack", (&t,))?;
///     drop(t); // NumPy's array keeps the tensor (and the ndarray) alive
///     assert_eq!(b.call_method0("sum")?.extract::<f64>()?, 15.0);
///     // Zero-copy: NumPy reads the ndarray's own buffer.
///     let data: (usize, bool) = b.getattr("__array_interface__")?.get_item("data")?.extract()?;
///     assert_eq!(data.0, first);
///     Ok(())
/// })
/// .unwrap();
/// ```
#[cfg(feature = "ndarray")]
pub fn ndarray_to_python<'py>(
    py: Python<'py>,
    array: impl dlpack_ndarray::IntoDlpack,
) -> Result<Bound<'py, Tensor>, crate::error::Error> {
    Ok(Bound::new(py, Tensor::from_ndarray(array)?)?)
}

/// A NumPy array over a tensor's memory (no copy). The array's base object
/// is a [`Tensor`] that owns `tensor`; read-only tensors (and legacy ones,
/// which cannot signal writability) give read-only arrays.
///
/// # Errors
///
/// `BufferError` for memory the host cannot access or dtypes NumPy lacks.
///
/// ```no_run
/// use dlpack_core::export::Export;
/// use pyo3::prelude::*;
/// Python::attach(|py| -> PyResult<()> {
///     let t = Export::new(vec![1.0f64, 2.0]).versioned().unwrap();
///     let a = dlpack_py::tensor_to_pyarray(py, t.into())?;
///     assert_eq!(a.len()?, 2);
///     Ok(())
/// }).unwrap();
/// ```
pub fn tensor_to_pyarray(
    py: Python<'_>,
    tensor: AnyManagedTensor,
) -> PyResult<Bound<'_, PyUntypedArray>> {
    let shared = SharedTensor::new(tensor);
    let view = shared.view();
    let device = view.device();
    if !device.device_type.is_host_accessible() {
        return Err(buffer_err(format!(
            "a NumPy array needs host memory, but the tensor is on {device:?}"
        )));
    }
    shared.host_access()?;
    let dtype = view.dtype();
    let type_num = dtype_type_num(dtype)
        .ok_or_else(|| buffer_err(format!("dtype {dtype:?} has no NumPy equivalent")))?;
    let itemsize = i64::from(dtype.bits / 8);
    let mut dims: Vec<npyffi::npy_intp> = view
        .shape()
        .iter()
        .map(|&d| d as npyffi::npy_intp)
        .collect();
    let mut strides: Vec<npyffi::npy_intp> = view
        .strides()
        .map(|s| (s * itemsize) as npyffi::npy_intp)
        .collect();
    let writable = view.flags().is_writable();
    let data = if view.num_elements() == 0 {
        std::ptr::NonNull::<u64>::dangling()
            .as_ptr()
            .cast::<c_void>()
    } else {
        view.data_ptr().cast::<c_void>()
    };
    let nd = dims.len() as c_int;
    let base = Bound::new(py, Tensor::from_shared(shared.clone()))?;
    // SAFETY: the descr is a new reference stolen by NewFromDescr; dims and
    // strides describe memory kept alive by `base`, which SetBaseObject
    // steals a reference to.
    unsafe {
        let descr = PY_ARRAY_API.PyArray_DescrFromType(py, type_num);
        if descr.is_null() {
            return Err(PyErr::fetch(py));
        }
        let arr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            PyUntypedArray::type_object_raw(py),
            descr,
            nd,
            dims.as_mut_ptr(),
            strides.as_mut_ptr(),
            data,
            if writable { NPY_ARRAY_WRITEABLE } else { 0 },
            std::ptr::null_mut(),
        );
        if arr.is_null() {
            return Err(PyErr::fetch(py));
        }
        let arr = Bound::from_owned_ptr(py, arr);
        if PY_ARRAY_API.PyArray_SetBaseObject(py, arr.as_ptr().cast(), base.into_ptr()) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(arr.cast_into_unchecked())
    }
}
