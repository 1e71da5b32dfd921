//! candle → DLPack → candle: a transposed view exported zero-copy (candle's
//! own strides), and the one copy back into a candle tensor.
//!
//! Run with `cargo run --release -p dlpack-candle --example demo`.

use candle_core::{Device, Tensor};
use dlpack_candle::{CopyIntoTensor, ToDlpack};
use dlpack_core::managed::ManagedTensorVersioned;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Tensor::arange(0f32, 6., &Device::Cpu)?.reshape((2, 3))?;
    let view = t.t()?; // no copy in candle either: strides [1, 3]
    let raw = view.to_dlpack()?.into_raw();
    // SAFETY: `raw` comes from the export above and is consumed once.
    let d = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
    let v = d.view();
    let back = d.copy_into_tensor()?;
    println!(
        "candle demo: Tensor 2x3 transposed -> tensor shape {:?} strides {:?} {:?} read-only {} -> copied back into candle {:?}",
        v.shape(),
        v.strides().collect::<Vec<_>>(),
        v.dtype(),
        d.flags().is_read_only(),
        back.to_vec2::<f32>()?,
    );
    Ok(())
}
