//! ndarray → DLPack → ndarray, zero-copy, through the raw C structs.
//!
//! Run with `cargo run --release -p dlpack-ndarray --example demo`.

use dlpack_core::ffi::DLManagedTensorVersioned;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_ndarray::export::ArrayExport;
use dlpack_ndarray::{AsArray, IntoDlpack};
use ndarray::{ArcArray2, Array2, Ix2, s};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. A 3x4 f32 matrix, exported whole: the array moves into the tensor.
    let a = Array2::from_shape_fn((3, 4), |(i, j)| (10 * i + j) as f32);
    println!("original array (3x4, C order):\n{a}\n");
    let original_ptr = a.as_ptr();
    let expected = a.clone();

    let raw = a.into_dlpack_versioned()?.into_raw();
    print_raw("exported matrix", raw);

    // SAFETY: `raw` comes from our export and is consumed exactly once.
    let mut tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
    let view = tensor.as_array::<f32, Ix2>()?;
    println!(
        "imported back: data pointer {:p} (original {original_ptr:p}) -> zero-copy: {}",
        view.as_ptr(),
        view.as_ptr() == original_ptr
    );
    println!("values equal the original: {}", view == expected);
    // Writable (versioned, READ_ONLY not set): write through the DLPack memory.
    tensor.as_array_mut::<f32, Ix2>()?[[0, 0]] = -1.0;
    println!(
        "after writing -1 at [0, 0] through a mutable view: {}\n",
        tensor.as_array::<f32, Ix2>()?.row(0)
    );
    drop(tensor);

    // 2. A transposed, row-reversed view of a shared matrix. The ArcArray
    //    keeps the memory alive; `watch` shares it, so the export is
    //    read-only, and `watch.is_unique()` shows when the export lets go.
    let watch = ArcArray2::from_shape_fn((3, 4), |(i, j)| (10 * i + j) as f32);
    let expected = watch.t().slice(s![..;-1, ..]).to_owned();
    let expected_first = watch.t().slice(s![..;-1, ..]).as_ptr();

    let raw = ArrayExport::new(watch.clone())
        .select(|v| v.reversed_axes().slice_move(s![..;-1, ..]))
        .versioned()?
        .into_raw();
    print_raw("transposed, rows reversed (4x3 view)", raw);

    // SAFETY: as above.
    let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
    let view = tensor.as_array::<f32, Ix2>()?;
    println!("imported view (strides {:?}):\n{view}", view.strides());
    println!(
        "first element at {:p}, inside the original's memory at the same place: {}",
        view.as_ptr(),
        view.as_ptr() == expected_first
    );
    println!("values equal the original view: {}", view == expected);
    let mut tensor = tensor;
    match tensor.as_array_mut::<f32, Ix2>() {
        Err(err) => println!("mutable view refused: {err}"),
        Ok(_) => println!("mutable view granted (unexpected: the data is shared)"),
    }
    println!(
        "before drop: watch is the only holder of the data: {}",
        watch.is_unique()
    );
    drop(tensor);
    println!(
        "after drop:  watch is the only holder of the data: {} (the deleter released the export's reference once)",
        watch.is_unique()
    );
    Ok(())
}

/// Prints the C struct's fields, read through the raw pointer as a C
/// consumer would.
fn print_raw(title: &str, raw: *mut DLManagedTensorVersioned) {
    // SAFETY: `raw` is a live tensor from our export; only read here.
    let m = unsafe { &*raw };
    let t = &m.dl_tensor;
    let ndim = t.ndim as usize;
    // SAFETY: an exported tensor has `ndim` shape and stride entries.
    let (shape, strides) = unsafe {
        (
            std::slice::from_raw_parts(t.shape, ndim),
            std::slice::from_raw_parts(t.strides, ndim),
        )
    };
    println!("DLManagedTensorVersioned at {raw:p} ({title}):");
    println!("  version     = {}.{}", m.version.major, m.version.minor);
    println!(
        "  flags       = {:#x}{}",
        m.flags,
        if m.flags & 1 != 0 { " (READ_ONLY)" } else { "" }
    );
    println!("  device      = {:?}", t.device);
    println!(
        "  dtype       = {:?} (code {}, bits {}, lanes {})",
        t.dtype, t.dtype.code, t.dtype.bits, t.dtype.lanes
    );
    println!("  ndim        = {}", t.ndim);
    println!("  shape       = {shape:?}");
    println!("  strides     = {strides:?} (elements)");
    println!("  byte_offset = {}", t.byte_offset);
    println!("  data        = {:p}", t.data);
}
