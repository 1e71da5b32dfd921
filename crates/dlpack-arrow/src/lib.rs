//! # dlpack-arrow
//!
//! Zero-copy exchange between [Apache Arrow](https://arrow.apache.org)
//! arrays of [arrow-rs](https://docs.rs/arrow) and DLPack tensors, on top of
//! [`dlpack_core`].
//!
//! - [`producer`]: a `PrimitiveArray` (integers, floats) becomes a 1-D
//!   tensor, a `FixedSizeListArray` (nested) an N-d one, and an array of the
//!   canonical `arrow.fixed_shape_tensor` extension type a tensor of its
//!   logical shape, its `permutation` mapped to strides
//!   ([`ArrowExport`](producer::ArrowExport), [`ToDlpack`]). The tensor
//!   keeps the Arrow buffer alive and is `READ_ONLY`: Arrow buffers are
//!   shared and immutable.
//! - [`consumer`]: a tensor becomes an Arrow array whose buffer owns it (a
//!   custom allocation; the producer's deleter runs when the last array
//!   using it is dropped) ([`ArrowImport`](consumer::ArrowImport)).
//!
//! Nulls are refused always (DLPack has no validity mask); bit-packed
//! booleans, strided tensors and dates/times are refused unless the caller
//! asks for a copy (or for the integers under temporal types).
//!
//! Architecture invariant: values are copied only when a `copy` option
//! says so; every array of foreign memory is built after the core's
//! validation, and every tensor of Arrow memory is read-only.
//!
//! ```
//! use arrow_array::{Array, Float64Array};
//! use arrow_array::types::Float64Type;
//! use dlpack_arrow::ToDlpack;
//! use dlpack_arrow::consumer::ArrowImport;
//! use dlpack_core::managed::ManagedTensorVersioned;
//!
//! let array = Float64Array::from(vec![0.5, 1.5, 2.5]);
//! let ptr = array.values().as_ptr();
//!
//! // Producer: hand the raw pointer to any DLPack consumer.
//! let raw = array.to_dlpack_versioned()?.into_raw();
//! drop(array); // the tensor keeps the buffer alive
//!
//! // Consumer: take ownership, wrap as an Arrow array, zero-copy.
//! // SAFETY: `raw` comes from an export and is consumed once.
//! let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
//! assert!(tensor.flags().is_read_only());
//! let back = ArrowImport::new(tensor).primitive::<Float64Type>()?;
//! assert_eq!(back.values().as_ptr(), ptr);
//! assert_eq!(back.value(1), 1.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod consumer;
mod error;
mod extension;
pub mod producer;

pub use error::Error;
pub use extension::NAME as FIXED_SHAPE_TENSOR;
pub use producer::ToDlpack;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
