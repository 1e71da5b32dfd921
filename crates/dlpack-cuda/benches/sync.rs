//! Times `raw::order_after` between two streams (one pooled event record
//! and one stream wait per call) — on a real GPU, or on the gpu-sim
//! simulator when its folder is on `LD_LIBRARY_PATH`. Without a driver it
//! skips with a message.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use cudarc::driver::CudaContext;

fn order_after(c: &mut Criterion) {
    if !dlpack_cuda::Raw::is_present() {
        eprintln!(
            "skipping the dlpack-cuda sync bench: no CUDA driver is loadable. Run it on the \
             simulator with LD_LIBRARY_PATH=<target>/gpu-sim/lib (built by `cargo xtask test-gpu --sim`)"
        );
        return;
    }
    let ctx = match CudaContext::new(0) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("skipping the dlpack-cuda sync bench: {e}");
            return;
        }
    };
    // SAFETY: the bench only orders streams; no buffer crosses them.
    unsafe { ctx.disable_event_tracking() };
    let (a, b) = (ctx.new_stream().unwrap(), ctx.new_stream().unwrap());
    let (pa, pb) = (a.cu_stream() as u64, b.cu_stream() as u64);
    let mut group = c.benchmark_group("dlpack_cuda");
    group.bench_function("order_after (distinct streams)", |bench| {
        bench.iter(|| dlpack_cuda::Raw::order_after(0, black_box(pa), black_box(pb)).unwrap())
    });
    group.bench_function("order_after (same stream)", |bench| {
        bench.iter(|| dlpack_cuda::Raw::order_after(0, black_box(pa), black_box(pa)).unwrap())
    });
    group.bench_function("CudaSync::order_streams (cudarc streams)", |bench| {
        bench.iter(|| dlpack_cuda::order_streams(&a, &b).unwrap())
    });
    group.finish();
}

criterion_group!(benches, order_after);
criterion_main!(benches);
