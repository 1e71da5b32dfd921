//! A stream-synchronised GPU exchange with dlpack-cuda: a producer writes a
//! buffer on stream A, exports it as a DLPack tensor for a consumer on
//! stream B (`__dlpack__(stream=B)`), the consumer copies it back to the
//! host through `dl_device=(kDLCPU, 0)`, and releases it.
//!
//! Runs on a real GPU when one is present, else on the gpu-sim simulator
//! (`cargo xtask demo` builds it and puts it on `LD_LIBRARY_PATH`); on the
//! simulator it prints what was recorded, waited and blocked.

use std::process::ExitCode;

use cudarc::driver::CudaContext;
use dlpack_core::ffi::DLDevice;
use dlpack_core::protocol::{DlpackRequest, plan_dlpack};
use dlpack_cuda::{CudaOwner, ExportLayout, fulfil};
use gpu_sim_inspect::Sim;

fn main() -> ExitCode {
    if !dlpack_cuda::Raw::is_present() {
        if let Some(dir) = std::env::var_os("GPUSIM_LIB_DIR") {
            // glibc reads LD_LIBRARY_PATH at start-up only: re-run with it.
            if std::env::var_os("GPU_DEMO_CHILD").is_none() {
                let mut path = std::ffi::OsString::from(&dir);
                if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
                    path.push(":");
                    path.push(old);
                }
                let status = std::process::Command::new(std::env::current_exe().unwrap())
                    .env("LD_LIBRARY_PATH", path)
                    .env("GPU_DEMO_CHILD", "1")
                    .status();
                return match status {
                    Ok(s) if s.success() => ExitCode::SUCCESS,
                    _ => ExitCode::FAILURE,
                };
            }
        }
        eprintln!(
            "No CUDA driver (libcuda.so) is loadable, and GPUSIM_LIB_DIR is not set.\n\
             Run the demo on the GPU simulator with:  cargo xtask demo\n\
             (or set LD_LIBRARY_PATH to a folder with the simulator as libcuda.so)."
        );
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpu demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The simulator answers to the inspection API; a real driver does not.
    let sim = Sim::load_by_name().ok();
    println!(
        "running on {}",
        if sim.is_some() {
            "the gpu-sim simulator"
        } else {
            "a CUDA driver"
        }
    );
    let ctx = CudaContext::new(0)?;
    // SAFETY: every cross-stream use below is ordered through dlpack-cuda.
    unsafe { ctx.disable_event_tracking() };
    let (a, b) = (ctx.new_stream()?, ctx.new_stream()?);
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
    let buffer = a.clone_htod(&data)?; // the producer's work, on stream A
    if let Some(sim) = &sim {
        sim.reset_counters();
    }

    // The consumer works on stream B and asks for __dlpack__(stream=B).
    let stream_arg = dlpack_cuda::consumer_stream_arg(&b);
    let request = DlpackRequest {
        stream: Some(stream_arg),
        max_version: Some((1, 3)),
        ..Default::default()
    };
    let owner = CudaOwner::new(buffer);
    let plan = plan_dlpack(owner.device(), false, &request)?;
    let tensor = fulfil(owner, ExportLayout::shape(&[3, 4]), &plan)?;
    println!(
        "exported {:?} on {:?} for a consumer on stream {stream_arg:#x}",
        tensor.view().shape(),
        tensor.view().device()
    );
    if let Some(sim) = &sim {
        println!(
            "  share:  cuEventRecord={} cuStreamWaitEvent={} cuEventCreate={} (pool warm-up) host-blocking={}",
            sim.call_count("cuEventRecord"),
            sim.call_count("cuStreamWaitEvent"),
            sim.call_count("cuEventCreate"),
            sim.blocking_count()
        );
        sim.reset_counters();
    }

    // The consumer reads it back to the host: dl_device=(kDLCPU, 0).
    let view = dlpack_cuda::CudaTensorView::<f32>::new(tensor.view())?;
    let host = view.to_vec(dlpack_core::protocol::DeviceStream::Handle(
        b.cu_stream() as u64
    ))?;
    println!(
        "consumer read {host:?} (device from the pointer: {:?})",
        view.device()
    );
    assert_eq!(host, data);
    if let Some(sim) = &sim {
        println!(
            "  copy:   cuMemcpyDtoHAsync_v2={} host-blocking={} (the host is the consumer)",
            sim.call_count("cuMemcpyDtoHAsync_v2"),
            sim.blocking_count()
        );
        sim.reset_counters();
    }

    // Release: the deleter orders the free after stream B.
    drop(tensor);
    if let Some(sim) = &sim {
        println!(
            "  free:   cuEventRecord={} cuStreamWaitEvent={} cuMemFreeAsync={} host-blocking={}",
            sim.call_count("cuEventRecord"),
            sim.call_count("cuStreamWaitEvent"),
            sim.call_count("cuMemFreeAsync"),
            sim.blocking_count()
        );
        let races = sim.races();
        println!("  races reported by the simulator: {}", races.len());
        for race in &races {
            println!("    {race}");
        }
        if !races.is_empty() {
            return Err("the simulator reported races".into());
        }
    }

    // A copy for the host through the producer's plan, with IS_COPIED.
    let request = DlpackRequest {
        max_version: Some((1, 3)),
        dl_device: Some(DLDevice::cpu()),
        ..Default::default()
    };
    let owner = CudaOwner::new(a.clone_htod(&data)?);
    let plan = plan_dlpack(owner.device(), false, &request)?;
    let copy = fulfil(owner, ExportLayout::shape(&[3, 4]), &plan)?;
    println!(
        "dl_device=(kDLCPU, 0): {:?} on {:?}, flags {:?}",
        copy.view().as_slice::<f32>()?,
        copy.view().device(),
        copy.flags()
    );
    Ok(())
}
