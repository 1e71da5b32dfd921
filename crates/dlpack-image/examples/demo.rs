//! image → DLPack → image, zero-copy, through the raw C struct; and a
//! channel-first tensor, which only an explicit copy turns into an image.
//!
//! Run with `cargo run --release -p dlpack-image --example demo`.

use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_image::consumer::{copy_image, into_image};
use dlpack_image::{AsImage, IntoDlpack};
use image::{Rgb, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An RGB image moves into a tensor: height x width x 3 u8, no copy.
    let img = RgbImage::from_fn(4, 3, |x, y| Rgb([x as u8 * 60, y as u8 * 100, 255]));
    let pixels = img.as_ptr();
    let raw = img.into_dlpack_versioned()?.into_raw();
    // SAFETY: `raw` comes from the export above and is consumed once.
    let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
    let view = tensor.view();
    println!(
        "image demo: RgbImage 4x3 -> tensor shape {:?} strides {:?} {:?} -> ImageBuffer view at the same address: {}",
        view.shape(),
        view.strides().collect::<Vec<_>>(),
        view.dtype(),
        tensor.as_image::<Rgb<u8>>()?.as_ptr() == pixels,
    );
    // An image that owns the tensor outlives every other handle.
    let owned = into_image::<Rgb<u8>, _>(tensor)?;
    println!("owned image, pixel (3, 2) = {:?}", owned.get_pixel(3, 2).0);

    // Channel-first (3 x height x width), as PyTorch's vision models hold
    // images, seen as HWC through its strides: refused as a view, copied
    // when asked.
    let chw: Vec<f32> = (0..3 * 2 * 2).map(|i| i as f32).collect();
    let t = Export::new(chw)
        .shape(&[2, 2, 3])
        .strides(&[2, 1, 4])
        .versioned()?;
    match t.as_image::<Rgb<f32>>() {
        Err(err) => println!("view refused: {err}"),
        Ok(_) => println!("view granted (unexpected: the tensor is channel-first)"),
    }
    let copy = copy_image::<Rgb<f32>>(&t.view())?;
    println!("copy_image: pixel (1, 0) = {:?}", copy.get_pixel(1, 0).0);
    Ok(())
}
