//! rust-numpy interop, zero-copy both ways.
//!
//! - NumPy array → tensor: the array's own fields (`data`, `nd`,
//!   `dimensions`, `strides`, `descr->type_num`/`byteorder`, `WRITEABLE`)
//!   are read directly; [`pyarray_to_tensor`] builds an owning tensor whose
//!   owner holds a reference to the array, `with_numpy_view` a borrowed
//!   view for the duration of a call.
//! - tensor → NumPy array: [`tensor_to_pyarray`] makes an array over the
//!   tensor's memory whose base object is a [`Tensor`]
//!   keeping the tensor alive.

use std::ffi::{c_int, c_long, c_void};
use std::mem::MaybeUninit;

use dlpack_core::export::Export;
use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::managed::{AnyManagedTensor, ManagedTensorVersioned};
use dlpack_core::protocol::{DlpackRequest, Transfer, plan_dlpack};
use dlpack_core::tensor::{Flags, TensorView};
use numpy::npyffi::{self, NPY_ARRAY_WRITEABLE, PyArrayObject};
use numpy::{PY_ARRAY_API, PyUntypedArray};
use pyo3::prelude::*;
use pyo3::{PyTypeInfo, ffi};

use crate::capsule::RawManaged;
use crate::error::{IntoPyResult, buffer_err};
use crate::import::host_export;
use crate::object::Tensor;
use crate::owner::{Keep, PyObjectRef};
use crate::shared::SharedTensor;

/// NumPy's `NPY_MAXDIMS` (64 since NumPy 2).
const MAX_DIMS: usize = 64;

/// The DLPack dtype of a NumPy `type_num` in native byte order.
pub(crate) fn type_num_dtype(type_num: c_int) -> Option<DLDataType> {
    let long = 8 * std::mem::size_of::<c_long>() as u8;
    let (code, bits) = match type_num {
        0 => (6, 8),
        1 => (0, 8),
        2 => (1, 8),
        3 => (0, 16),
        4 => (1, 16),
        5 => (0, 32),
        6 => (1, 32),
        7 => (0, long),
        8 => (1, long),
        9 => (0, 64),
        10 => (1, 64),
        11 => (2, 32),
        12 => (2, 64),
        14 => (5, 64),
        15 => (5, 128),
        23 => (2, 16),
        _ => return None,
    };
    Some(DLDataType {
        code,
        bits,
        lanes: 1,
    })
}

/// The NumPy `type_num` of a DLPack dtype.
pub(crate) fn dtype_type_num(dtype: DLDataType) -> Option<c_int> {
    if dtype.lanes != 1 {
        return None;
    }
    Some(match (dtype.code, dtype.bits) {
        (6, 8) => 0,
        (0, 8) => 1,
        (1, 8) => 2,
        (0, 16) => 3,
        (1, 16) => 4,
        (0, 32) => 5,
        (1, 32) => 6,
        (0, 64) => 9,
        (1, 64) => 10,
        (2, 32) => 11,
        (2, 64) => 12,
        (5, 64) => 14,
        (5, 128) => 15,
        (2, 16) => 23,
        _ => return None,
    })
}

/// The fields of a NumPy array that DLPack needs, checked once: the data
/// pointer, a DLPack dtype in native byte order, the extents, the strides
/// converted from bytes to elements, and writability.
pub(crate) struct NumpyFields<'a> {
    pub(crate) data: *mut c_void,
    pub(crate) dtype: DLDataType,
    pub(crate) shape: &'a [i64],
    pub(crate) strides: &'a [i64],
    pub(crate) read_only: bool,
}

/// Reads a NumPy array's own fields (no Python call), converting its byte
/// strides into `buf`.
///
/// # Safety
///
/// `obj` is a live `numpy.ndarray` (or subclass) and the GIL is held; the
/// result borrows the array's `dimensions` and `buf`, so it is valid only
/// while both are alive and unchanged.
pub(crate) unsafe fn numpy_fields<'a>(
    obj: *mut ffi::PyObject,
    buf: &'a mut [MaybeUninit<i64>; MAX_DIMS],
) -> PyResult<NumpyFields<'a>> {
    // SAFETY: by the caller's contract obj is a PyArrayObject.
    let f = unsafe { &(*obj.cast::<PyArrayObject>()).fields };
    let nd = f.nd as usize;
    if nd > MAX_DIMS {
        return Err(buffer_err(format!("ndim {nd} exceeds {MAX_DIMS}")));
    }
    // SAFETY: descr is a live PyArray_Descr; type_num and byteorder sit in
    // the fields common to NumPy 1 and 2.
    let (type_num, byteorder) = unsafe {
        let d = &(*f.descr).fields;
        (d.type_num, d.byteorder as u8)
    };
    let dtype = type_num_dtype(type_num).ok_or_else(|| {
        buffer_err(format!(
            "NumPy dtype number {type_num} has no DLPack type (only bool, integers, float16/32/64 and complex64/128 do)"
        ))
    })?;
    let native = match byteorder {
        b'>' => cfg!(target_endian = "big"),
        b'<' => cfg!(target_endian = "little"),
        _ => true,
    };
    if !native && dtype.bits > 8 {
        return Err(buffer_err(
            "the NumPy array is not in native byte order; DLPack only describes native-endian data",
        ));
    }
    let itemsize = i64::from(dtype.bits / 8);
    // The casts below rely on npy_intp being i64-sized.
    const _: () = assert!(std::mem::size_of::<npyffi::npy_intp>() == 8);
    let (shape, bstrides): (&[i64], &[i64]) = if nd == 0 {
        (&[], &[])
    } else {
        // SAFETY: dimensions and strides hold nd npy_intp (== i64,
        // asserted), alive while obj is.
        unsafe {
            (
                std::slice::from_raw_parts(f.dimensions.cast::<i64>(), nd),
                std::slice::from_raw_parts(f.strides.cast::<i64>(), nd),
            )
        }
    };
    for (i, (&b, &extent)) in bstrides.iter().zip(shape).enumerate() {
        if b % itemsize != 0 && extent > 1 {
            return Err(buffer_err(format!(
                "stride {b} bytes on axis {i} is not a multiple of the item size {itemsize}; DLPack strides count elements"
            )));
        }
        buf[i] = MaybeUninit::new(b / itemsize);
    }
    // SAFETY: the first nd entries were written above.
    let strides = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<i64>(), nd) };
    Ok(NumpyFields {
        data: f.data.cast::<c_void>(),
        dtype,
        shape,
        strides,
        read_only: f.flags & NPY_ARRAY_WRITEABLE == 0,
    })
}

/// Runs `f` on a borrowed view of a NumPy array, valid for the call.
///
/// # Safety
///
/// `obj` is a `numpy.ndarray` (or subclass).
pub(crate) unsafe fn with_numpy_view<R>(
    obj: &Bound<'_, PyAny>,
    f: impl FnOnce(TensorView<'_>) -> R,
) -> PyResult<R> {
    let mut buf = [MaybeUninit::uninit(); MAX_DIMS];
    // SAFETY: by the caller's contract; the view does not outlive obj or buf.
    let fields = unsafe { numpy_fields(obj.as_ptr(), &mut buf)? };
    let nd = fields.shape.len();
    let t = DLTensor {
        data: fields.data,
        device: DLDevice::cpu(),
        ndim: nd as i32,
        dtype: fields.dtype,
        shape: if nd == 0 {
            std::ptr::null_mut()
        } else {
            fields.shape.as_ptr().cast_mut()
        },
        strides: if nd == 0 {
            std::ptr::null_mut()
        } else {
            fields.strides.as_ptr().cast_mut()
        },
        byte_offset: 0,
    };
    let flags = Flags::from_bits(if fields.read_only {
        dlpack_core::ffi::DLPACK_FLAG_BITMASK_READ_ONLY
    } else {
        0
    });
    // SAFETY: t describes the array's memory, alive while obj is; shape and
    // strides point into the array and buf, both alive for the call.
    let view = unsafe { TensorView::from_raw(&t, flags) }.py()?;
    Ok(f(view))
}

/// An owning tensor over a NumPy array's memory (no copy); the owner holds a
/// reference to the array, released with the GIL from any thread.
///
/// ```no_run
/// # use pyo3::prelude::*;
/// use numpy::PyUntypedArrayMethods;
/// # fn f(a: &Bound<'_, numpy::PyUntypedArray>) -> PyResult<()> {
/// let t = dlpack_py::numpy::pyarray_to_tensor(a.as_any())?;
/// assert_eq!(t.view().ndim(), a.ndim());
/// # Ok(()) }
/// ```
pub fn pyarray_to_tensor(obj: &Bound<'_, PyAny>) -> PyResult<ManagedTensorVersioned> {
    let py = obj.py();
    // SAFETY: obj is live; the type object is NumPy's ndarray.
    let is_array =
        unsafe { ffi::PyObject_TypeCheck(obj.as_ptr(), PyUntypedArray::type_object_raw(py)) } != 0;
    if !is_array {
        return Err(crate::error::type_err(format!(
            "expected a numpy.ndarray, got {}",
            crate::capsule::type_name(obj)
        )));
    }
    // SAFETY: checked above.
    unsafe { numpy_owned(obj) }
}

/// An owning tensor over a NumPy array's memory: its fields read directly,
/// one layout analysis, one allocation; the owner holds a reference to the
/// array.
///
/// # Safety
///
/// `obj` is a `numpy.ndarray` (or subclass).
#[inline]
pub(crate) unsafe fn numpy_owned(obj: &Bound<'_, PyAny>) -> PyResult<ManagedTensorVersioned> {
    let mut buf = [MaybeUninit::uninit(); MAX_DIMS];
    // SAFETY: by the caller's contract; the fields are used before obj or
    // buf go away.
    let f = unsafe { numpy_fields(obj.as_ptr(), &mut buf)? };
    array_export(obj, &f, DLDevice::cpu())?.versioned().py()
}

/// The export of an array's memory as read by [`numpy_fields`], as
/// `device`, with the array as owner.
#[inline(always)]
fn array_export<'a>(
    obj: &Bound<'_, PyAny>,
    f: &NumpyFields<'a>,
    device: DLDevice,
) -> PyResult<Export<'a, Keep<PyObjectRef>>> {
    host_export(
        PyObjectRef::new(obj),
        f.data.cast(),
        device,
        f.dtype,
        f.shape,
        Some(f.strides),
        f.read_only,
    )
    .py()
}

/// Checks that DLPack can describe a NumPy array (dtype, byte order,
/// strides), with the errors of an import.
///
/// # Safety
///
/// `obj` is a `numpy.ndarray` (or subclass).
pub(crate) unsafe fn check_numpy(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let mut buf = [MaybeUninit::uninit(); MAX_DIMS];
    // SAFETY: by the caller's contract.
    unsafe { numpy_fields(obj.as_ptr(), &mut buf) }.map(|_| ())
}

/// `obj.__dlpack__(...)` for a NumPy array, done here: the array's fields
/// are read (as NumPy's own `__dlpack__` reads them, at the time of the
/// call) and shared in one allocation whose owner holds the array. `None`
/// when the plan is a copy, which the caller makes from its shared tensor.
///
/// # Safety
///
/// `obj` is a `numpy.ndarray` (or subclass).
pub(crate) unsafe fn numpy_dlpack(
    obj: &Bound<'_, PyAny>,
    req: &DlpackRequest,
) -> PyResult<Option<RawManaged>> {
    let mut buf = [MaybeUninit::uninit(); MAX_DIMS];
    // SAFETY: by the caller's contract; the fields are used before obj or
    // buf go away.
    let f = unsafe { numpy_fields(obj.as_ptr(), &mut buf)? };
    let plan = plan_dlpack(DLDevice::cpu(), f.read_only, req).py()?;
    let Transfer::Share { device } = plan.transfer else {
        return Ok(None);
    };
    let ex = array_export(obj, &f, device)?;
    crate::shared::build(ex, plan.abi).map(Some)
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
///     let a = dlpack_py::numpy::tensor_to_pyarray(py, t.into())?;
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
