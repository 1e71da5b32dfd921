//! DLPack → image: validated tensors as `ImageBuffer`s, zero-copy.
//!
//! An image tensor is height × width × channels (HWC), compact (strides
//! `[width * channels, channels, 1]`; the stride of an axis of extent 1 is
//! not looked at, as DLPack allows), on host-accessible memory, of the pixel
//! type's subpixel dtype. For a one-channel pixel type (`Luma`) a rank-2
//! tensor (height, width) is accepted too, since that is how NumPy, PIL and
//! OpenCV hold grayscale images. Checks run in this order:
//!
//! 1. the core's validation (when the handle is made) and the element type:
//!    dtype, host-accessible device, alignment ([`Error::Tensor`]);
//! 2. rank ([`Error::Rank`]) and channel count ([`Error::Channels`]);
//! 3. height and width fit `u32` ([`Error::TooLarge`]);
//! 4. compact HWC layout ([`Error::NotCompact`]); only
//!    [`copy_image`] takes other layouts, and copies;
//! 5. for mutable images only: the producer marked the data writable
//!    ([`Error::NotWritable`] for `READ_ONLY` and for legacy tensors).
//!
//! Three ways to hold the result:
//!
//! - [`image_view`] / [`AsImage::as_image`]: an `ImageBuffer<P, &[T]>`
//!   borrowing the tensor (mutable: [`AsImage::as_image_mut`]);
//! - [`into_image`]: a [`TensorImage`], an `ImageBuffer` that owns the
//!   managed tensor through its container [`TensorPixels`], so it can be
//!   returned and kept; the producer's deleter runs when it is dropped
//!   ([`into_image_mut`] / [`TensorPixelsMut`] for writable tensors);
//! - [`copy_image`]: a new `ImageBuffer<P, Vec<T>>`, from any strides
//!   (crops, channel-first transposes, negative strides, broadcasts).
//!
//! Size-zero images (height or width 0) are accepted, whatever their
//! strides.

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use dlpack_core::Element;
use dlpack_core::ffi::DLManagedTensorVersioned;
use dlpack_core::managed::{AnyManagedTensor, Managed, ManagedAbi};
use dlpack_core::tensor::{Access, TensorView};
use image::{ImageBuffer, Pixel};

use crate::error::Error;

/// A read-only image of a validated tensor, zero-copy.
///
/// # Errors
///
/// The first rule of the [module](self)'s list the tensor breaks (1 to 4).
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_image::consumer::image_view;
/// use image::Rgb;
///
/// // A 2 x 1 RGB image: two rows of one pixel.
/// let t = Export::new(vec![1u8, 2, 3, 4, 5, 6]).shape(&[2, 1, 3]).versioned()?;
/// let img = image_view::<Rgb<u8>>(&t.view())?;
/// assert_eq!(img.dimensions(), (1, 2));
/// assert_eq!(img.get_pixel(0, 1), &Rgb([4, 5, 6]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn image_view<'a, P>(view: &TensorView<'a>) -> Result<ImageBuffer<P, &'a [P::Subpixel]>, Error>
where
    P: Pixel,
    P::Subpixel: Element,
{
    let hwc = Hwc::<P>::of(view)?;
    // SAFETY: `hwc.first` is the aligned first element of a compact run of
    // `hwc.len` subpixels (Hwc::of), valid and readable for 'a by the
    // TensorView contract; dangling and aligned for a size-zero tensor.
    let pixels = unsafe { core::slice::from_raw_parts(hwc.first.as_ptr(), hwc.len) };
    Ok(hwc.image(pixels))
}

/// A mutable image of a validated tensor, zero-copy.
///
/// Prefer [`AsImage::as_image_mut`] on an owning handle, or
/// [`into_image_mut`], which are safe.
///
/// # Safety
///
/// For `'a`, nothing else reads or writes the tensor's elements: the image
/// is a unique borrow.
///
/// # Errors
///
/// As [`image_view`], and [`Error::NotWritable`] unless the producer marked
/// the data writable (a versioned tensor without `READ_ONLY`).
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_image::consumer::image_view_mut;
/// use image::Luma;
///
/// let t = Export::new(vec![0u16; 6]).shape(&[2, 3]).versioned()?;
/// let view = t.view();
/// // SAFETY: `t` is not otherwise accessed while `img` lives.
/// let mut img = unsafe { image_view_mut::<Luma<u16>>(&view) }?;
/// img.put_pixel(2, 1, Luma([7]));
/// assert_eq!(view.as_slice::<u16>()?, &[0, 0, 0, 0, 0, 7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn image_view_mut<'a, P>(
    view: &TensorView<'a>,
) -> Result<ImageBuffer<P, &'a mut [P::Subpixel]>, Error>
where
    P: Pixel,
    P::Subpixel: Element,
{
    let hwc = Hwc::<P>::of(view)?;
    writable(view)?;
    // SAFETY: as in `image_view`; the producer marked the data writable, a
    // compact layout has no two indices on one element, and the caller
    // guarantees nothing else accesses the elements for 'a.
    let pixels = unsafe { core::slice::from_raw_parts_mut(hwc.first.as_ptr(), hwc.len) };
    Ok(hwc.image(pixels))
}

/// An image that owns the managed tensor it shows, zero-copy: the
/// producer's deleter runs when the image (or its container, taken back
/// with [`ImageBuffer::into_raw`]) is dropped.
///
/// # Errors
///
/// As [`image_view`]. The tensor is dropped (its deleter runs) on error.
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_image::consumer::{TensorImage, into_image};
/// use image::Rgba;
///
/// fn load() -> Result<TensorImage<Rgba<f32>>, dlpack_image::Error> {
///     let t = Export::new(vec![0.5f32; 2 * 2 * 4]).shape(&[2, 2, 4]).versioned()?;
///     into_image::<Rgba<f32>, _>(t) // the image keeps the tensor alive
/// }
/// let img = load()?;
/// assert_eq!(img.get_pixel(1, 1), &Rgba([0.5; 4]));
/// // Back to the tensor, e.g. to hand it on.
/// let tensor = img.into_raw().into_tensor();
/// assert_eq!(tensor.view().shape(), &[2, 2, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn into_image<P, M>(tensor: Managed<M>) -> Result<TensorImage<P, M>, Error>
where
    P: Pixel,
    P::Subpixel: Element,
    M: ManagedAbi,
{
    let hwc = Hwc::<P>::of(&tensor.view())?;
    let pixels = TensorPixels {
        first: hwc.first,
        len: hwc.len,
        tensor,
    };
    Ok(hwc.image(pixels))
}

/// A mutable image that owns the managed tensor it shows, zero-copy; see
/// [`into_image`].
///
/// # Errors
///
/// As [`into_image`], and [`Error::NotWritable`] unless the producer marked
/// the data writable (a versioned tensor without `READ_ONLY`).
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_image::consumer::into_image_mut;
/// use image::Luma;
///
/// let t = Export::new(vec![0u8; 4]).shape(&[2, 2, 1]).versioned()?;
/// let mut img = into_image_mut::<Luma<u8>, _>(t)?;
/// img.put_pixel(0, 1, Luma([255]));
/// let tensor = img.into_raw().into_tensor();
/// assert_eq!(tensor.view().as_slice::<u8>()?, &[0, 0, 255, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn into_image_mut<P, M>(
    tensor: Managed<M>,
) -> Result<ImageBuffer<P, TensorPixelsMut<P::Subpixel, M>>, Error>
where
    P: Pixel,
    P::Subpixel: Element,
    M: ManagedAbi,
{
    let view = tensor.view();
    let hwc = Hwc::<P>::of(&view)?;
    writable(&view)?;
    let pixels = TensorPixelsMut(TensorPixels {
        first: hwc.first,
        len: hwc.len,
        tensor,
    });
    Ok(hwc.image(pixels))
}

/// A new image holding a copy of the tensor's pixels, from any layout.
///
/// The explicit way to take what [`image_view`] refuses with
/// [`Error::NotCompact`]: crops (row strides wider than a row),
/// channel-first tensors transposed to HWC, negative strides (flips),
/// broadcasts (stride 0). A compact tensor is copied in one `memcpy`.
///
/// # Errors
///
/// As [`image_view`], without [`Error::NotCompact`].
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_image::{Error, consumer::{copy_image, image_view}};
/// use image::Luma;
///
/// // A 2 x 3 grayscale image seen upside down (row stride -3).
/// let t = Export::new(vec![1u8, 2, 3, 4, 5, 6])
///     .shape(&[2, 3])
///     .strides(&[-3, 1])
///     .byte_offset(3)
///     .versioned()?;
/// assert!(matches!(image_view::<Luma<u8>>(&t.view()), Err(Error::NotCompact { .. })));
/// let img = copy_image::<Luma<u8>>(&t.view())?;
/// assert_eq!(img.as_raw(), &[4, 5, 6, 1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn copy_image<P>(view: &TensorView<'_>) -> Result<ImageBuffer<P, Vec<P::Subpixel>>, Error>
where
    P: Pixel,
    P::Subpixel: Element,
{
    let (first, geometry) = checked::<P>(view)?;
    let Geometry {
        height,
        width,
        channels,
    } = geometry;
    let len = view.num_elements() as usize;
    let pixels = if len == 0 {
        Vec::new()
    } else if view.is_c_contiguous() {
        // SAFETY: compact run of `len` elements from the aligned first
        // one, readable for the view's lifetime (TensorView contract).
        unsafe { core::slice::from_raw_parts(first.as_ptr(), len) }.to_vec()
    } else {
        let strides = hwc_strides(view);
        let mut pixels = Vec::with_capacity(len);
        for y in 0..height as i64 {
            for x in 0..width as i64 {
                for c in 0..i64::from(channels) {
                    // Cannot overflow: each term lies between 0 and
                    // (extent - 1) * stride, so the sum lies within the
                    // layout's reach, which the core checked fits isize in
                    // bytes (hence in elements).
                    let offset = y * strides[0] + x * strides[1] + c * strides[2];
                    // SAFETY: an index inside the shape; its element lies in
                    // [first + start, first + end), memory of one allocation
                    // holding valid subpixels readable while `view` lives
                    // (TensorView contract); `first` is aligned and every
                    // offset is a whole number of elements.
                    pixels.push(unsafe { first.as_ptr().offset(offset as isize).read() });
                }
            }
        }
        pixels
    };
    Ok(ImageBuffer::from_raw(width, height, pixels)
        .expect("the buffer holds height * width * channels"))
}

/// Image views of owning tensor handles.
///
/// Implemented for [`Managed`] (both ABIs) and [`AnyManagedTensor`]. The
/// images borrow the handle, so the producer's deleter cannot run while
/// they live.
///
/// # Examples
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_image::AsImage;
/// use image::{LumaA, Rgb};
///
/// let mut t = Export::new(vec![0u16; 2 * 3 * 2]).shape(&[2, 3, 2]).versioned()?;
/// t.as_image_mut::<LumaA<u16>>()?.put_pixel(2, 0, LumaA([9, 65535]));
/// assert_eq!(t.as_image::<LumaA<u16>>()?.get_pixel(2, 0), &LumaA([9, 65535]));
/// // Two channels are not RGB.
/// assert!(t.as_image::<Rgb<u16>>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AsImage {
    /// A read-only image; see [`image_view`].
    ///
    /// # Errors
    ///
    /// As [`image_view`].
    fn as_image<P>(&self) -> Result<ImageBuffer<P, &[P::Subpixel]>, Error>
    where
        P: Pixel,
        P::Subpixel: Element;

    /// A mutable image, for writable tensors; see [`image_view_mut`].
    ///
    /// # Errors
    ///
    /// As [`image_view_mut`]: read-only and legacy tensors are refused with
    /// [`Error::NotWritable`].
    fn as_image_mut<P>(&mut self) -> Result<ImageBuffer<P, &mut [P::Subpixel]>, Error>
    where
        P: Pixel,
        P::Subpixel: Element;
}

impl<M: ManagedAbi> AsImage for Managed<M> {
    fn as_image<P>(&self) -> Result<ImageBuffer<P, &[P::Subpixel]>, Error>
    where
        P: Pixel,
        P::Subpixel: Element,
    {
        image_view(&self.view())
    }

    fn as_image_mut<P>(&mut self) -> Result<ImageBuffer<P, &mut [P::Subpixel]>, Error>
    where
        P: Pixel,
        P::Subpixel: Element,
    {
        let this: &Self = self;
        // SAFETY: the image borrows `self` mutably for its whole life, so no
        // other view of this handle's tensor can be made meanwhile.
        unsafe { image_view_mut(&this.view()) }
    }
}

impl AsImage for AnyManagedTensor {
    fn as_image<P>(&self) -> Result<ImageBuffer<P, &[P::Subpixel]>, Error>
    where
        P: Pixel,
        P::Subpixel: Element,
    {
        image_view(&self.view())
    }

    fn as_image_mut<P>(&mut self) -> Result<ImageBuffer<P, &mut [P::Subpixel]>, Error>
    where
        P: Pixel,
        P::Subpixel: Element,
    {
        match self {
            AnyManagedTensor::Legacy(t) => t.as_image_mut(),
            AnyManagedTensor::Versioned(t) => t.as_image_mut(),
        }
    }
}

/// An image that owns its managed tensor: what [`into_image`] returns.
pub type TensorImage<P, M = DLManagedTensorVersioned> =
    ImageBuffer<P, TensorPixels<<P as Pixel>::Subpixel, M>>;

/// The container of a [`TensorImage`]: the managed tensor, seen as its
/// compact run of subpixels. Dropping it runs the producer's deleter.
pub struct TensorPixels<T, M: ManagedAbi = DLManagedTensorVersioned> {
    /// The first subpixel, aligned (dangling for a size-zero image).
    first: NonNull<T>,
    len: usize,
    tensor: Managed<M>,
}

impl<T, M: ManagedAbi> TensorPixels<T, M> {
    /// The managed tensor, e.g. to hand it on to another consumer.
    pub fn into_tensor(self) -> Managed<M> {
        self.tensor
    }

    /// The managed tensor.
    pub fn tensor(&self) -> &Managed<M> {
        &self.tensor
    }
}

impl<T, M: ManagedAbi> Deref for TensorPixels<T, M> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `first` and `len` were checked by Hwc::of against the
        // tensor this value owns; its descriptor and data stay valid until
        // its deleter runs, which is after this borrow ends.
        unsafe { core::slice::from_raw_parts(self.first.as_ptr(), self.len) }
    }
}

impl<T, M: ManagedAbi> fmt::Debug for TensorPixels<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorPixels")
            .field("first", &self.first)
            .field("len", &self.len)
            .field("tensor", &self.tensor)
            .finish()
    }
}

// SAFETY: the tensor handle is Send and Sync (the core's `Managed`); the
// subpixels are shared only as `&[T]` through `&self`, so Send needs
// T: Send (reads from another thread) and Sync needs T: Sync.
unsafe impl<T: Send + Sync, M: ManagedAbi> Send for TensorPixels<T, M> {}
// SAFETY: as above.
unsafe impl<T: Sync, M: ManagedAbi> Sync for TensorPixels<T, M> {}

/// The container of a mutable image that owns its managed tensor (see
/// [`into_image_mut`]): [`TensorPixels`] with write access, made only for
/// tensors the producer marked writable.
pub struct TensorPixelsMut<T, M: ManagedAbi = DLManagedTensorVersioned>(TensorPixels<T, M>);

impl<T, M: ManagedAbi> TensorPixelsMut<T, M> {
    /// The managed tensor, e.g. to hand it on to another consumer.
    pub fn into_tensor(self) -> Managed<M> {
        self.0.tensor
    }

    /// The managed tensor.
    pub fn tensor(&self) -> &Managed<M> {
        &self.0.tensor
    }
}

impl<T, M: ManagedAbi> Deref for TensorPixelsMut<T, M> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, M: ManagedAbi> DerefMut for TensorPixelsMut<T, M> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in TensorPixels::deref; in addition the producer marked
        // the data writable (checked by into_image_mut), this value owns the
        // only handle to the tensor, and `&mut self` makes this the only
        // borrow of the subpixels.
        unsafe { core::slice::from_raw_parts_mut(self.0.first.as_ptr(), self.0.len) }
    }
}

impl<T, M: ManagedAbi> fmt::Debug for TensorPixelsMut<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TensorPixelsMut").field(&self.0).finish()
    }
}

/// Height, width and channels of an image tensor, checked against `P`.
#[derive(Copy, Clone)]
struct Geometry {
    height: u32,
    width: u32,
    channels: u8,
}

/// A checked compact image tensor: geometry and its run of subpixels.
struct Hwc<P: Pixel> {
    geometry: Geometry,
    first: NonNull<P::Subpixel>,
    len: usize,
    pixel: PhantomData<P>,
}

impl<P> Hwc<P>
where
    P: Pixel,
    P::Subpixel: Element,
{
    /// Rules 1 to 4 of the module's list.
    #[inline]
    fn of(view: &TensorView<'_>) -> Result<Self, Error> {
        let (first, geometry) = checked::<P>(view)?;
        let len = view.num_elements();
        if len != 0 && !view.is_c_contiguous() {
            return Err(not_compact(view, geometry));
        }
        Ok(Hwc {
            geometry,
            first,
            // The element count fits usize: the layout's byte reach fits
            // isize (core validation).
            len: len as usize,
            pixel: PhantomData,
        })
    }

    /// The image over `pixels`, which holds exactly the checked subpixels.
    #[inline]
    fn image<C: Deref<Target = [P::Subpixel]>>(&self, pixels: C) -> ImageBuffer<P, C> {
        let Geometry { height, width, .. } = self.geometry;
        match ImageBuffer::from_raw(width, height, pixels) {
            Some(image) => image,
            // The compact run holds height * width * channels subpixels.
            None => unreachable!("a compact HWC tensor fills its image"),
        }
    }
}

/// Rules 1 to 3: the first element and the geometry.
#[inline]
fn checked<P>(view: &TensorView<'_>) -> Result<(NonNull<P::Subpixel>, Geometry), Error>
where
    P: Pixel,
    P::Subpixel: Element,
{
    let first = view.element_ptr::<P::Subpixel>()?;
    let channels = P::CHANNEL_COUNT;
    let (height, width) = match *view.shape() {
        [height, width, found] => {
            if found != i64::from(channels) {
                return Err(Error::Channels {
                    expected: channels,
                    found,
                });
            }
            (height, width)
        }
        [height, width] if channels == 1 => (height, width),
        _ => {
            return Err(Error::Rank {
                shape: view.shape().to_vec(),
                channels,
            });
        }
    };
    let fit =
        |axis, extent: i64| u32::try_from(extent).map_err(|_| Error::TooLarge { axis, extent });
    let geometry = Geometry {
        height: fit("height", height)?,
        width: fit("width", width)?,
        channels,
    };
    // element_ptr never returns NULL (dangling and aligned when empty).
    let first = NonNull::new(first).ok_or(Error::Tensor(dlpack_core::Error::NullData {
        elements: view.num_elements(),
    }))?;
    Ok((first, geometry))
}

/// Rule 5: the producer marked the data writable.
fn writable(view: &TensorView<'_>) -> Result<(), Error> {
    match view.flags().access() {
        Access::Writable => Ok(()),
        access => Err(Error::NotWritable { access }),
    }
}

/// Height, width and channel strides in elements (channel stride 0 for a
/// rank-2 tensor, which has one channel).
fn hwc_strides(view: &TensorView<'_>) -> [i64; 3] {
    let mut strides = [0; 3];
    for (out, stride) in strides.iter_mut().zip(view.strides()) {
        *out = stride;
    }
    strides
}

#[cold]
fn not_compact(view: &TensorView<'_>, geometry: Geometry) -> Error {
    let channels = i64::from(geometry.channels);
    // Cannot overflow: width < 2^32 and channels < 2^8.
    let row = i64::from(geometry.width) * channels;
    let compact = match view.ndim() {
        2 => vec![row, 1],
        _ => vec![row, channels, 1],
    };
    Error::NotCompact {
        shape: view.shape().to_vec(),
        strides: view.strides().collect(),
        compact,
    }
}
