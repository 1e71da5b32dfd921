//! A `.safetensors` file mapped once, a tensor handed out read-only at its
//! place in the map (no copy) and outliving the file handle; a corrupt
//! header refused with the rule it breaks.
//!
//! Run with `cargo run --release -p dlpack-safetensors --example demo`.

use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_safetensors::{SafetensorsFile, consumer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("dlpack-safetensors-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("model.safetensors");
    let w = Export::new((0..6).map(|i| i as f32 * 0.5).collect::<Vec<_>>())
        .shape(&[2, 3])
        .versioned()?;
    let b = Export::new(vec![1u16, 2]).versioned()?;
    std::fs::write(
        &path,
        consumer::serialize(&[("w", &w.view()), ("b", &b.view())], &[("format", "pt")])?,
    )?;

    let file = SafetensorsFile::open(&path)?;
    let map = file.bytes().as_ptr_range();
    let raw = file.tensor("w")?.into_raw();
    drop(file); // the tensor holds the map
    // SAFETY: `raw` comes from the export above and is consumed once.
    let t = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
    let view = t.view();
    println!(
        "safetensors demo: mapped {} bytes; \"w\" -> tensor shape {:?} {:?} read-only: {}, \
         inside the map (no copy): {}, values {:?}",
        map.end as usize - map.start as usize,
        view.shape(),
        view.dtype(),
        t.flags().is_read_only(),
        map.contains(&view.data_ptr().cast_const()),
        view.as_slice::<f32>()?,
    );
    drop(t);

    // A header whose offsets run past the data: refused, never read.
    let mut bytes = std::fs::read(&path)?;
    bytes.truncate(bytes.len() - 4);
    match SafetensorsFile::from_bytes(bytes) {
        Err(err) => println!("truncated file refused: {err}"),
        Ok(_) => println!("truncated file accepted (unexpected)"),
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
