//! # dlpack-py
//!
//! The PyO3 adapter of the workspace and the Python module `dlpack`.
//!
//! - [`capsule`]: DLPack capsules — creation (static names, a plain
//!   `extern "C"` destructor that frees only unconsumed capsules),
//!   consumption (the name decides the struct; rename exactly once; a second
//!   consumption raises `ValueError`), inspection.
//! - [`import`]: any Python object → an owned [`import::PyTensor`]
//!   by the fastest honest path (NumPy fields, the C exchange API cached per
//!   type, `__dlpack__`, buffer protocol, array interfaces, capsules), and
//!   [`import::with_borrowed`] for call-duration views.
//! - [`object`]: [`object::Tensor`] (Rust → Python) and
//!   [`object::DLPackObject`] (`asdlpack`), with `__dlpack__`,
//!   `__dlpack_device__`, `__dlpack_c_exchange_api__`, the buffer protocol,
//!   `__array_interface__` and `__cuda_array_interface__`.
//! - [`shared`]: the `__dlpack__` export of a shared tensor (plan in the
//!   core, one allocation per exported tensor, Arc-owned: no GIL to free).
//! - [`numpy`]: rust-numpy interop, zero-copy both ways.
//! - [`owner`]: owners holding Python objects or `Py_buffer`s, released from
//!   any thread, and leaked after interpreter shutdown.
//! - [`interface`]: typestr / PEP 3118 format ⇄ DLPack dtype.
//! - [`error`]: core errors → the spec's Python exceptions.
//! - [`live`]: the live-tensor counter for leak tests.
//! - [`pybuffer`]: the buffer protocol's C declarations (`Py_buffer`,
//!   `PyObject_GetBuffer`, ...), which pyo3 has under `abi3` only from 3.11.
//! - With the feature `module`, pydlpack 0.2.1's namespace over the same
//!   paths: `asdlpack`'s `impl_cls` and `todict` (`pydlpack.rs`), `Capsule`
//!   (`pycapsule.rs`), `dlpack.buffer.Buffer` (`bufferview.rs`).
//!
//! Python version: the `dlpack` wheel is built with the feature `abi3`
//! (pyo3's stable ABI at the lowest level the target allows; from 3.9 on
//! Unix): one `cp39-abi3` wheel for every CPython ≥ 3.9. Without it (the default) the crate uses the full API of the
//! interpreter pyo3 was configured for, so a crate linking it keeps fast
//! `#[pyfunction]` calls. The buffer protocol is in the limited API only from
//! 3.11, and pyo3 exposes it under `abi3` only then: [`pybuffer`] declares it
//! (CPython ≥ 3.9 exports it, and on Unix an extension's symbols resolve
//! against the running interpreter), and the `bf_getbuffer` slot of
//! [`Tensor`] and [`DLPackObject`] is on a small base type of theirs
//! (`dlpack._BufferBase`, made with `PyType_FromSpec`, whose buffer slots
//! CPython copies into the classes), in every configuration. On other
//! targets (Windows' `python3.dll` exports the buffer functions only from
//! 3.11) the feature `abi3` builds for 3.11 (a `cp311-abi3` wheel).
//!
//! Architecture invariant: every protocol decision is the core's
//! (`dlpack_core::protocol`); this crate only moves values across the
//! Python boundary. No panic crosses an `extern "C"` function.
//!
//! ```no_run
//! use dlpack_py::import::PyTensor;
//! use pyo3::prelude::*;
//!
//! #[pyfunction]
//! fn total(t: PyTensor) -> PyResult<f64> {
//!     let v = t.view();
//!     Ok(v.as_slice::<f64>().map_err(dlpack_py::error::to_pyerr)?.iter().sum())
//! }
//! ```

mod bufferbase;
pub mod capsule;
pub mod error;
pub mod gpu;
pub mod import;
pub mod interface;
pub mod live;
pub mod numpy;
pub mod object;
pub mod owner;
pub mod pybuffer;
pub mod shared;
mod testing;
pub mod typecache;
mod vcall;

#[cfg(feature = "module")]
mod bufferview;
#[cfg(feature = "module")]
mod module;
#[cfg(feature = "module")]
mod pycapsule;
#[cfg(feature = "module")]
mod pydlpack;

pub use import::{ExtractOptions, PyTensor, extract, with_borrowed};
pub use object::{DLPackObject, Tensor};
