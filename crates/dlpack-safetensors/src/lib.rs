//! # dlpack-safetensors
//!
//! `.safetensors` files as DLPack tensors, memory-mapped, on top of
//! [`dlpack_core`]: the file is opened once, mapped (private, copy-on-write:
//! see [`producer`]), its header
//! checked once, and each tensor handed out as a read-only DLPack tensor
//! whose data is inside the mapping and whose owner keeps the mapping alive.
//! NumPy, PyTorch and JAX (through `dlpack-py`'s `dlpack.load_safetensors`)
//! import them without a copy.
//!
//! - [`header`]: the format's rules, checked with checked arithmetic by a
//!   reader written for the header's JSON (every refusal a typed [`Error`]
//!   naming the value and the rule; pure, tested under miri).
//! - [`producer`]: [`SafetensorsFile`] (file → DLPack): `tensor` shares,
//!   `copy_tensor` copies (for misaligned data, or to write).
//! - [`consumer`]: DLPack → safetensors bytes ([`consumer::serialize`]),
//!   for files other readers load.
//! - [`Dtype`]: every element type of the format (`BOOL`, `U8`..`U64`,
//!   `I8`..`I64`, `F16`, `BF16`, `F32`, `F64`, `C64`, the float8 types
//!   `F8_E4M3` (`float8_e4m3fn`), `F8_E5M2`, `F8_E8M0` and their `FNUZ`
//!   variants, the packed `F4` and `F6`) and its DLPack dtype.
//!
//! Architecture invariant: no byte of a file is read as a tensor before the
//! whole header passed [`Header::parse`]; tensors are copied only by
//! `copy_tensor`.
//!
//! ```
//! use dlpack_core::managed::ManagedTensorVersioned;
//! use dlpack_core::export::Export;
//! use dlpack_safetensors::{SafetensorsFile, consumer};
//!
//! # if cfg!(miri) { return Ok(()); } // files: not under miri
//! // Write a file (here with this crate; any safetensors writer will do).
//! let w = Export::new(vec![1.0f32, 2.0, 3.0, 4.0]).shape(&[2, 2]).versioned()?;
//! let bytes = consumer::serialize(&[("w", &w.view())], &[("format", "pt")])?;
//! # let dir = std::env::temp_dir().join(format!("dlpack-st-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let path = dir.join("w.safetensors");
//! std::fs::write(&path, bytes)?;
//!
//! // Map it, and take a tensor out: read-only, no copy.
//! let file = SafetensorsFile::open(&path)?;
//! let raw = file.tensor("w")?.into_raw();
//! // ... a consumer takes `raw`; here, our own:
//! // SAFETY: `raw` comes from the export above and is consumed once.
//! let t = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
//! assert_eq!(t.view().shape(), &[2, 2]);
//! assert_eq!(t.view().as_slice::<f32>()?, &[1.0, 2.0, 3.0, 4.0]);
//! assert!(t.flags().is_read_only());
//! # drop((t, file));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod consumer;
mod dtype;
mod error;
pub mod header;
pub mod producer;

pub use dtype::Dtype;
pub use error::Error;
pub use header::{Header, MAX_HEADER_LEN, TensorInfo};
pub use producer::SafetensorsFile;
