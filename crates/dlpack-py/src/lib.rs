//! # dlpack-py
//!
//! The PyO3 adapter of the workspace and the Python module `dlpack`.
//!
//! - Rust → Python: [`Tensor`] (a `#[pyclass]` speaking the whole DLPack
//!   protocol, plus the buffer protocol and the array interfaces);
//!   [`ndarray_to_python`] and [`tensor_to_pyarray`] in one call.
//! - Python → Rust: [`PyTensor`] (`FromPyObject`), [`extract`] with
//!   [`ExtractOptions`], [`with_borrowed`] for call-duration views,
//!   [`pyarray_to_tensor`].
//! - Python → Python: [`DLPackObject`], what `dlpack.asdlpack` returns.
//! - Device memory with pending work → Python: [`device_tensor`] (and
//!   `cuda_tensor`, `rocm_tensor` with the features `cuda`, `rocm`).
//! - Capsules from Rust: [`capsule`]. The device seam of an exported
//!   tensor: [`ExportSync`]; imports take a `dlpack_device::Runtime`
//!   ([`ExtractOptions::cuda`]).
//! - Errors: [`Error`] converts into `PyErr` with the exception the DLPack
//!   standard names (`BufferError`, `ValueError`, `TypeError`), so `?`
//!   works in a `#[pyfunction]`; [`DeviceError`] keeps a device crate's
//!   kind. [`prelude`] has what a `#[pyfunction]` needs.
//!
//! Inside, the crate is in layers that import only downward (cpython →
//! values → import / export → classes → module), checked by `cargo xtask
//! tidy`; ARCHITECTURE.md has the map, and the `abi3` story (one
//! `cp39-abi3` wheel; the buffer slot on a base type of the classes).
//!
//! Architecture invariant: every protocol decision is the core's
//! (`dlpack_core::protocol`); this crate only moves values across the
//! Python boundary. No panic crosses an `extern "C"` function.
//!
//! ```
//! use dlpack_py::prelude::*;
//!
//! #[pyfunction]
//! fn total(t: PyTensor) -> Result<f64, dlpack_py::Error> {
//!     Ok(t.view().as_slice::<f64>()?.iter().sum())
//! }
//! # Python::attach(|py| {
//! #     let f = wrap_pyfunction!(total, py).unwrap();
//! #     let a = py.import("numpy").unwrap().call_method1("ones", (3,)).unwrap();
//! #     assert_eq!(f.call1((a,)).unwrap().extract::<f64>().unwrap(), 3.0);
//! # });
//! ```

mod classes;
mod cpython;
mod error;
mod export;
mod gpu;
mod import;
mod sync;
mod testing;
mod values;

#[cfg(feature = "module")]
mod module;

pub mod prelude;

#[cfg(feature = "ndarray")]
pub use classes::convert::ndarray_to_python;
pub use classes::convert::tensor_to_pyarray;
#[cfg(feature = "cuda")]
pub use classes::device::cuda_tensor;
pub use classes::device::device_tensor;
#[cfg(feature = "rocm")]
pub use classes::device::rocm_tensor;
pub use classes::exchange::exchange_api;
pub use classes::object::DLPackObject;
pub use classes::tensor::Tensor;
pub use cpython::live::live_tensors;
pub use error::{DeviceError, Error, kind_err};
pub use import::numpy::pyarray_to_tensor;
pub use import::{ExtractOptions, ImportPath, Protocol, PyTensor, extract, with_borrowed};
pub use sync::ExportSync;

/// DLPack capsules from Rust: create one for an exported tensor, consume
/// one (exactly once), or read one without consuming it.
pub mod capsule {
    pub use crate::export::capsule::{
        RawManaged, capsule_info, consume_capsule, new_capsule, release_raw,
    };
}
