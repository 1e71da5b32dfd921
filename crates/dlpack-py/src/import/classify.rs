//! Which protocol a Python object speaks, decided once for [`extract`],
//! [`with_borrowed`] and `asdlpack`: [`classify`].
//!
//! [`extract`]: crate::import::extract
//! [`with_borrowed`]: crate::import::with_borrowed

use dlpack_core::ffi::DLPackExchangeAPI;
use pyo3::prelude::*;
use pyo3::{ffi, intern};

use crate::error::{type_err, type_name};
use crate::import::Protocol;
use crate::import::typecache::{TypeInfo, type_info};

/// What a Python object is to an importer, in the order of the import
/// paths (see [`crate::import`]).
#[derive(Debug)]
pub(crate) enum Kind<'py> {
    /// Exactly `numpy.ndarray` (its fields can be read directly).
    Numpy,
    /// A DLPack producer (`__dlpack__`), with its type's C exchange API
    /// table if it has one (a type with a table is a producer).
    Dlpack {
        /// The exchange API table of the type.
        exchange: Option<&'static DLPackExchangeAPI>,
    },
    /// A bare DLPack capsule.
    Capsule,
    /// The buffer protocol.
    Buffer,
    /// `__array_interface__`, and its value.
    ArrayInterface(Bound<'py, PyAny>),
    /// `__cuda_array_interface__`, and its value.
    CudaArrayInterface(Bound<'py, PyAny>),
    /// The Arrow PyCapsule interface: `__arrow_c_array__`, or with
    /// `stream` `__arrow_c_stream__`. After DLPack producers (pyarrow
    /// arrays are producers themselves, and keep that path), capsules and
    /// the buffer protocol; before the array interfaces when the type has
    /// the methods (so a costly `__getattr__` does not run for them).
    #[cfg(feature = "arrow")]
    Arrow {
        /// Only `__arrow_c_stream__`.
        stream: bool,
    },
}

/// The protocol `obj` speaks: with `forced`, that protocol (`TypeError` when
/// an array interface is forced on an object without one); else the first
/// of the order in [`crate::import`]. `Ok(None)`: none at all (the caller
/// names what it could not do).
///
/// Inlined, with [`classify_other`], into each caller: the exchange paths
/// (`asdlpack(obj)`, `extract`) then branch as if the checks were written
/// in them; out of line, the call and the `Kind` round trip cost ~37
/// instructions per `asdlpack(bytes)` (callgrind).
#[inline(always)]
pub(crate) fn classify<'py>(
    obj: &Bound<'py, PyAny>,
    forced: Option<Protocol>,
) -> PyResult<Option<Kind<'py>>> {
    if let Some(p) = forced {
        return classify_forced(obj, p).map(Some);
    }
    let info = type_info(obj);
    if info.numpy {
        return Ok(Some(Kind::Numpy));
    }
    if info.dlpack || info.exchange.is_some() {
        return Ok(Some(Kind::Dlpack {
            exchange: info.exchange,
        }));
    }
    classify_other(obj, info)
}

/// [`classify`] of an object whose type is neither NumPy's nor a producer's.
#[inline(always)]
fn classify_other<'py>(obj: &Bound<'py, PyAny>, info: TypeInfo) -> PyResult<Option<Kind<'py>>> {
    if is_capsule(obj) {
        return Ok(Some(Kind::Capsule));
    }
    // SAFETY: obj is live.
    if unsafe { crate::cpython::pybuffer::PyObject_CheckBuffer(obj.as_ptr()) } != 0 {
        return Ok(Some(Kind::Buffer));
    }
    // The Arrow methods of the type (cached), before the instance lookups
    // below, each of which may run the type's `__getattr__`.
    #[cfg(feature = "arrow")]
    if info.arrow_array || info.arrow_stream {
        return Ok(Some(Kind::Arrow {
            stream: !info.arrow_array,
        }));
    }
    #[cfg(not(feature = "arrow"))]
    let _ = info;
    let py = obj.py();
    if let Ok(d) = obj.getattr(intern!(py, "__array_interface__")) {
        return Ok(Some(Kind::ArrayInterface(d)));
    }
    if let Ok(d) = obj.getattr(intern!(py, "__cuda_array_interface__")) {
        return Ok(Some(Kind::CudaArrayInterface(d)));
    }
    if obj.hasattr(intern!(py, "__dlpack__"))? {
        return Ok(Some(Kind::Dlpack { exchange: None }));
    }
    #[cfg(feature = "arrow")]
    if let Some(kind) = classify_arrow(obj)? {
        return Ok(Some(kind));
    }
    Ok(None)
}

/// The Arrow PyCapsule interface as instance attributes, for objects that
/// speak nothing else.
#[cfg(feature = "arrow")]
#[cold]
fn classify_arrow<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Kind<'py>>> {
    let py = obj.py();
    if obj.hasattr(intern!(py, "__arrow_c_array__"))? {
        return Ok(Some(Kind::Arrow { stream: false }));
    }
    if obj.hasattr(intern!(py, "__arrow_c_stream__"))? {
        return Ok(Some(Kind::Arrow { stream: true }));
    }
    Ok(None)
}

/// [`classify`] with a forced protocol.
#[cold]
fn classify_forced<'py>(obj: &Bound<'py, PyAny>, p: Protocol) -> PyResult<Kind<'py>> {
    let py = obj.py();
    let attr = |name: &Bound<'py, pyo3::types::PyString>, protocol: &str| {
        obj.getattr(name).map_err(|_| {
            type_err(format!(
                "protocol=\"{protocol}\": {} has no {name}",
                type_name(obj)
            ))
        })
    };
    Ok(match p {
        Protocol::Dlpack => Kind::Dlpack { exchange: None },
        Protocol::Buffer => Kind::Buffer,
        Protocol::Capsule => Kind::Capsule,
        Protocol::ArrayInterface => {
            Kind::ArrayInterface(attr(intern!(py, "__array_interface__"), "array_interface")?)
        }
        Protocol::CudaArrayInterface => Kind::CudaArrayInterface(attr(
            intern!(py, "__cuda_array_interface__"),
            "cuda_array_interface",
        )?),
    })
}

/// Whether `obj` is exactly a `PyCapsule`.
pub(crate) fn is_capsule(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: obj is live.
    unsafe { ffi::PyCapsule_CheckExact(obj.as_ptr()) != 0 }
}
