//! cudarc 0.19 against the simulator: the safe API loads it as `libcuda.so` and every call it
//! makes resolves (a missing export would panic "Missing symbol").

use gpu_sim_inspect::harness::{Setup, setup};

fn run(pools: bool) {
    let sim = match setup(if pools {
        "cudarc_two_streams_with_pools"
    } else {
        "cudarc_two_streams_without_pools"
    }) {
        Setup::Ready(sim) => sim,
        Setup::Delegated => return,
    };
    // SAFETY: only probes whether the library can be opened.
    assert!(unsafe { cudarc::driver::sys::is_culib_present() });
    sim.set_memory_pools(pools);

    let ctx = cudarc::driver::CudaContext::new(0).expect("context");
    let a = ctx.new_stream().expect("stream a");
    let b = ctx.new_stream().expect("stream b");
    let data: Vec<u32> = (0..256).collect();
    let on_a = a.clone_htod(&data).expect("htod");
    let mut on_b = b.alloc_zeros::<u32>(256).expect("alloc b");
    sim.reset_counters();

    let event = a.record_event(None).expect("record");
    b.wait(&event).expect("wait");
    b.memcpy_dtod(&on_a, &mut on_b).expect("dtod");
    let back = b.clone_dtoh(&on_b).expect("dtoh");
    assert_eq!(back, data);
    assert!(sim.races().is_empty(), "{:#?}", sim.races());
    assert!(sim.errors().is_empty(), "{:#?}", sim.errors());
    let counters = sim.counters();
    println!("pools={pools} counters after reset: {counters:?}");
    // Our explicit record and wait are there (cudarc's event tracking adds its own).
    assert!(sim.call_count("cuEventRecord") >= 1);
    assert!(sim.call_count("cuStreamWaitEvent") >= 1);
    assert_eq!(sim.call_count("cuMemcpyDtoDAsync_v2"), 1);

    drop((on_a, on_b, event));
    drop((a, b));
    drop(ctx);
    assert_eq!(sim.live_allocations(), 0, "cudarc freed everything");
    assert_eq!(sim.live_streams(), 0);
    assert_eq!(sim.live_events(), 0);
    assert!(sim.races().is_empty(), "{:#?}", sim.races());
    assert!(sim.errors().is_empty(), "{:#?}", sim.errors());
    if pools {
        assert_eq!(sim.call_count("cuMemFreeAsync"), 2);
    } else {
        assert_eq!(sim.call_count("cuMemFree_v2"), 2);
    }
}

#[test]
fn cudarc_two_streams_with_pools() {
    run(true);
}

#[test]
fn cudarc_two_streams_without_pools() {
    run(false);
}
