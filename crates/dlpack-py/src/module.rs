//! The extension module `dlpack._native`: `asdlpack`, `capsule_info`,
//! `live_tensors`, the classes, `DLDeviceType`, and `_testing`.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;

use crate::capsule::{consume_capsule, type_name};
use crate::error::type_err;
use crate::import::{ExtractOptions, Protocol, is_capsule, via_array_interface, via_buffer};
use crate::object::{DEVICE_TYPE_ENUM, DLPackObject, Tensor, shared_of};
use crate::shared::SharedTensor;
use crate::typecache::type_info;

/// Wraps `obj` as a DLPack producer (see `dlpack.asdlpack`).
#[pyfunction]
#[pyo3(signature = (obj, *, protocol=None))]
fn asdlpack<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&str>,
) -> PyResult<Bound<'py, DLPackObject>> {
    let py = obj.py();
    let shared =
        |s: Arc<SharedTensor>| Bound::new(py, DLPackObject::shared(obj.clone().unbind(), s));
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
                Bound::new(py, DLPackObject::forward(obj.clone().unbind()))
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
        return Ok(o.clone());
    }
    if obj.is_instance_of::<Tensor>() {
        return shared(shared_of(obj)?);
    }
    let info = type_info(obj);
    if info.numpy {
        // SAFETY: exactly numpy.ndarray.
        let t = unsafe { crate::numpy::numpy_owned(obj)? };
        return shared(SharedTensor::new(t.into()));
    }
    if info.dlpack {
        return Bound::new(py, DLPackObject::forward(obj.clone().unbind()));
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
        return Bound::new(py, DLPackObject::forward(obj.clone().unbind()));
    }
    Err(type_err(format!(
        "asdlpack: cannot wrap an object of type {}: it has no __dlpack__, buffer protocol, \
         __array_interface__ or __cuda_array_interface__, and is not a DLPack capsule",
        type_name(obj)
    )))
}

/// Decodes an unconsumed DLPack capsule without consuming it.
#[pyfunction]
fn capsule_info<'py>(capsule: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    crate::capsule::capsule_info(capsule)
}

/// Managed tensors created by this module and not yet released.
#[pyfunction]
fn live_tensors() -> isize {
    crate::live::live_tensors()
}

const DEVICE_TYPES: &str = "\
import enum
DLDeviceType = enum.IntEnum('DLDeviceType', [
    ('kDLCPU', 1), ('kDLCUDA', 2), ('kDLCUDAHost', 3), ('kDLOpenCL', 4), ('kDLVulkan', 7),
    ('kDLMetal', 8), ('kDLVPI', 9), ('kDLROCM', 10), ('kDLROCMHost', 11), ('kDLExtDev', 12),
    ('kDLCUDAManaged', 13), ('kDLOneAPI', 14), ('kDLWebGPU', 15), ('kDLHexagon', 16),
    ('kDLMAIA', 17), ('kDLTrn', 18), ('kDLTPU', 19), ('kDLTPUHost', 20)], module='dlpack')
";

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // The classes' base type first, so that a failure is an import error.
    crate::bufferbase::init(py)?;
    m.add_function(wrap_pyfunction!(asdlpack, m)?)?;
    m.add_function(wrap_pyfunction!(capsule_info, m)?)?;
    m.add_function(wrap_pyfunction!(live_tensors, m)?)?;
    m.add_class::<DLPackObject>()?;
    m.add_class::<Tensor>()?;
    let ns = pyo3::types::PyDict::new(py);
    py.run(&std::ffi::CString::new(DEVICE_TYPES)?, Some(&ns), None)?;
    let e = ns
        .get_item("DLDeviceType")?
        .ok_or_else(|| type_err("DLDeviceType was not created"))?;
    let _ = DEVICE_TYPE_ENUM.set(py, e.clone().unbind());
    m.add("DLDeviceType", e)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let testing = PyModule::new(py, "_testing")?;
    crate::testing::register(&testing)?;
    crate::gpu::register(&testing)?;
    m.add_submodule(&testing)?;
    Ok(())
}
