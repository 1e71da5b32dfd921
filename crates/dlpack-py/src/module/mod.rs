//! The extension module `dlpack._native`: registers the classes, the
//! functions ([`functions`], pydlpack's [`pydlpack::todict`]),
//! `DLDeviceType`, `DLDataTypeCode` and `_testing`; nothing else.

mod functions;
pub(crate) mod pydlpack;
#[cfg(all(feature = "shm", unix))]
mod shm;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::classes::object::DLPackObject;
use crate::classes::tensor::Tensor;
use crate::error::type_err;

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
    crate::classes::base::init(py)?;
    let general = wrap_pyfunction!(functions::asdlpack, m)?;
    let _ = functions::ASDLPACK_GENERAL.set(py, general.into_any().unbind());
    let name = m.name()?;
    // SAFETY: the def is a static; the module and its name are live; a new
    // reference or NULL with an exception set.
    let f = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCFunction_NewEx(
                std::ptr::from_ref(&functions::ASDLPACK_DEF.0).cast_mut(),
                m.as_ptr(),
                name.as_ptr(),
            ),
        )?
    };
    m.add("asdlpack", f)?;
    m.add_function(wrap_pyfunction!(functions::capsule_info, m)?)?;
    m.add_function(wrap_pyfunction!(functions::live_tensors, m)?)?;
    m.add_function(wrap_pyfunction!(functions::from_pickle, m)?)?;
    #[cfg(feature = "safetensors")]
    m.add_function(wrap_pyfunction!(functions::load_safetensors, m)?)?;
    #[cfg(feature = "safetensors")]
    m.add_class::<crate::classes::safetensors::PySafetensorsFile>()?;
    #[cfg(all(feature = "shm", unix))]
    shm::register(m)?;
    m.add_class::<DLPackObject>()?;
    m.add_class::<Tensor>()?;
    m.add_function(wrap_pyfunction!(pydlpack::todict, m)?)?;
    m.add_class::<crate::classes::capsule::Capsule>()?;
    m.add_class::<crate::classes::buffer::Buffer>()?;
    let ns = pyo3::types::PyDict::new(py);
    py.run(&std::ffi::CString::new(ENUMS)?, Some(&ns), None)?;
    let e = ns
        .get_item("DLDeviceType")?
        .ok_or_else(|| type_err("DLDeviceType was not created"))?;
    let _ = crate::values::device::DEVICE_TYPE_ENUM.set(py, e.clone().unbind());
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
