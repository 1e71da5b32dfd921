//! NumPy arrays read directly: an array's own fields, zero-copy.
//!
//! - NumPy array → tensor: the array's own fields (`data`, `nd`,
//!   `dimensions`, `strides`, `descr->type_num`/`byteorder`, `WRITEABLE`)
//!   are read directly; [`pyarray_to_tensor`] builds an owning tensor whose
//!   owner holds a reference to the array, `with_numpy_view` a borrowed
//!   view for the duration of a call.
//! - tensor → NumPy array: `tensor_to_pyarray` (in the classes layer: the
//!   array's base object is a `Tensor`).

use std::ffi::{c_int, c_long, c_void};
use std::mem::MaybeUninit;

use dlpack_core::export::Export;
use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::protocol::{DlpackRequest, Transfer, plan_dlpack};
use dlpack_core::tensor::{Flags, TensorView};
use numpy::PyUntypedArray;
use numpy::npyffi::{self, NPY_ARRAY_WRITEABLE, PyArrayObject};
use pyo3::prelude::*;
use pyo3::{PyTypeInfo, ffi};

use crate::cpython::owner::{Keep, PyObjectRef};
use crate::error::{IntoPyResult, buffer_err, type_err, type_name};
use crate::export::capsule::RawManaged;
use crate::export::host::host_export;

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
/// let t = dlpack_py::pyarray_to_tensor(a.as_any())?;
/// assert_eq!(t.view().ndim(), a.ndim());
/// # Ok(()) }
/// ```
pub fn pyarray_to_tensor(obj: &Bound<'_, PyAny>) -> PyResult<ManagedTensorVersioned> {
    let py = obj.py();
    // SAFETY: obj is live; the type object is NumPy's ndarray.
    let is_array =
        unsafe { ffi::PyObject_TypeCheck(obj.as_ptr(), PyUntypedArray::type_object_raw(py)) } != 0;
    if !is_array {
        return Err(type_err(format!(
            "expected a numpy.ndarray, got {}",
            type_name(obj)
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
    crate::export::shared::build(ex, plan.abi).map(Some)
}
