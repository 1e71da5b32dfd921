//! The heap work of an export: the core's one block, nothing else (candle's
//! layout is read in place; the owner is a reference count).

use candle_core::{Device, Tensor};
use dlpack_test_support::{Counting, counted};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn an_export_is_one_allocation() {
    let t = Tensor::arange(0f32, 24., &Device::Cpu)
        .unwrap()
        .reshape((2, 3, 4))
        .unwrap();
    let views = [
        t.clone(),
        t.permute((2, 0, 1)).unwrap(),
        t.narrow(2, 1, 2).unwrap(),
    ];
    for v in &views {
        let ((), allocs, _) = counted(|| drop(dlpack_candle::export(v).unwrap()));
        assert_eq!(allocs, 1, "{:?}", v.layout());
    }
}
