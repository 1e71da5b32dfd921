//! burn → DLPack → burn, zero-copy, through the raw C struct; and a
//! transposed tensor, which only an explicit copy turns into TensorData.
//!
//! Run with `cargo run --release -p dlpack-burn --example demo`.

#![allow(deprecated)] // burn 0.22 deprecates its ndarray backend for burn-flex

use burn_tensor::{Device, Float, Tensor, TensorData};
use dlpack_burn::consumer::{copy_tensor_data, into_tensor};
use dlpack_burn::{IntoBurn, IntoDlpack};
use dlpack_core::export::Export;
use dlpack_core::managed::ManagedTensorVersioned;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::ndarray();
    // A burn tensor on the ndarray backend hands its buffer to DLPack.
    let values: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let buffer = values.as_ptr().cast::<u8>();
    let tensor = Tensor::<2>::from_data(TensorData::new(values, [2, 3]), &device);
    let raw = tensor.into_dlpack_versioned()?.into_raw();
    // SAFETY: `raw` comes from the export above and is consumed once.
    let managed = unsafe { ManagedTensorVersioned::from_raw(raw) }?;
    let view = managed.view();
    let described = format!(
        "shape {:?} strides {:?} {:?}, same buffer: {}",
        view.shape(),
        view.strides().collect::<Vec<_>>(),
        view.dtype(),
        view.data_ptr().cast_const() == buffer,
    );
    let data = managed.into_tensor_data()?;
    println!(
        "burn demo: Tensor<2> (ndarray) -> tensor {described} -> TensorData at the same address: {}",
        data.bytes().as_ptr() == buffer,
    );

    // A foreign tensor becomes a burn tensor that reads it in place.
    let t = Export::new(vec![1.0f64, 2.0, 3.0, 4.0])
        .shape(&[2, 2])
        .versioned()?;
    let tensor: Tensor<2, Float> = into_tensor(t, &device)?;
    println!(
        "borrowed by burn: sum = {}",
        tensor.sum().into_scalar::<f64>()
    );

    // Transposed (column-major strides): refused as TensorData, copied when asked.
    let t = Export::new(vec![1i32, 2, 3, 4, 5, 6])
        .shape(&[3, 2])
        .strides(&[1, 3])
        .versioned()?;
    let copy = copy_tensor_data(&t.view())?;
    match t.into_tensor_data() {
        Err(err) => println!("view refused: {err}"),
        Ok(_) => println!("view granted (unexpected: the tensor is transposed)"),
    }
    println!("copy_tensor_data: {:?}", copy.as_slice::<i32>()?);
    Ok(())
}
