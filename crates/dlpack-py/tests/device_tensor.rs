//! Device memory with work pending on its stream → a Python tensor in one
//! call (`dlpack_py::cuda_tensor` / `rocm_tensor`): the consumer's
//! `__dlpack__(stream=...)` orders its stream after the memory's with one
//! record and one wait, and the free waits for the consumer's stream —
//! observed on the gpu-sim simulator.
#![cfg(all(feature = "cuda", feature = "rocm"))]

use gpu_sim_inspect::harness::{Setup, setup};
use gpu_sim_inspect::{Backend, Sim};
use pyo3::prelude::*;
use pyo3::types::PyDict;

const N: usize = 256;

/// Writes `value` over `ptr` on `producer`, makes the tensor with `make`,
/// exports it to a consumer on `consumer` that reads it there, then
/// releases the capsule and the tensor; `(records, waits, blocking)` of the
/// export.
fn exchange(
    sim: &Sim,
    backend: Backend,
    (ptr, producer, consumer): (u64, u64, u64),
    make: impl FnOnce(Python<'_>) -> PyResult<Bound<'_, PyAny>>,
) -> (u64, u64, u64) {
    let names = match backend {
        Backend::Cuda => ("cuEventRecord", "cuStreamWaitEvent"),
        Backend::Hip => ("hipEventRecord", "hipStreamWaitEvent"),
    };
    sim.launch_kernel_on(backend, producer, "produce", &[], &[(ptr, N)], |k| {
        assert!(k.store(ptr, &[7; N]));
    })
    .unwrap();
    Python::attach(|py| {
        let tensor = make(py).unwrap();
        let kwargs = PyDict::new(py);
        kwargs.set_item("stream", consumer as i64).unwrap();
        sim.reset_counters();
        let capsule = tensor.call_method("__dlpack__", (), Some(&kwargs)).unwrap();
        let counts = (
            sim.call_count(names.0),
            sim.call_count(names.1),
            sim.blocking_count(),
        );
        let mut seen = Vec::new();
        sim.launch_kernel_on(backend, consumer, "consume", &[(ptr, N)], &[], |k| {
            seen = k.load(ptr, N).unwrap();
        })
        .unwrap();
        assert_eq!(seen, vec![7; N]);
        drop(capsule);
        drop(tensor);
        counts
    })
}

#[test]
fn cuda_slice_to_python_orders_the_consumer_and_the_free() {
    let sim = match setup("cuda_slice_to_python_orders_the_consumer_and_the_free") {
        Setup::Ready(sim) => sim,
        Setup::Delegated => return,
    };
    dlpack_device::forget_pooled_events();
    let ctx = dlpack_cuda::cudarc::driver::CudaContext::new(0).unwrap();
    // SAFETY: the test orders every cross-stream use itself.
    unsafe { ctx.disable_event_tracking() };
    let (a, b) = (ctx.new_stream().unwrap(), ctx.new_stream().unwrap());
    let slice = a.alloc_zeros::<u8>(N).unwrap();
    let ptr = dlpack_cuda::cudarc::driver::DevicePtr::device_ptr(&slice, &a).0;
    let streams = (ptr, a.cu_stream() as u64, b.cu_stream() as u64);
    let counts = exchange(&sim, Backend::Cuda, streams, |py| {
        Ok(dlpack_py::cuda_tensor(py, slice, &[N as i64])?.into_any())
    });
    assert_eq!(counts, (1, 1, 0), "one record, one wait, no host wait");
    assert_eq!(sim.live_allocations(), 0);
    assert!(sim.races().is_empty(), "{:#?}", sim.races());
    assert!(sim.errors().is_empty(), "{:#?}", sim.errors());
}

#[test]
fn hip_buffer_to_python_orders_the_consumer_and_the_free() {
    let sim = match setup("hip_buffer_to_python_orders_the_consumer_and_the_free") {
        Setup::Ready(sim) => sim,
        Setup::Delegated => return,
    };
    dlpack_device::forget_pooled_events();
    let (a, b) = (
        dlpack_rocm::Raw::stream_create(0).unwrap(),
        dlpack_rocm::Raw::stream_create(0).unwrap(),
    );
    let buffer = dlpack_rocm::HipBuffer::<u8>::alloc(0, a, N).unwrap();
    let ptr = buffer.device_ptr();
    let counts = exchange(&sim, Backend::Hip, (ptr, a, b), |py| {
        Ok(dlpack_py::rocm_tensor(py, buffer, &[N as i64])?.into_any())
    });
    assert_eq!(counts, (1, 1, 0), "one record, one wait, no host wait");
    assert_eq!(sim.live_allocations(), 0);
    assert!(sim.races().is_empty(), "{:#?}", sim.races());
    assert!(sim.errors().is_empty(), "{:#?}", sim.errors());
}
