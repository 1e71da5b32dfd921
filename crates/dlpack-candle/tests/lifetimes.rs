//! Who keeps candle's storage alive, and that the exported address stays
//! valid after candle's storage lock is released: through candle's in-place
//! ops, after every candle handle is gone, and released from any thread.

use candle_core::{DType, Device, Storage, Tensor, Var};
use dlpack_candle::export;

fn storage_ptr(t: &Tensor) -> usize {
    let (s, _) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(cpu) => cpu.as_slice::<f32>().unwrap().as_ptr() as usize,
        _ => panic!("not CPU"),
    }
}

#[test]
fn the_export_outlives_every_candle_handle() {
    let t = Tensor::arange(0f32, 6., &Device::Cpu)
        .unwrap()
        .reshape((2, 3))
        .unwrap();
    let d = export(&t.t().unwrap()).unwrap();
    drop(t);
    // Only the export holds the storage now; its values are intact.
    let view = d.view();
    let p = view.element_ptr::<f32>().unwrap();
    // SAFETY: index (2, 1) is inside the shape [3, 2] with strides [1, 3].
    assert_eq!(unsafe { *p.add(2 + 3) }, 5.0);
    // Released on another thread.
    std::thread::spawn(move || drop(d)).join().unwrap();
}

#[test]
fn candle_in_place_ops_write_where_the_consumer_reads() {
    let var = Var::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    let before = storage_ptr(var.as_tensor());
    let d = export(var.as_tensor()).unwrap();
    let seen = |d: &dlpack_core::managed::ManagedTensorVersioned| {
        d.view().as_slice::<f32>().unwrap().to_vec()
    };
    assert_eq!(d.view().data_ptr() as usize, before);

    // Var::set, const_set, slice_set and scatter_set take candle's write
    // lock and write inside the same Vec: the address the consumer holds
    // stays the storage's, and the consumer sees the values.
    var.set(&Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(seen(&d), [1.0; 6]);
    var.as_tensor().const_set(2f32.into()).unwrap();
    assert_eq!(seen(&d), [2.0; 6]);
    let row = Tensor::new(&[[7f32, 8., 9.]], &Device::Cpu).unwrap();
    var.as_tensor().slice_set(&row, 0, 1).unwrap();
    assert_eq!(seen(&d), [2.0, 2.0, 2.0, 7.0, 8.0, 9.0]);
    let ids = Tensor::new(&[[0u32], [0]], &Device::Cpu).unwrap();
    let src = Tensor::new(&[[5f32], [6.]], &Device::Cpu).unwrap();
    var.as_tensor().scatter_set(&ids, &src, 1).unwrap();
    assert_eq!(seen(&d), [5.0, 2.0, 2.0, 6.0, 8.0, 9.0]);
    assert_eq!(storage_ptr(var.as_tensor()), before, "never reallocated");
    drop(var);
    assert_eq!(seen(&d), [5.0, 2.0, 2.0, 6.0, 8.0, 9.0]);
}
