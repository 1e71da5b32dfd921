//! Layer 4, `classes`: the Python classes, one file each, and their
//! protocol surface.
//!
//! - [`tensor`]: `dlpack.Tensor`, a Rust-owned tensor exported to Python.
//! - [`object`]: `dlpack.DLPackObject`, what `asdlpack` returns (and
//!   `asdlpack` itself: classify once, then forward or share).
//! - [`surface`]: the protocol surface both speak, written once: `__dlpack__`
//!   by `METH_FASTCALL`, `__dlpack_device__`, the buffer export,
//!   `__array_interface__`, `__cuda_array_interface__`, properties.
//! - [`base`]: `dlpack._BufferBase`, the native base type that carries the
//!   buffer slot under `abi3` before 3.11.
//! - [`exchange`]: the DLPack 1.3 C exchange API table of both classes.
//! - [`capsule`], [`buffer`]: pydlpack's `Capsule` and `dlpack.buffer.Buffer`.
//! - [`convert`]: one-call conversions that make the classes (ndarray or a
//!   tensor → a Python object, a tensor → a NumPy array); [`device`]: device
//!   memory with pending work → a Python tensor.
//! - [`safetensors`] (feature `safetensors`): a `.safetensors` file → a dict
//!   of read-only `Tensor`s sharing one map.
//!
//! Architecture invariant: the classes move values across the boundary;
//! what they export is planned by the core and carried out by `export`.

pub(crate) mod base;
#[cfg(feature = "module")]
pub(crate) mod buffer;
#[cfg(feature = "module")]
pub(crate) mod capsule;
pub(crate) mod convert;
pub(crate) mod device;
pub(crate) mod exchange;
pub(crate) mod object;
#[cfg(feature = "safetensors")]
pub(crate) mod safetensors;
pub(crate) mod surface;
pub(crate) mod tensor;
