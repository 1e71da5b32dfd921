//! # dlpack-ndarray
//!
//! Zero-copy exchange between [`ndarray`] arrays and DLPack tensors, on top
//! of [`dlpack_core`].
//!
//! - [`import`]: a validated tensor becomes an [`ArrayView`](ndarray::ArrayView)
//!   (or, when it is writable and its elements do not overlap, an
//!   [`ArrayViewMut`](ndarray::ArrayViewMut)): negative strides,
//!   `byte_offset`, size-zero and 0-d tensors included. [`AsArray`] puts
//!   this on the owning handles.
//! - [`export`]: an [`Array`](ndarray::Array) or [`ArcArray`](ndarray::ArcArray)
//!   (or a view of one, kept alive by it) becomes a managed tensor in one
//!   allocation, without copying elements ([`IntoDlpack`],
//!   [`ArrayExport`](export::ArrayExport)).
//!
//! Architecture invariant: no element is ever copied; every view of foreign
//! memory goes through the core's [`TensorView`](dlpack_core::tensor::TensorView)
//! validation; the only unsafe code is the construction of views from
//! pointers in [`import`] and the owner description in [`export`].
//!
//! ```
//! use dlpack_core::managed::ManagedTensorVersioned;
//! use dlpack_ndarray::{AsArray, IntoDlpack};
//! use ndarray::{Array2, Ix2, s};
//!
//! let a = Array2::from_shape_fn((3, 4), |(i, j)| (4 * i + j) as f32);
//! let reversed = a.slice_move(s![..;-1, ..]); // negative row stride
//! let ptr = reversed.as_ptr();
//!
//! // Producer: hand the raw pointer to any DLPack consumer.
//! let raw = reversed.into_dlpack_versioned()?.into_raw();
//!
//! // Consumer: take ownership, view as ndarray, zero-copy.
//! // SAFETY: `raw` comes from an export and is consumed once.
//! let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
//! let view = tensor.as_array::<f32, Ix2>()?;
//! assert_eq!(view.as_ptr(), ptr);
//! assert_eq!(view[[0, 0]], 8.0);
//! assert_eq!(view.strides(), &[-4, 1]);
//! // Dropping `tensor` runs the deleter once, which drops the array.
//! # Ok::<(), dlpack_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod export;
pub mod import;

pub use export::IntoDlpack;
pub use import::AsArray;
