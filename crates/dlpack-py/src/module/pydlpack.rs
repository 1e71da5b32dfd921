//! pydlpack 0.2.1's namespace over this module's paths: the meaning of its
//! `impl_cls` argument and `todict(capsule)`. Its ctypes structures and the
//! `asdlpack_<protocol>` functions are in `python/dlpack/_abi.py` and
//! `python/dlpack/_pydlpack.py`; its `Capsule` is [`crate::classes::capsule`] and
//! its `buffer.Buffer` is [`crate::classes::buffer`].
//!
//! Where pydlpack breaks the standard, the standard wins: `todict` reads the
//! struct the capsule's *name* says (pydlpack guesses it from the first
//! bytes), and an object made with `impl_cls=DLManagedTensorVersioned`
//! exports `"dltensor_versioned"` capsules to consumers that ask for them
//! (pydlpack puts the versioned struct under the legacy name).

use std::ffi::{CStr, c_void};

use dlpack_core::ffi::{
    DLDataTypeCode, DLDeviceType, DLManagedTensor, DLManagedTensorVersioned, DLTensor,
};
use dlpack_core::protocol::Abi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{ffi, intern};

use crate::error::type_name;
use crate::error::{type_err, value_err};

/// `dlpack.DLManagedTensor` and `dlpack.DLManagedTensorVersioned` (the
/// ctypes structures of `dlpack._abi`), loaded on first use.
static ABI_CLASSES: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

/// The ABI an `impl_cls` argument names: `None` (follow `max_version`),
/// `dlpack.DLManagedTensor` (legacy only) or
/// `dlpack.DLManagedTensorVersioned` (versioned only); `TypeError` for
/// anything else.
pub(crate) fn impl_cls_abi(impl_cls: &Bound<'_, PyAny>) -> PyResult<Option<Abi>> {
    if impl_cls.is_none() {
        return Ok(None);
    }
    let py = impl_cls.py();
    let (legacy, versioned) = ABI_CLASSES.get_or_try_init(py, || -> PyResult<_> {
        let m = py.import(intern!(py, "dlpack._abi"))?;
        Ok((
            m.getattr(intern!(py, "DLManagedTensor"))?.unbind(),
            m.getattr(intern!(py, "DLManagedTensorVersioned"))?.unbind(),
        ))
    })?;
    if impl_cls.is(legacy) {
        Ok(Some(Abi::Legacy))
    } else if impl_cls.is(versioned) {
        Ok(Some(Abi::Versioned))
    } else {
        Err(type_err(format!(
            "impl_cls must be None, dlpack.DLManagedTensor or dlpack.DLManagedTensorVersioned, \
             got {}",
            impl_cls.repr()?
        )))
    }
}

/// pydlpack's label of a device type (`"DLCPU"` for `kDLCPU`); the number
/// for a type the standard does not define.
fn device_label<'py>(py: Python<'py>, t: DLDeviceType) -> PyResult<Bound<'py, PyAny>> {
    Ok(match t.name() {
        Some(n) => n[1..].into_pyobject(py)?.into_any(),
        None => t.0.into_pyobject(py)?.into_any(),
    })
}

/// pydlpack's label of a type code (`"DLFloat"` for `kDLFloat`); the number
/// for a code the standard does not define.
fn code_label<'py>(py: Python<'py>, c: DLDataTypeCode) -> PyResult<Bound<'py, PyAny>> {
    Ok(match c.name() {
        Some(n) => n[1..].into_pyobject(py)?.into_any(),
        None => c.0.into_pyobject(py)?.into_any(),
    })
}

/// An address as pydlpack's ctypes reads a `void*`: `None` for NULL.
/// The address of a managed tensor's deleter, as [`address`] gives it.
fn fn_address<M>(py: Python<'_>, f: Option<unsafe extern "C" fn(*mut M)>) -> Py<PyAny> {
    address(py, f.map_or(std::ptr::null(), |f| f as *const c_void))
}

fn address(py: Python<'_>, p: *const c_void) -> Py<PyAny> {
    if p.is_null() {
        py.None()
    } else {
        (p as usize)
            .into_pyobject(py)
            .map_or_else(|_| py.None(), |v| v.into_any().unbind())
    }
}

/// `ndim` entries at `p`: `()` for `ndim <= 0`, `None` for NULL.
///
/// # Safety
///
/// A non-NULL `p` points to `ndim` readable `i64`s.
unsafe fn dims<'py>(py: Python<'py>, p: *const i64, ndim: i32) -> PyResult<Bound<'py, PyAny>> {
    let Ok(n) = usize::try_from(ndim) else {
        return Ok(PyTuple::empty(py).into_any());
    };
    if n == 0 {
        return Ok(PyTuple::empty(py).into_any());
    }
    if p.is_null() {
        return Ok(py.None().into_bound(py));
    }
    // SAFETY: by the caller's contract.
    let v = unsafe { std::slice::from_raw_parts(p, n) };
    Ok(PyTuple::new(py, v)?.into_any())
}

/// pydlpack's dictionary of a `DLTensor`.
///
/// # Safety
///
/// `t` is the live tensor of an unconsumed capsule.
unsafe fn tensor_dict<'py>(py: Python<'py>, t: &DLTensor) -> PyResult<Bound<'py, PyDict>> {
    let device = PyDict::new(py);
    device.set_item(
        intern!(py, "device_type"),
        device_label(py, t.device.device_type)?,
    )?;
    device.set_item(intern!(py, "device_id"), t.device.device_id)?;
    let dtype = PyDict::new(py);
    dtype.set_item(
        intern!(py, "code"),
        code_label(py, DLDataTypeCode(t.dtype.code))?,
    )?;
    dtype.set_item(intern!(py, "bits"), t.dtype.bits)?;
    dtype.set_item(intern!(py, "lanes"), t.dtype.lanes)?;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "data"), address(py, t.data))?;
    d.set_item(intern!(py, "device"), device)?;
    d.set_item(intern!(py, "ndim"), t.ndim)?;
    d.set_item(intern!(py, "dtype"), dtype)?;
    // SAFETY: the producer guarantees ndim entries behind non-NULL pointers.
    unsafe {
        d.set_item(intern!(py, "shape"), dims(py, t.shape, t.ndim)?)?;
        d.set_item(intern!(py, "strides"), dims(py, t.strides, t.ndim)?)?;
    }
    d.set_item(intern!(py, "byte_offset"), t.byte_offset)?;
    Ok(d)
}

/// `dlpack.todict(capsule)`: the fields of the managed tensor in an
/// unconsumed DLPack capsule, as nested dictionaries (pydlpack's shape),
/// without consuming it. The capsule's name decides the struct.
#[pyfunction]
pub(crate) fn todict<'py>(capsule: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    crate::error::guard(|| {
        let py = capsule.py();
        // SAFETY: capsule is live; the GIL is held.
        if unsafe { ffi::PyCapsule_CheckExact(capsule.as_ptr()) } == 0 {
            return Err(type_err(format!(
                "todict expects a DLPack PyCapsule, got an object of type {}",
                type_name(capsule)
            )));
        }
        // SAFETY: a capsule; its name pointer lives as long as it.
        let name = unsafe { ffi::PyCapsule_GetName(capsule.as_ptr()) };
        let abi = if name.is_null() {
            None
        } else {
            // SAFETY: non-NULL capsule names are C strings.
            Abi::from_capsule_name(unsafe { CStr::from_ptr(name) })
        };
        let Some(abi) = abi else {
            let shown = if name.is_null() {
                "None".to_owned()
            } else {
                // SAFETY: as above.
                format!("{:?}", unsafe { CStr::from_ptr(name) })
            };
            return Err(value_err(format!(
                "the PyCapsule is named {shown}: todict reads an unconsumed DLPack capsule, named \
                 \"dltensor\" (DLManagedTensor) or \"dltensor_versioned\" (DLManagedTensorVersioned)"
            )));
        };
        // SAFETY: the capsule's own name; DLPack capsules never hold NULL.
        let p = unsafe { ffi::PyCapsule_GetPointer(capsule.as_ptr(), name) };
        if p.is_null() {
            return Err(PyErr::fetch(py));
        }
        let d = PyDict::new(py);
        // SAFETY: an unconsumed capsule of this name holds a live managed tensor
        // of this ABI; a versioned one's version is read before anything else.
        unsafe {
            match abi {
                Abi::Legacy => {
                    let m = &*p.cast::<DLManagedTensor>();
                    d.set_item(intern!(py, "dl_tensor"), tensor_dict(py, &m.dl_tensor)?)?;
                    d.set_item(intern!(py, "manager_ctx"), address(py, m.manager_ctx))?;
                    d.set_item(intern!(py, "deleter"), fn_address(py, m.deleter))?;
                }
                Abi::Versioned => {
                    let m = p.cast::<DLManagedTensorVersioned>();
                    let v = std::ptr::addr_of!((*m).version).read();
                    let version = PyDict::new(py);
                    version.set_item(intern!(py, "major"), v.major)?;
                    version.set_item(intern!(py, "minor"), v.minor)?;
                    d.set_item(intern!(py, "version"), version)?;
                    if v.major != 1 {
                        // Another major version: its layout is unknown.
                        return Ok(d);
                    }
                    let m = &*m;
                    d.set_item(intern!(py, "manager_ctx"), address(py, m.manager_ctx))?;
                    d.set_item(intern!(py, "deleter"), fn_address(py, m.deleter))?;
                    d.set_item(intern!(py, "flags"), m.flags)?;
                    d.set_item(intern!(py, "dl_tensor"), tensor_dict(py, &m.dl_tensor)?)?;
                }
            }
        }
        Ok(d)
    })
}
