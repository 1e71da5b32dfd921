//! Layer 1, `cpython`: what pyo3 does not declare under `abi3`, and the
//! raw side of holding CPython objects from Rust.
//!
//! - [`pybuffer`]: the buffer protocol (`Py_buffer`, `PyObject_GetBuffer`,
//!   ...), in the limited API only from 3.11.
//! - [`vcall`]: `__dlpack__` called by vectorcall with interned keyword
//!   names (and the legacy retry).
//! - [`methoddef`]: `METH_FASTCALL | METH_KEYWORDS` functions and method
//!   descriptors.
//! - [`owner`]: owners holding Python objects or `Py_buffer`s, released from
//!   any thread, and leaked after interpreter shutdown; [`live`]: the count
//!   of tensors they keep.
//!
//! Architecture invariant: imports only `error` of this crate; knows
//! nothing of DLPack's Python protocol beyond the names it calls.

pub(crate) mod live;
pub(crate) mod methoddef;
pub(crate) mod owner;
pub(crate) mod pybuffer;
pub(crate) mod vcall;
