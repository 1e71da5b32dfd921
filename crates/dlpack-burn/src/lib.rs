//! # dlpack-burn
//!
//! Exchange between [burn](https://burn.dev) tensors and DLPack tensors, on
//! top of [`dlpack_core`], zero-copy both ways on the CPU.
//!
//! - [`consumer`]: a validated tensor becomes burn's `TensorData` without a
//!   copy ([`into_tensor_data`](consumer::into_tensor_data)): its memory is
//!   wrapped in burn's `Bytes` through a custom allocation controller that
//!   owns the managed tensor and runs its deleter once. burn's ndarray
//!   backend keeps such bytes as borrowed storage, so a `Tensor` made from
//!   them ([`into_tensor`](consumer::into_tensor)) reads the producer's
//!   memory in place. Layouts that are not compact row-major are refused
//!   ([`Error::NotCompact`]) unless a copy is asked for
//!   ([`copy_tensor_data`](consumer::copy_tensor_data)).
//! - [`producer`]: `TensorData` becomes a managed tensor in one allocation
//!   that owns its `Bytes` ([`IntoDlpack`], [`DataExport`](producer::DataExport));
//!   a `Tensor` through `into_data`, which the ndarray backend answers with
//!   the tensor's own buffer.
//! - [`dtype`]: burn's `DType` ⇄ DLPack's dtype, one table; quantized data
//!   is refused with a typed error.
//! - `python` (feature `python`): burn data to and from Python tensors
//!   (NumPy, PyTorch, ...) through `dlpack-py`.
//!
//! Architecture invariant: every burn value over foreign memory is built
//! from a [`TensorView`](dlpack_core::tensor::TensorView), after the core's
//! validation; elements are copied only by
//! [`copy_tensor_data`](consumer::copy_tensor_data) (and by burn itself, on a
//! write to memory it does not own alone).
//!
//! ```
//! # #![allow(deprecated)]
//! use burn_tensor::{Device, Tensor, TensorData};
//! use dlpack_burn::{IntoBurn, IntoDlpack};
//! use dlpack_core::managed::ManagedTensorVersioned;
//!
//! let data = TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
//! let ptr = data.bytes().as_ptr();
//!
//! // Producer: hand the raw pointer to any DLPack consumer.
//! let raw = data.into_dlpack_versioned()?.into_raw();
//!
//! // Consumer: take ownership, wrap as TensorData and a burn tensor, zero-copy.
//! // SAFETY: `raw` comes from an export and is consumed once.
//! let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
//! let data = tensor.into_tensor_data()?;
//! assert_eq!(data.bytes().as_ptr(), ptr);
//! let t = Tensor::<2>::from_data(data, &Device::ndarray());
//! assert_eq!(t.sum().into_scalar::<f32>(), 21.0);
//! // Dropping the last holder runs the deleter once, which frees the bytes.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod allocation;
pub mod consumer;
pub mod dtype;
mod error;
pub mod producer;
#[cfg(feature = "python")]
pub mod python;

pub use consumer::IntoBurn;
pub use error::Error;
pub use producer::IntoDlpack;
