//! The heap work of each conversion, counted: an export is exactly one
//! allocation (the core's block); an import two (burn's boxed allocation
//! controller and the shared handle its clones hold), whatever the size;
//! only the copying import allocates the elements, once.

use burn_std::TensorData;
use dlpack_burn::consumer::copy_tensor_data;
use dlpack_burn::{IntoBurn, IntoDlpack};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_test_support::{Counting, counted};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn export_is_one_allocation() {
    for shape in [vec![1 << 16], vec![16, 64, 64], vec![2; 8]] {
        let n: usize = shape.iter().product();
        let data = TensorData::new(vec![0.5f32; n], shape.clone());
        let (t, allocs, frees) = counted(|| data.into_dlpack_versioned().unwrap());
        assert_eq!(allocs, 1, "export of shape {shape:?}");
        // burn's own Shape is freed when it spills to the heap (8 dims).
        assert!(frees <= 1, "export of shape {shape:?}");
        let raw = t.into_raw();
        // SAFETY: the deleter of our own export, called once as a consumer would.
        let ((), allocs, frees) = counted(|| unsafe { ((*raw).deleter.unwrap())(raw) });
        assert_eq!(allocs, 0, "release");
        assert!(frees >= 2, "release frees the block and the bytes");
    }
}

#[test]
fn import_allocates_the_same_whatever_the_size() {
    let mut counts = Vec::new();
    for n in [4usize, 1 << 20] {
        let raw = TensorData::new(vec![7u16; n], [n])
            .into_dlpack_versioned()
            .unwrap()
            .into_raw();
        let (t, allocs, _) = counted(|| {
            // SAFETY: exported above, consumed once.
            unsafe { ManagedTensorVersioned::from_raw(raw) }.unwrap()
        });
        assert_eq!(allocs, 0, "taking ownership");
        let (copy, allocs, _) = counted(|| copy_tensor_data(&t.view()).unwrap());
        assert_eq!(copy.num_elements(), n);
        assert_eq!(
            allocs, 2,
            "a copy: its bytes and burn's controller, copied once"
        );
        let (data, allocs, _) = counted(|| t.into_tensor_data().unwrap());
        assert_eq!(data.num_elements(), n);
        counts.push(allocs);
    }
    assert_eq!(
        counts,
        [2, 2],
        "controller box + shared handle, no element buffer"
    );
}
