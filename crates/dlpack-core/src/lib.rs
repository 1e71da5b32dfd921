//! # dlpack-core
//!
//! The DLPack 1.3 C ABI and the rules of the DLPack standard, for `no_std`
//! Rust (with an optional `alloc` feature for exports).
//!
//! Layers, from raw to safe:
//!
//! - [`ffi`]: the structs, enums (as open newtypes), flags and the C exchange
//!   API table of `dlpack.h`, with the C names.
//! - [`dtype`], [`device`], [`layout`]: the meaning of the fields — element
//!   sizes, device properties, and checked layout arithmetic.
//! - [`tensor`]: [`TensorView`](tensor::TensorView), the validated borrowed
//!   view every typed access goes through.
//! - [`managed`]: owning handles that call a producer's deleter exactly once.
//! - [`export`] (feature `alloc`): Rust owners to managed tensors in a single
//!   allocation.
//! - [`protocol`], [`sync`]: the Python protocol's decisions (streams,
//!   versions, copies, capsule names) and the seam to device crates, as pure
//!   functions.
//! - [`error`]: typed errors and the Python exception each maps to.
//!
//! Architecture invariant: no FFI calls, no Python, no GPU, no allocation
//! without `alloc`. Every rule of the standard that can be a pure function
//! lives here.
//!
//! ```
//! use dlpack_core::export::Export;
//! use dlpack_core::managed::ManagedTensorVersioned;
//!
//! // Producer side: a Vec becomes a versioned managed tensor (one allocation).
//! let raw = Export::new(vec![1i32, 2, 3, 4]).shape(&[2, 2]).versioned()?.into_raw();
//!
//! // Consumer side: take ownership of the raw pointer, validated once.
//! let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
//! assert_eq!(tensor.view().as_slice::<i32>()?, &[1, 2, 3, 4]);
//! // Dropping `tensor` runs the producer's deleter exactly once.
//! # Ok::<(), dlpack_core::error::Error>(())
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod device;
pub mod dtype;
pub mod error;
#[cfg(feature = "alloc")]
pub mod export;
pub mod ffi;
pub mod layout;
pub mod managed;
pub mod protocol;
pub mod sync;
pub mod tensor;

pub use dtype::Element;
pub use error::{Error, ErrorKind};
