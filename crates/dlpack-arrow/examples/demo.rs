//! Arrow → DLPack → Arrow, zero-copy, through the raw C struct; and a
//! column-major tensor, which becomes a `fixed_shape_tensor` with a
//! permutation instead of a copy.
//!
//! Run with `cargo run --release -p dlpack-arrow --example demo`.

use arrow_array::types::Float32Type;
use arrow_array::{Float32Array, Int32Array};
use dlpack_arrow::ToDlpack;
use dlpack_arrow::consumer::ArrowImport;
use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let array = Float32Array::from((0..6).map(|i| i as f32).collect::<Vec<_>>());
    let values = array.values().as_ptr();
    let raw = array.to_dlpack_versioned()?.into_raw();
    // SAFETY: `raw` comes from the export above and is consumed once.
    let tensor = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
    let read_only = tensor.flags().is_read_only();
    let back = ArrowImport::new(tensor).primitive::<Float32Type>()?;
    println!(
        "arrow demo: Float32Array[6] -> read-only tensor: {read_only} -> Float32Array at the same address: {}",
        back.values().as_ptr() == values,
    );

    // Two 2 x 3 tensors stored column-major: no copy, a permutation.
    let t = Export::new(vec![0i32; 12])
        .shape(&[2, 2, 3])
        .strides(&[6, 1, 2])
        .versioned()?;
    let (field, list) = ArrowImport::new(t).fixed_shape_tensor()?;
    println!(
        "column-major (2, 2, 3) tensor -> {} of {} with {}",
        field.extension_type_name().unwrap_or("?"),
        list.value_type(),
        field.metadata()["ARROW:extension:metadata"],
    );
    let nulls = Int32Array::from(vec![Some(1), None]);
    if let Err(err) = nulls.to_dlpack_versioned() {
        println!("refused: {err}");
    }
    Ok(())
}
