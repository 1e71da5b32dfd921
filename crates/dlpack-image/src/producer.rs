//! Image → DLPack: `ImageBuffer`s as managed tensors, zero-copy.
//!
//! The image's container is moved into the exported tensor (the core's
//! single allocation holds it next to the header, shape and strides); the
//! subpixels stay where they are. The tensor is height × width × channels
//! (HWC, compact: strides `[width * channels, channels, 1]`) of the pixel
//! type's subpixel dtype on the CPU; a one-channel image keeps its channel
//! axis (`[height, width, 1]`), so every image has the same rank.
//!
//! The containers that can own an exported tensor ([`PixelContainer`]):
//!
//! - `Vec<T>` and `Box<[T]>` (the image types `image` makes): the tensor
//!   owns them; it is writable.
//! - `Arc<[T]>`: the tensor holds one reference. It is writable when that is
//!   the only one (no other `Arc` or `Weak`), `READ_ONLY` when others share
//!   the pixels, since they could observe a consumer's writes. Cloning an
//!   `Arc` image and exporting the clone is how a borrowed image is shared
//!   without a copy: a DLPack tensor lives as long as its consumer wants
//!   (until its deleter runs), so it cannot borrow.
//!
//! A container longer than the image (which `ImageBuffer` allows) is
//! exported as the image's part only. Read-only tensors cannot travel as
//! legacy tensors ([`Error::ReadOnlyLegacyExport`]).
//!
//! Cost: one heap allocation per export (the core's block), none for the
//! shape (three extents on the stack).

use std::sync::Arc;

use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};
use dlpack_core::{Element, Error};
use image::{ImageBuffer, Pixel};

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for Vec<T> {}
    impl<T> Sealed for Box<[T]> {}
    impl<T> Sealed for std::sync::Arc<[T]> {}
}

/// An image container that can own the memory of an exported tensor:
/// `Vec<T>`, `Box<[T]>` and `Arc<[T]>`. Sealed.
pub trait PixelContainer: sealed::Sealed + Send + 'static {
    /// The subpixel type.
    type Subpixel: Element;

    /// The subpixels, with whether consumers may write them (the container
    /// holds them alone); the pointer grants write access when they may.
    #[doc(hidden)]
    fn pixels(&mut self) -> (*mut Self::Subpixel, usize, bool);
}

impl<T: Element> PixelContainer for Vec<T> {
    type Subpixel = T;

    #[inline]
    fn pixels(&mut self) -> (*mut T, usize, bool) {
        (self.as_mut_ptr(), self.len(), true)
    }
}

impl<T: Element> PixelContainer for Box<[T]> {
    type Subpixel = T;

    #[inline]
    fn pixels(&mut self) -> (*mut T, usize, bool) {
        (self.as_mut_ptr(), self.len(), true)
    }
}

impl<T: Element + Sync> PixelContainer for Arc<[T]> {
    type Subpixel = T;

    #[inline]
    fn pixels(&mut self) -> (*mut T, usize, bool) {
        let len = self.len();
        match Arc::get_mut(self) {
            // Unique (no other Arc, no Weak): nobody else can reach the
            // pixels once the Arc sits in the tensor.
            Some(pixels) => (pixels.as_mut_ptr(), len, true),
            // Shared: read-only, through a pointer of shared access.
            None => (self.as_ptr().cast_mut(), len, false),
        }
    }
}

/// The owner as the core sees it.
struct Owner<C>(C);

// SAFETY: the memory is the container's heap buffer (Vec, boxed slice or
// Arc allocation), which does not move when the container is moved and is
// freed only when it (or the last Arc sharing it) is dropped; every byte is
// an initialised subpixel. It is reported writable only when the container
// holds it alone, with a pointer of write access (`pixels`). The containers
// are Send (PixelContainer: Send).
unsafe impl<C: PixelContainer> TensorOwner for Owner<C> {
    #[inline]
    fn memory(&mut self) -> Memory {
        let (ptr, len, writable) = self.0.pixels();
        Memory {
            ptr: ptr.cast(),
            len: core::mem::size_of::<C::Subpixel>() * len,
            device: DLDevice::cpu(),
            dtype: Some(C::Subpixel::DTYPE),
            read_only: !writable,
        }
    }
}

/// Builder of an export of an image: choose read-only-ness, then
/// [`ImageExport::versioned`] or [`ImageExport::legacy`].
///
/// # Examples
///
/// ```
/// use dlpack_image::producer::ImageExport;
/// use image::RgbImage;
///
/// let img = RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3]));
/// let t = ImageExport::new(img).read_only(true).versioned()?;
/// assert_eq!(t.view().shape(), &[3, 4, 3]);
/// assert!(t.flags().is_read_only());
/// # Ok::<(), dlpack_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ImageExport<P: Pixel, C> {
    image: ImageBuffer<P, C>,
    read_only: bool,
}

impl<P, C> ImageExport<P, C>
where
    P: Pixel,
    C: PixelContainer<Subpixel = P::Subpixel> + core::ops::Deref<Target = [P::Subpixel]>,
{
    /// Starts an export of the whole image.
    pub fn new(image: ImageBuffer<P, C>) -> Self {
        ImageExport {
            image,
            read_only: false,
        }
    }

    /// Asks for a `READ_ONLY` export even when the container could grant
    /// write access. (Shared `Arc`s are always read-only.)
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Builds a `DLManagedTensorVersioned` (writable unless read-only was
    /// asked for or the pixels are shared).
    ///
    /// # Errors
    ///
    /// None in practice: [`Error::LayoutOverflow`] would need an image whose
    /// subpixels span more than `isize::MAX` bytes, which no container
    /// holds. The image is dropped on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_image::producer::ImageExport;
    /// use image::{ImageBuffer, LumaA};
    ///
    /// let img: ImageBuffer<LumaA<u16>, Vec<u16>> = ImageBuffer::new(5, 2);
    /// let t = ImageExport::new(img).versioned()?;
    /// assert_eq!(t.view().shape(), &[2, 5, 2]);
    /// assert!(t.flags().is_writable());
    /// # Ok::<(), dlpack_core::Error>(())
    /// ```
    #[inline]
    pub fn versioned(self) -> Result<ManagedTensorVersioned, Error> {
        self.build(|export| export.versioned())
    }

    /// Builds a legacy `DLManagedTensor`.
    ///
    /// # Errors
    ///
    /// As [`ImageExport::versioned`], and [`Error::ReadOnlyLegacyExport`]
    /// when the export is read-only (asked for, or a shared `Arc`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use dlpack_core::Error;
    /// use dlpack_image::producer::ImageExport;
    /// use image::{ImageBuffer, Luma};
    ///
    /// let pixels: Arc<[f32]> = vec![0.0; 6].into();
    /// let img = ImageBuffer::<Luma<f32>, _>::from_raw(3, 2, pixels.clone()).unwrap();
    /// // `pixels` shares the data: read-only, which a legacy tensor cannot say.
    /// assert_eq!(ImageExport::new(img.clone()).legacy().unwrap_err(), Error::ReadOnlyLegacyExport);
    /// drop(pixels);
    /// assert!(ImageExport::new(img).legacy().is_ok()); // unique now
    /// ```
    #[inline]
    pub fn legacy(self) -> Result<ManagedTensor, Error> {
        self.build(|export| export.legacy())
    }

    // Inlined into `versioned` / `legacy` and so into the caller, as the
    // core's builder is: the container then moves into the block without
    // passing through this builder in memory.
    #[inline(always)]
    fn build<R>(
        self,
        finish: impl FnOnce(Export<'_, Owner<C>>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let (width, height) = self.image.dimensions();
        let shape = [
            i64::from(height),
            i64::from(width),
            i64::from(P::CHANNEL_COUNT),
        ];
        finish(
            Export::new(Owner(self.image.into_raw()))
                .shape(&shape)
                .read_only(self.read_only),
        )
    }
}

/// Conversion of an owned image (or an [`ImageExport`]) into a managed
/// tensor, zero-copy.
///
/// # Examples
///
/// ```
/// use dlpack_core::managed::ManagedTensorVersioned;
/// use dlpack_image::{AsImage, IntoDlpack};
/// use image::{Rgba, RgbaImage};
///
/// let img = RgbaImage::from_pixel(2, 2, Rgba([10, 20, 30, 255]));
/// let ptr = img.as_ptr();
/// let raw = img.into_dlpack_versioned()?.into_raw(); // to any DLPack consumer
///
/// // SAFETY: `raw` comes from an export and is consumed once.
/// let t = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
/// let back = t.as_image::<Rgba<u8>>()?;
/// assert_eq!(back.as_ptr(), ptr); // zero-copy
/// assert_eq!(back.get_pixel(1, 1), &Rgba([10, 20, 30, 255]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait IntoDlpack {
    /// Builds a `DLManagedTensorVersioned`.
    ///
    /// # Errors
    ///
    /// As [`ImageExport::versioned`].
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error>;

    /// Builds a legacy `DLManagedTensor`.
    ///
    /// # Errors
    ///
    /// As [`ImageExport::legacy`].
    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error>;
}

impl<P, C> IntoDlpack for ImageBuffer<P, C>
where
    P: Pixel,
    C: PixelContainer<Subpixel = P::Subpixel> + core::ops::Deref<Target = [P::Subpixel]>,
{
    #[inline]
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        ImageExport::new(self).versioned()
    }

    #[inline]
    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        ImageExport::new(self).legacy()
    }
}

impl<P, C> IntoDlpack for ImageExport<P, C>
where
    P: Pixel,
    C: PixelContainer<Subpixel = P::Subpixel> + core::ops::Deref<Target = [P::Subpixel]>,
{
    #[inline]
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        self.versioned()
    }

    #[inline]
    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        self.legacy()
    }
}
