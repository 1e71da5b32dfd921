//! Python reach (feature `python`): images to and from NumPy, PyTorch, JAX
//! and any other DLPack consumer or producer, through `dlpack-py`'s public
//! API only.
//!
//! - [`to_python`]: an image (or an [`ImageExport`](crate::producer::ImageExport))
//!   becomes a `dlpack.Tensor`, which `numpy.from_dlpack` / `torch.from_dlpack`
//!   import without a copy: an array of shape (height, width, channels) over
//!   the image's own pixels.
//! - [`with_image`]: a Python HWC array seen as an `ImageBuffer<P, &[T]>`
//!   for the duration of a call, zero-copy (NumPy arrays are read in place,
//!   without an owning handle).
//! - [`from_python`]: a Python HWC array as an image that owns the imported
//!   tensor ([`TensorImage`]), zero-copy; the Python object may go away.
//! - [`copy_from_python`]: the one that copies, from any strides
//!   (a channel-first tensor permuted to HWC, a crop).
//!
//! Refusals are [`Error::Image`] with the crate's typed [`crate::Error`]
//! (the rules of [`consumer`](crate::consumer)); an object no import path
//! accepts is [`Error::Python`]. `Error` converts into the Python exception
//! its kind names (`TypeError` for a dtype, rank or channel mismatch,
//! `BufferError` for a layout), so `?` works in a `#[pyfunction]`.
//!
//! ```
//! use dlpack_image::python::{from_python, to_python};
//! use image::{Rgb, RgbImage};
//! use pyo3::prelude::*;
//!
//! Python::attach(|py| -> PyResult<()> {
//!     let img = RgbImage::from_fn(4, 3, |x, y| Rgb([x as u8, y as u8, 7]));
//!     let np = py.import("numpy")?;
//!     let a = np.call_method1("from_dlpack", (to_python(py, img)?,))?;
//!     assert_eq!(a.getattr("shape")?.extract::<(usize, usize, usize)>()?, (3, 4, 3));
//!     let back = from_python::<Rgb<u8>>(&a)?; // the same pixels, no copy
//!     assert_eq!(back.get_pixel(3, 2), &Rgb([3, 2, 7]));
//!     Ok(())
//! })
//! .unwrap();
//! ```

use core::fmt;

use dlpack_core::Element;
use dlpack_core::export::legacy_to_versioned;
use dlpack_core::managed::AnyManagedTensor;
use dlpack_py::{ExtractOptions, Tensor, extract, with_borrowed};
use image::{ImageBuffer, Pixel};
use pyo3::prelude::*;

use crate::IntoDlpack;
use crate::consumer::{TensorImage, copy_image, image_view, into_image};

/// Why a Python object did not become an image.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The object speaks no protocol `dlpack-py` imports, or its producer
    /// raised: the Python exception, unchanged.
    Python(PyErr),
    /// The imported tensor is not an image of the pixel type asked for
    /// (dtype, device, rank, channels, layout): the crate's typed error.
    Image(crate::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Python(err) => err.fmt(f),
            Error::Image(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Python(err) => Some(err),
            Error::Image(err) => Some(err),
        }
    }
}

impl From<PyErr> for Error {
    fn from(err: PyErr) -> Self {
        Error::Python(err)
    }
}

impl From<crate::Error> for Error {
    fn from(err: crate::Error) -> Self {
        Error::Image(err)
    }
}

impl From<dlpack_core::Error> for Error {
    fn from(err: dlpack_core::Error) -> Self {
        Error::Image(crate::Error::Tensor(err))
    }
}

/// The exception of the image error's [`kind`](crate::Error::kind), with its
/// message; a Python exception unchanged.
impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        match err {
            Error::Python(err) => err,
            Error::Image(err) => dlpack_py::kind_err(err.kind(), err.to_string()),
        }
    }
}

/// An image as a Python object that speaks DLPack (a `dlpack.Tensor`), in
/// one call and without copying: the object owns the image's container, so
/// the pixels live as long as any consumer's array over them. Writable
/// unless the export is read-only (a shared `Arc` container, or
/// [`ImageExport::read_only`](crate::producer::ImageExport::read_only)), which
/// NumPy honours.
///
/// # Errors
///
/// A `BufferError` for an image DLPack cannot describe (none in practice,
/// see [`ImageExport::versioned`](crate::producer::ImageExport::versioned));
/// the Python error if the object cannot be made.
pub fn to_python(py: Python<'_>, image: impl IntoDlpack) -> PyResult<Bound<'_, Tensor>> {
    let tensor = image
        .into_dlpack_versioned()
        .map_err(dlpack_py::Error::from)?;
    Bound::new(py, Tensor::new(tensor))
}

/// Runs `f` on an image view of a Python HWC array (rank 2 accepted for
/// one channel), zero-copy, valid for the call.
///
/// # Errors
///
/// [`Error::Image`] for a tensor that is not a compact image of `P` (the
/// [`image_view`] rules); [`Error::Python`] when the object cannot be
/// imported.
pub fn with_image<P, R>(
    obj: &Bound<'_, PyAny>,
    f: impl FnOnce(ImageBuffer<P, &[P::Subpixel]>) -> R,
) -> Result<R, Error>
where
    P: Pixel,
    P::Subpixel: Element,
{
    Ok(with_borrowed(obj, |view| image_view::<P>(&view).map(f))??)
}

/// A Python HWC array as an image that owns the imported tensor, zero-copy:
/// the pixels are the producer's, kept alive until the image is dropped
/// (then the producer's deleter runs, from any thread).
///
/// # Errors
///
/// As [`with_image`]; the imported tensor is released on error.
pub fn from_python<P>(obj: &Bound<'_, PyAny>) -> Result<TensorImage<P>, Error>
where
    P: Pixel,
    P::Subpixel: Element,
{
    let tensor = match extract(obj, &ExtractOptions::default())?.into_tensor() {
        AnyManagedTensor::Versioned(t) => t,
        // A legacy tensor cannot say that its data may be written: rewrapped
        // (zero-copy) as a read-only versioned one.
        AnyManagedTensor::Legacy(t) => legacy_to_versioned(t, 0)?,
    };
    Ok(into_image(tensor)?)
}

/// A new image holding a copy of a Python array's pixels, from any layout
/// (the explicit way to take what [`from_python`] refuses with
/// [`crate::Error::NotCompact`]).
///
/// # Errors
///
/// As [`with_image`], without [`crate::Error::NotCompact`].
pub fn copy_from_python<P>(
    obj: &Bound<'_, PyAny>,
) -> Result<ImageBuffer<P, Vec<P::Subpixel>>, Error>
where
    P: Pixel,
    P::Subpixel: Element,
{
    Ok(with_borrowed(obj, |view| copy_image::<P>(&view))??)
}
