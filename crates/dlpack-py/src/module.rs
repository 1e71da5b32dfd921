//! The extension module `dlpack._native`: `asdlpack`, `capsule_info`,
//! `live_tensors`, the classes, `DLDeviceType`, `DLDataTypeCode`,
//! pydlpack's `todict`, `Capsule` and `Buffer`, and `_testing`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{ffi, intern};

use dlpack_core::protocol::Abi;

use crate::capsule::{consume_capsule, type_name};
use crate::error::type_err;
use crate::import::{ExtractOptions, Protocol, is_capsule, via_array_interface, via_buffer};
use crate::object::{DEVICE_TYPE_ENUM, DLPackObject, MethodDef, Tensor, shared_of};
use crate::shared::SharedTensor;
use crate::typecache::type_info;

/// Wraps `obj` as a DLPack producer (see `dlpack.asdlpack`); `impl_cls`
/// (pydlpack's `DLManagedTensor` or `DLManagedTensorVersioned`) makes the
/// object export only that struct.
#[pyfunction]
#[pyo3(signature = (obj, impl_cls=None, *, protocol=None))]
fn asdlpack<'py>(
    obj: &Bound<'py, PyAny>,
    impl_cls: Option<&Bound<'py, PyAny>>,
    protocol: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, DLPackObject>> {
    crate::error::guard(|| {
        let protocol = protocol.map(protocol_name).transpose()?;
        let only = match impl_cls {
            None => None,
            Some(c) => crate::pydlpack::impl_cls_abi(c)?,
        };
        wrap(obj, protocol.as_deref(), only)
    })
}

/// `asdlpack(obj, protocol=protocol)`, exporting only `only`'s ABI if set.
pub(crate) fn wrap<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&str>,
    only: Option<Abi>,
) -> PyResult<Bound<'py, DLPackObject>> {
    let py = obj.py();
    let new = |o: DLPackObject| Bound::new(py, o.exporting_only(only));
    let shared = |s: Arc<SharedTensor>| new(DLPackObject::shared(obj.clone().unbind(), s));
    let opts = ExtractOptions::default();
    if let Some(p) = protocol {
        return match Protocol::parse(p)? {
            Protocol::Dlpack => {
                if !obj.hasattr(intern!(py, "__dlpack__"))? {
                    return Err(type_err(format!(
                        "protocol=\"dlpack\": {} has no __dlpack__",
                        type_name(obj)
                    )));
                }
                new(DLPackObject::forward(obj.clone().unbind()))
            }
            Protocol::Buffer => shared(SharedTensor::new(via_buffer(obj)?.into())),
            Protocol::Capsule => shared(SharedTensor::new(consume_capsule(obj)?)),
            Protocol::ArrayInterface | Protocol::CudaArrayInterface => {
                let cuda = Protocol::parse(p)? == Protocol::CudaArrayInterface;
                let attr = if cuda {
                    intern!(py, "__cuda_array_interface__")
                } else {
                    intern!(py, "__array_interface__")
                };
                let d = obj.getattr(attr).map_err(|_| {
                    type_err(format!("protocol={p:?}: {} has no {attr}", type_name(obj)))
                })?;
                // The CAI stream is the producer's pending work: recorded,
                // and waited on by each consumer in __dlpack__(stream=...).
                let t = via_array_interface(obj, &d, cuda, &opts, true)?;
                let s = t.cai_stream();
                shared(SharedTensor::with_cai_stream(t.into_tensor(), s))
            }
        };
    }
    if let Ok(o) = obj.cast::<DLPackObject>() {
        if o.get().only() == only {
            return Ok(o.clone());
        }
        return new(DLPackObject::forward(obj.clone().unbind()));
    }
    if obj.is_instance_of::<Tensor>() {
        return shared(shared_of(obj)?);
    }
    let info = type_info(obj);
    if info.numpy {
        // SAFETY: exactly numpy.ndarray.
        unsafe { crate::numpy::check_numpy(obj)? };
        return new(DLPackObject::numpy(obj.clone().unbind()));
    }
    if info.dlpack {
        return new(DLPackObject::forward(obj.clone().unbind()));
    }
    if is_capsule(obj) {
        return shared(SharedTensor::new(consume_capsule(obj)?));
    }
    // SAFETY: obj is live.
    if unsafe { crate::pybuffer::PyObject_CheckBuffer(obj.as_ptr()) } != 0 {
        return shared(SharedTensor::new(via_buffer(obj)?.into()));
    }
    if let Ok(d) = obj.getattr(intern!(py, "__array_interface__")) {
        let t = via_array_interface(obj, &d, false, &opts, true)?;
        return shared(SharedTensor::new(t.into_tensor()));
    }
    if let Ok(d) = obj.getattr(intern!(py, "__cuda_array_interface__")) {
        let t = via_array_interface(obj, &d, true, &opts, true)?;
        let s = t.cai_stream();
        return shared(SharedTensor::with_cai_stream(t.into_tensor(), s));
    }
    if obj.hasattr(intern!(py, "__dlpack__"))? {
        return new(DLPackObject::forward(obj.clone().unbind()));
    }
    Err(type_err(format!(
        "asdlpack: cannot wrap an object of type {}: it has no __dlpack__, buffer protocol, \
         __array_interface__ or __cuda_array_interface__, and is not a DLPack capsule",
        type_name(obj)
    )))
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
static ASDLPACK_GENERAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

static ASDLPACK_DEF: MethodDef = MethodDef::fastcall(
    c"asdlpack",
    asdlpack_fastcall,
    c"asdlpack(obj, impl_cls=None, *, protocol=None)\n--\n\nWraps `obj` as a DLPack producer (see `dlpack.asdlpack`).",
);

/// `dlpack.asdlpack` by `METH_FASTCALL`: it is called once per exchange, and
/// pyo3 compiles `#[pyfunction]`s to `METH_VARARGS` under `abi3` before
/// Python 3.10 (a tuple per call). The common call `asdlpack(obj)` goes
/// straight to [`asdlpack`]; any other is passed to pyo3's function object.
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
            return wrap(&obj, None, None).map(Bound::into_ptr);
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
fn capsule_info<'py>(capsule: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    crate::error::guard(|| crate::capsule::capsule_info(capsule))
}

/// Managed tensors created by this module and not yet released.
#[pyfunction]
fn live_tensors() -> PyResult<isize> {
    crate::error::guard(|| Ok(crate::live::live_tensors()))
}

/// `DLDeviceType` and `DLDataTypeCode`: `IntEnum`s of the header's names,
/// with pydlpack's labels (`DLDeviceType.kDLCPU.label == "DLCPU"`,
/// `DLDeviceType.from_label("DLCPU")`).
const ENUMS: &str = "\
import enum
class _Labelled(enum.IntEnum):
    @property
    def label(self):
        # pydlpack's name of the member: the header's without its leading k.
        return self.name[1:]
    @classmethod
    def from_label(cls, label):
        # The member of a pydlpack label (KeyError for an unknown one).
        return cls['k' + label]
DLDeviceType = _Labelled('DLDeviceType', [
    ('kDLCPU', 1), ('kDLCUDA', 2), ('kDLCUDAHost', 3), ('kDLOpenCL', 4), ('kDLVulkan', 7),
    ('kDLMetal', 8), ('kDLVPI', 9), ('kDLROCM', 10), ('kDLROCMHost', 11), ('kDLExtDev', 12),
    ('kDLCUDAManaged', 13), ('kDLOneAPI', 14), ('kDLWebGPU', 15), ('kDLHexagon', 16),
    ('kDLMAIA', 17), ('kDLTrn', 18), ('kDLTPU', 19), ('kDLTPUHost', 20)], module='dlpack')
DLDataTypeCode = _Labelled('DLDataTypeCode', [
    ('kDLInt', 0), ('kDLUInt', 1), ('kDLFloat', 2), ('kDLOpaqueHandle', 3), ('kDLBfloat', 4),
    ('kDLComplex', 5), ('kDLBool', 6), ('kDLFloat8_e3m4', 7), ('kDLFloat8_e4m3', 8),
    ('kDLFloat8_e4m3b11fnuz', 9), ('kDLFloat8_e4m3fn', 10), ('kDLFloat8_e4m3fnuz', 11),
    ('kDLFloat8_e5m2', 12), ('kDLFloat8_e5m2fnuz', 13), ('kDLFloat8_e8m0fnu', 14),
    ('kDLFloat6_e2m3fn', 15), ('kDLFloat6_e3m2fn', 16), ('kDLFloat4_e2m1fn', 17),
    ('kDLBcomplex', 18)], module='dlpack')
";

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::error::guard(|| init_module(m))
}

/// The module's contents (the body of [`native`]).
fn init_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // The classes' base type first, so that a failure is an import error.
    crate::bufferbase::init(py)?;
    let general = wrap_pyfunction!(asdlpack, m)?;
    let _ = ASDLPACK_GENERAL.set(py, general.into_any().unbind());
    let name = m.name()?;
    // SAFETY: the def is a static; the module and its name are live; a new
    // reference or NULL with an exception set.
    let f = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCFunction_NewEx(
                std::ptr::from_ref(&ASDLPACK_DEF.0).cast_mut(),
                m.as_ptr(),
                name.as_ptr(),
            ),
        )?
    };
    m.add("asdlpack", f)?;
    m.add_function(wrap_pyfunction!(capsule_info, m)?)?;
    m.add_function(wrap_pyfunction!(live_tensors, m)?)?;
    m.add_class::<DLPackObject>()?;
    m.add_class::<Tensor>()?;
    m.add_function(wrap_pyfunction!(crate::pydlpack::todict, m)?)?;
    m.add_class::<crate::pycapsule::Capsule>()?;
    m.add_class::<crate::bufferview::Buffer>()?;
    let ns = pyo3::types::PyDict::new(py);
    py.run(&std::ffi::CString::new(ENUMS)?, Some(&ns), None)?;
    let e = ns
        .get_item("DLDeviceType")?
        .ok_or_else(|| type_err("DLDeviceType was not created"))?;
    let _ = DEVICE_TYPE_ENUM.set(py, e.clone().unbind());
    m.add("DLDeviceType", e)?;
    let codes = ns
        .get_item("DLDataTypeCode")?
        .ok_or_else(|| type_err("DLDataTypeCode was not created"))?;
    m.add("DLDataTypeCode", codes)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let testing = PyModule::new(py, "_testing")?;
    crate::testing::register(&testing)?;
    m.add_submodule(&testing)?;
    Ok(())
}
