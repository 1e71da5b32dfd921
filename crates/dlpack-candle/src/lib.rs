//! # dlpack-candle
//!
//! DLPack for [`candle_core`] tensors, on top of [`dlpack_core`]:
//!
//! - [`producer`]: any CPU `Tensor` (any layout: shape, strides,
//!   `start_offset`; every candle dtype) becomes a
//!   `DLManagedTensorVersioned` **without a copy** and `READ_ONLY`, owned by
//!   a clone of the tensor ([`export`], [`ToDlpack`]). The module docs say
//!   why the data pointer stays valid after candle's storage lock is
//!   released.
//! - [`consumer`]: a DLPack tensor becomes a candle `Tensor` **by a copy**
//!   (candle's CPU storage is an owned `Vec`; it cannot wrap foreign
//!   memory): [`copy_into_tensor`], [`CopyIntoTensor`], from any strides.
//! - [`dtype`]: the one table candle `DType` ⇄ DLPack dtype (`F8E4M3` is
//!   `kDLFloat8_e4m3fn`; `F4`/`F6*` packed sub-byte).
//! - `python` (feature `python`): `to_python` / `copy_from_python`, the same
//!   with NumPy, PyTorch and any Python DLPack producer or consumer.
//!
//! CPU only: candle's `CudaStorage` is not adapted yet (candle's `cuda`
//! feature runs `nvcc` at build time; see the README).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlpack_candle::{CopyIntoTensor, ToDlpack};
//! use dlpack_core::managed::ManagedTensorVersioned;
//!
//! let t = Tensor::arange(0u32, 12, &Device::Cpu)?.reshape((3, 4))?;
//! let col = t.narrow(1, 1, 2)?; // a strided view: start_offset 1, strides [4, 1]
//!
//! // Producer: hand the raw pointer to any DLPack consumer.
//! let raw = col.to_dlpack()?.into_raw();
//!
//! // Consumer: take ownership; the view is candle's memory, zero-copy.
//! // SAFETY: `raw` comes from an export and is consumed once.
//! let d = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
//! assert_eq!(d.view().shape(), &[3, 2]);
//! assert_eq!(d.view().strides().collect::<Vec<_>>(), [4, 1]);
//!
//! // Back into candle: a copy (candle owns its storage).
//! let back = d.copy_into_tensor()?;
//! assert_eq!(back.to_vec2::<u32>()?, [[1, 2], [5, 6], [9, 10]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod consumer;
pub mod dtype;
mod error;
pub mod producer;
#[cfg(feature = "python")]
pub mod python;

pub use consumer::{CopyIntoTensor, copy_into_tensor};
pub use error::Error;
pub use producer::{ToDlpack, export};

// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
