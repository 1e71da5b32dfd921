//! The functions of `dlpack._native`: `asdlpack` (by `METH_FASTCALL` for
//! its common call `asdlpack(obj)`, pyo3's argument parsing for the others),
//! `capsule_info` and `live_tensors`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::classes::object::DLPackObject;
use crate::cpython::methoddef::MethodDef;
use crate::error::{type_err, type_name};

/// Wraps `obj` as a DLPack producer (see `dlpack.asdlpack`); `impl_cls`
/// (pydlpack's `DLManagedTensor` or `DLManagedTensorVersioned`) makes the
/// object export only that struct.
#[pyfunction]
#[pyo3(signature = (obj, impl_cls=None, *, protocol=None))]
pub(crate) fn asdlpack<'py>(
    obj: &Bound<'py, PyAny>,
    impl_cls: Option<&Bound<'py, PyAny>>,
    protocol: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, DLPackObject>> {
    crate::error::guard(|| {
        let protocol = protocol.map(protocol_name).transpose()?;
        let only = match impl_cls {
            None => None,
            Some(c) => crate::module::pydlpack::impl_cls_abi(c)?,
        };
        crate::classes::object::asdlpack(obj, protocol.as_deref(), only)
    })
}

/// The text of `asdlpack`'s `protocol` (a str; text that is not valid
/// UTF-8 reads lossily, and then names no protocol).
fn protocol_name(p: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = p.cast::<pyo3::types::PyString>().map_err(|_| {
        type_err(format!(
            "protocol must be None or a str, got {} of type {}",
            crate::error::show(p),
            type_name(p)
        ))
    })?;
    Ok(s.to_string_lossy().into_owned())
}

/// pyo3's `asdlpack` function object: the argument parsing (and its error
/// messages) of every call other than `asdlpack(obj)`.
pub(crate) static ASDLPACK_GENERAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub(crate) static ASDLPACK_DEF: MethodDef = MethodDef::fastcall(
    c"asdlpack",
    asdlpack_fastcall,
    c"asdlpack(obj, impl_cls=None, *, protocol=None)\n--\n\nWraps `obj` as a DLPack producer (see `dlpack.asdlpack`).",
);

/// `dlpack.asdlpack` by `METH_FASTCALL`: it is called once per exchange, and
/// pyo3 compiles `#[pyfunction]`s to `METH_VARARGS` under `abi3` before
/// Python 3.10 (a tuple per call). The common call `asdlpack(obj)` goes
/// straight to [`crate::classes::object::asdlpack`]; any other is passed to pyo3's function object.
///
/// # Safety
///
/// Called by CPython with an attached thread state: `args` holds `nargs`
/// positional values followed by one value per name in `kwnames` (a tuple,
/// or NULL).
unsafe extern "C" fn asdlpack_fastcall(
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls functions with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    crate::error::c_entry(py, || {
        if nargs == 1 && kwnames.is_null() {
            // SAFETY: one positional value, borrowed for the call.
            let obj = unsafe { Borrowed::from_ptr(py, *args) };
            return crate::classes::object::asdlpack(&obj, None, None).map(Bound::into_ptr);
        }
        let nkw = if kwnames.is_null() {
            0
        } else {
            // SAFETY: kwnames is a tuple (borrowed for the call).
            unsafe { ffi::PyTuple_Size(kwnames) }
        };
        // SAFETY: nargs positional values then nkw keyword values, borrowed.
        let values = unsafe { std::slice::from_raw_parts(args, (nargs + nkw.max(0)) as usize) };
        let value = |p: &*mut ffi::PyObject| {
            // SAFETY: a live object borrowed for the call.
            unsafe { Borrowed::from_ptr(py, *p) }
        };
        let positional = pyo3::types::PyTuple::new(py, values[..nargs as usize].iter().map(value))?;
        let kwargs = pyo3::types::PyDict::new(py);
        if nkw > 0 {
            // SAFETY: as above.
            let names = unsafe { Borrowed::from_ptr(py, kwnames) };
            for (name, v) in names.try_iter()?.zip(&values[nargs as usize..]) {
                kwargs.set_item(name?, value(v))?;
            }
        }
        let general = ASDLPACK_GENERAL
            .get(py)
            .ok_or_else(|| type_err("dlpack._native is not initialised"))?;
        Ok(general.bind(py).call(positional, Some(&kwargs))?.into_ptr())
    })
}

/// Decodes an unconsumed DLPack capsule without consuming it.
#[pyfunction]
pub(crate) fn capsule_info<'py>(
    capsule: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    crate::error::guard(|| crate::export::capsule::capsule_info(capsule))
}

/// Managed tensors created by this module and not yet released.
#[pyfunction]
pub(crate) fn live_tensors() -> PyResult<isize> {
    crate::error::guard(|| Ok(crate::cpython::live::live_tensors()))
}

/// The reconstructor of pickled `Tensor`s and `DLPackObject`s (named by
/// their `__reduce_ex__`): a `DLPackObject` over `data`, the received bytes,
/// or over a writable copy of them when `writable_copy` (what a writable
/// tensor pickled in band below protocol 5 sends; see
/// `crate::import::pickle`).
#[pyfunction]
#[pyo3(name = "_from_pickle")]
#[pyo3(signature = (format, data, shape, strides, dtype, byte_offset, read_only, writable_copy=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn from_pickle<'py>(
    format: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
    shape: &Bound<'py, PyAny>,
    strides: &Bound<'py, PyAny>,
    dtype: &Bound<'py, PyAny>,
    byte_offset: &Bound<'py, PyAny>,
    read_only: &Bound<'py, PyAny>,
    writable_copy: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, DLPackObject>> {
    crate::error::guard(|| {
        let p = crate::import::pickle::Pickled::read(
            shape,
            strides,
            dtype,
            byte_offset,
            read_only,
            writable_copy,
        )?;
        let data = crate::import::pickle::received(data, &p)?;
        let shared = crate::import::pickle::from_pickle(format, &data, &p)?;
        Bound::new(data.py(), DLPackObject::shared(data.unbind(), shared))
    })
}

/// `dlpack.load_safetensors(path, *, copy_misaligned=False)`: every tensor
/// of a `.safetensors` file as a read-only `dlpack.Tensor` inside one
/// memory map of the file, which lives while any of them does.
#[cfg(feature = "safetensors")]
#[pyfunction]
#[pyo3(signature = (path, *, copy_misaligned=false))]
pub(crate) fn load_safetensors<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    copy_misaligned: bool,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    crate::error::guard(|| crate::classes::safetensors::load(py, &path, copy_misaligned))
}
