//! Export → import round trips over every pixel type (`Luma`, `LumaA`,
//! `Rgb`, `Rgba`) × subpixel type (`u8`, `u16`, `f32`): pixels, dimensions,
//! the HWC shape and strides, and the data address (zero-copy) must
//! survive, for versioned and legacy tensors, `Vec`, `Box<[T]>` and `Arc<[T]>`
//! containers, borrowed and owned images, and through `into_raw`/`from_raw`.

use std::fmt::Debug;
use std::sync::Arc;

use dlpack_core::Element;
use dlpack_core::managed::{AnyManagedTensor, ManagedTensor, ManagedTensorVersioned};
use dlpack_core::tensor::Access;
use dlpack_image::consumer::{into_image, into_image_mut};
use dlpack_image::producer::ImageExport;
use dlpack_image::{AsImage, Error, IntoDlpack};
use image::{ImageBuffer, Luma, LumaA, Pixel, Rgb, Rgba};

const WIDTH: u32 = 3;
const HEIGHT: u32 = 2;

/// A `WIDTH` x `HEIGHT` image of distinct subpixels.
fn sample<P: Pixel>(value_at: fn(usize) -> P::Subpixel) -> ImageBuffer<P, Vec<P::Subpixel>> {
    let len = (WIDTH * HEIGHT) as usize * usize::from(P::CHANNEL_COUNT);
    ImageBuffer::from_raw(WIDTH, HEIGHT, (0..len).map(value_at).collect()).unwrap()
}

/// Every round trip of one pixel type.
fn round_trips<P>(value_at: fn(usize) -> P::Subpixel)
where
    P: Pixel + Debug + PartialEq,
    P::Subpixel: Element + Debug + Sync,
{
    let channels = i64::from(P::CHANNEL_COUNT);
    let expected = sample::<P>(value_at);

    // Vec, versioned, through the raw pointer, viewed.
    let img = expected.clone();
    let ptr = img.as_ptr();
    let raw = img.into_dlpack_versioned().unwrap().into_raw();
    // SAFETY: exported above, consumed once.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap();
    let view = t.view();
    assert_eq!(
        view.shape(),
        &[i64::from(HEIGHT), i64::from(WIDTH), channels]
    );
    assert_eq!(
        view.strides().collect::<Vec<_>>(),
        [i64::from(WIDTH) * channels, channels, 1]
    );
    assert_eq!(view.dtype(), P::Subpixel::DTYPE);
    assert!(t.flags().is_writable());
    let back = t.as_image::<P>().unwrap();
    assert_eq!(back.as_ptr(), ptr, "the view is not zero-copy");
    assert_eq!(back.dimensions(), (WIDTH, HEIGHT));
    assert!(back.pixels().eq(expected.pixels()));
    assert_eq!(back.get_pixel(2, 1), expected.get_pixel(2, 1));

    // Owned image of the same tensor, then back to the tensor.
    let owned = into_image::<P, _>(t).unwrap();
    assert_eq!(owned.as_ptr(), ptr, "the owned image is not zero-copy");
    assert!(owned.pixels().eq(expected.pixels()));
    let t = owned.into_raw().into_tensor();
    assert_eq!(t.view().data_ptr().cast_const(), ptr.cast());

    // Legacy, as AnyManagedTensor; mutable access is refused (unknown
    // writability), reading is not.
    let img = expected.clone();
    let ptr = img.as_ptr();
    let raw = img.into_dlpack_legacy().unwrap().into_raw();
    // SAFETY: exported above, consumed once.
    let mut t = AnyManagedTensor::from(unsafe { ManagedTensor::from_raw(raw) }.unwrap());
    assert_eq!(t.as_image::<P>().unwrap().as_ptr(), ptr);
    assert_eq!(
        t.as_image_mut::<P>().unwrap_err(),
        Error::NotWritable {
            access: Access::Unknown
        }
    );

    // Box<[T]>: writable; a write through the imported image lands in the
    // exported memory.
    let (w, h) = expected.dimensions();
    let boxed: Box<[P::Subpixel]> = expected.as_raw().clone().into_boxed_slice();
    let img = ImageBuffer::<P, _>::from_raw(w, h, boxed).unwrap();
    let ptr = img.as_ptr();
    let t = img.into_dlpack_versioned().unwrap();
    let mut owned = into_image_mut::<P, _>(t).unwrap();
    assert_eq!(owned.as_ptr(), ptr);
    let last = *expected.get_pixel(0, 0);
    owned.put_pixel(WIDTH - 1, HEIGHT - 1, last);
    let t = owned.into_raw().into_tensor();
    let data = t.view().as_slice::<P::Subpixel>().unwrap();
    assert_eq!(data.as_ptr(), ptr);
    assert_eq!(
        &data[data.len() - usize::from(P::CHANNEL_COUNT)..],
        last.channels()
    );

    // Arc<[T]>: read-only while shared, writable when unique; zero-copy
    // both ways.
    let shared: Arc<[P::Subpixel]> = expected.as_raw().clone().into();
    let img = ImageBuffer::<P, _>::from_raw(w, h, shared.clone()).unwrap();
    let t = img.clone().into_dlpack_versioned().unwrap();
    assert!(t.flags().is_read_only());
    assert_eq!(t.as_image::<P>().unwrap().as_ptr(), shared.as_ptr());
    assert!(t.as_image::<P>().unwrap().pixels().eq(expected.pixels()));
    drop((t, shared));
    let ptr = img.as_ptr();
    let mut t = img.into_dlpack_versioned().unwrap();
    assert!(t.flags().is_writable());
    let mut view = t.as_image_mut::<P>().unwrap();
    assert_eq!(view.as_ptr(), ptr);
    view.put_pixel(0, 0, last);
}

/// Every pixel type of one subpixel type (a macro: `Rgb<T>: Pixel` needs a
/// bound `image` keeps private).
macro_rules! all_pixels {
    ($name:ident, $t:ty, $value_at:expr) => {
        #[test]
        fn $name() {
            round_trips::<Luma<$t>>($value_at);
            round_trips::<LumaA<$t>>($value_at);
            round_trips::<Rgb<$t>>($value_at);
            round_trips::<Rgba<$t>>($value_at);
        }
    };
}

all_pixels!(u8_pixels, u8, |i| i as u8);
all_pixels!(u16_pixels, u16, |i| 1000 + 257 * i as u16);
all_pixels!(f32_pixels, f32, |i| i as f32 * 0.25 - 1.0);

#[test]
fn read_only_export_is_honoured() {
    let img = ImageBuffer::<Rgb<u8>, _>::from_pixel(2, 2, Rgb([1, 2, 3]));
    let mut t = ImageExport::new(img).read_only(true).versioned().unwrap();
    assert!(t.flags().is_read_only());
    let refused = Error::NotWritable {
        access: Access::ReadOnly,
    };
    assert_eq!(t.as_image_mut::<Rgb<u8>>().unwrap_err(), refused);
    assert_eq!(
        t.as_image::<Rgb<u8>>().unwrap().get_pixel(1, 1),
        &Rgb([1, 2, 3])
    );
    assert_eq!(into_image_mut::<Rgb<u8>, _>(t).unwrap_err(), refused);

    let img = ImageBuffer::<Rgb<u8>, _>::from_pixel(2, 2, Rgb([1, 2, 3]));
    assert_eq!(
        ImageExport::new(img).read_only(true).legacy().unwrap_err(),
        dlpack_core::Error::ReadOnlyLegacyExport
    );
}

#[test]
fn a_weak_reference_makes_an_arc_export_read_only() {
    let pixels: Arc<[u16]> = vec![7u16; 4].into();
    let weak = Arc::downgrade(&pixels);
    let img = ImageBuffer::<Luma<u16>, _>::from_raw(2, 2, pixels).unwrap();
    let t = img.into_dlpack_versioned().unwrap();
    // The Weak could be upgraded and read while a consumer writes.
    assert!(t.flags().is_read_only());
    assert_eq!(
        weak.upgrade().unwrap().as_ptr(),
        t.view().data_ptr().cast::<u16>()
    );
}

#[test]
fn luma_is_also_read_from_rank_2() {
    let t = dlpack_core::export::Export::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])
        .shape(&[2, 3])
        .versioned()
        .unwrap();
    let img = t.as_image::<Luma<f32>>().unwrap();
    assert_eq!(img.dimensions(), (3, 2));
    assert_eq!(img.get_pixel(0, 1), &Luma([4.0]));
    assert_eq!(img.as_ptr(), t.view().data_ptr().cast::<f32>());
}

#[test]
fn container_longer_than_the_image_exports_the_image_only() {
    let img = ImageBuffer::<LumaA<u8>, _>::from_raw(1, 2, vec![1, 2, 3, 4, 5, 6]).unwrap();
    let t = img.into_dlpack_versioned().unwrap();
    assert_eq!(t.view().shape(), &[2, 1, 2]);
    assert_eq!(t.view().as_slice::<u8>().unwrap(), &[1, 2, 3, 4]);
}

#[test]
fn empty_images() {
    for (w, h) in [(0, 0), (3, 0), (0, 2)] {
        let img = ImageBuffer::<Rgba<f32>, Vec<f32>>::new(w, h);
        let t = img.into_dlpack_versioned().unwrap();
        assert_eq!(t.view().shape(), &[i64::from(h), i64::from(w), 4]);
        let back = t.as_image::<Rgba<f32>>().unwrap();
        assert_eq!(back.dimensions(), (w, h));
        assert!(back.as_raw().is_empty());
        let owned = into_image::<Rgba<f32>, _>(t).unwrap();
        assert_eq!(owned.dimensions(), (w, h));
    }
}
