//! # dlpack-image
//!
//! Zero-copy exchange between [`image`] buffers and DLPack tensors, on top
//! of [`dlpack_core`]. An image is a tensor of shape (height, width,
//! channels), compact, on the CPU, of its subpixel type: the layout NumPy,
//! PyTorch (`HWC`), PIL and OpenCV use. Every pixel type of `image` works
//! (`Luma`, `LumaA`, `Rgb`, `Rgba`) with every subpixel type that is a DLPack
//! element (`u8`, `u16`, `f32`, and the other integers and `f64`).
//!
//! - [`producer`]: an `ImageBuffer` over a `Vec`, a `Box<[T]>` or an `Arc<[T]>`
//!   becomes a managed tensor in one allocation, without copying pixels
//!   ([`IntoDlpack`], [`ImageExport`](producer::ImageExport)).
//! - [`consumer`]: a validated tensor becomes an `ImageBuffer<P, &[T]>` view
//!   ([`AsImage`], [`image_view`](consumer::image_view)), or an image that
//!   owns the tensor ([`into_image`](consumer::into_image)); tensors that
//!   are not compact are refused ([`Error::NotCompact`]) unless a copy is
//!   asked for ([`copy_image`](consumer::copy_image)). One-channel images
//!   are also accepted as rank-2 tensors (height, width), as NumPy and PIL
//!   hold grayscale.
//! - `python` (feature `python`): the same to and from NumPy, PyTorch
//!   and any Python DLPack producer or consumer, through `dlpack-py`.
//!
//! Architecture invariant: every image of foreign memory is built from a
//! [`TensorView`](dlpack_core::tensor::TensorView), after the core's
//! validation; pixels are copied only by [`copy_image`](consumer::copy_image).
//!
//! ```
//! use dlpack_core::managed::ManagedTensorVersioned;
//! use dlpack_image::{AsImage, IntoDlpack};
//! use image::{Rgb, RgbImage};
//!
//! let img = RgbImage::from_fn(4, 3, |x, y| Rgb([x as u8, y as u8, 0]));
//! let ptr = img.as_ptr();
//!
//! // Producer: hand the raw pointer to any DLPack consumer.
//! let raw = img.into_dlpack_versioned()?.into_raw();
//!
//! // Consumer: take ownership, view as an image, zero-copy.
//! // SAFETY: `raw` comes from an export and is consumed once.
//! let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
//! assert_eq!(tensor.view().shape(), &[3, 4, 3]); // height, width, channels
//! let view = tensor.as_image::<Rgb<u8>>()?;
//! assert_eq!(view.as_ptr(), ptr);
//! assert_eq!(view.get_pixel(3, 2), &Rgb([3, 2, 0]));
//! // Dropping `tensor` runs the deleter once, which drops the pixels.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod consumer;
mod error;
pub mod producer;
#[cfg(feature = "python")]
pub mod python;

pub use consumer::AsImage;
pub use error::Error;
pub use producer::IntoDlpack;

// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
