//! The CUDA driver and HIP runtime functions the scenario tests call, resolved from the loaded
//! simulator (the same object cudarc would load), with their C signatures.
#![allow(dead_code, non_snake_case)]

use std::ffi::{c_int, c_uint, c_void};

use gpu_sim_inspect::Sim;

pub type Ptr = *mut c_void;
pub type HostFn = Option<unsafe extern "C" fn(*mut c_void)>;

macro_rules! table {
    ($name:ident { $($f:ident : $t:ty),* $(,)? }) => {
        /// Resolved entry points.
        pub struct $name { $(pub $f: $t,)* }
        impl $name {
            pub fn resolve(sim: &Sim) -> Self {
                Self { $(
                    // SAFETY: the field types are the C signatures of these functions.
                    $f: unsafe { sim.raw_symbol::<$t>(stringify!($f)) }
                        .unwrap_or_else(|| panic!("missing symbol {}", stringify!($f))),
                )* }
            }
        }
    };
}

table!(Cuda {
    cuInit: unsafe extern "C" fn(c_uint) -> u32,
    cuDeviceGet: unsafe extern "C" fn(*mut c_int, c_int) -> u32,
    cuDevicePrimaryCtxRetain: unsafe extern "C" fn(*mut Ptr, c_int) -> u32,
    cuCtxSetCurrent: unsafe extern "C" fn(Ptr) -> u32,
    cuCtxGetCurrent: unsafe extern "C" fn(*mut Ptr) -> u32,
    cuCtxSynchronize: unsafe extern "C" fn() -> u32,
    cuStreamCreate: unsafe extern "C" fn(*mut Ptr, c_uint) -> u32,
    cuStreamDestroy_v2: unsafe extern "C" fn(Ptr) -> u32,
    cuStreamSynchronize: unsafe extern "C" fn(Ptr) -> u32,
    cuStreamWaitEvent: unsafe extern "C" fn(Ptr, Ptr, c_uint) -> u32,
    cuEventCreate: unsafe extern "C" fn(*mut Ptr, c_uint) -> u32,
    cuEventRecord: unsafe extern "C" fn(Ptr, Ptr) -> u32,
    cuEventDestroy_v2: unsafe extern "C" fn(Ptr) -> u32,
    cuMemAlloc_v2: unsafe extern "C" fn(*mut u64, usize) -> u32,
    cuMemFree_v2: unsafe extern "C" fn(u64) -> u32,
    cuMemsetD8Async: unsafe extern "C" fn(u64, u8, usize, Ptr) -> u32,
    cuMemcpyDtoDAsync_v2: unsafe extern "C" fn(u64, u64, usize, Ptr) -> u32,
    cuMemcpyHtoDAsync_v2: unsafe extern "C" fn(u64, *const c_void, usize, Ptr) -> u32,
    cuMemcpyDtoHAsync_v2: unsafe extern "C" fn(*mut c_void, u64, usize, Ptr) -> u32,
    cuMemcpyDtoH_v2: unsafe extern "C" fn(*mut c_void, u64, usize) -> u32,
    cuMemcpyHtoD_v2: unsafe extern "C" fn(u64, *const c_void, usize) -> u32,
    cuPointerGetAttribute: unsafe extern "C" fn(*mut c_void, c_uint, u64) -> u32,
    cuLaunchHostFunc: unsafe extern "C" fn(Ptr, HostFn, *mut c_void) -> u32,
});

/// ROCm 6 `hipPointerAttribute_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HipPointerAttribute {
    pub memory_type: u32,
    pub device: c_int,
    pub device_pointer: Ptr,
    pub host_pointer: Ptr,
    pub is_managed: c_int,
    pub allocation_flags: c_uint,
}

table!(Hip {
    hipGetDeviceCount: unsafe extern "C" fn(*mut c_int) -> c_int,
    hipSetDevice: unsafe extern "C" fn(c_int) -> c_int,
    hipStreamCreateWithFlags: unsafe extern "C" fn(*mut Ptr, c_uint) -> c_int,
    hipStreamSynchronize: unsafe extern "C" fn(Ptr) -> c_int,
    hipStreamWaitEvent: unsafe extern "C" fn(Ptr, Ptr, c_uint) -> c_int,
    hipEventCreate: unsafe extern "C" fn(*mut Ptr) -> c_int,
    hipEventRecord: unsafe extern "C" fn(Ptr, Ptr) -> c_int,
    hipMalloc: unsafe extern "C" fn(*mut Ptr, usize) -> c_int,
    hipFree: unsafe extern "C" fn(Ptr) -> c_int,
    hipMemsetAsync: unsafe extern "C" fn(Ptr, c_int, usize, Ptr) -> c_int,
    hipMemcpyAsync: unsafe extern "C" fn(Ptr, *const c_void, usize, c_int, Ptr) -> c_int,
    hipPointerGetAttributes: unsafe extern "C" fn(*mut HipPointerAttribute, *const c_void) -> c_int,
});

impl Cuda {
    /// cuInit + primary context of `device` made current on this thread.
    pub fn init(&self, device: c_int) -> Ptr {
        let mut ctx = std::ptr::null_mut();
        // SAFETY: valid out-pointers.
        unsafe {
            assert_eq!((self.cuInit)(0), 0);
            assert_eq!((self.cuDevicePrimaryCtxRetain)(&mut ctx, device), 0);
            assert_eq!((self.cuCtxSetCurrent)(ctx), 0);
        }
        ctx
    }

    pub fn stream(&self, flags: c_uint) -> Ptr {
        let mut s = std::ptr::null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { (self.cuStreamCreate)(&mut s, flags) }, 0);
        s
    }

    pub fn event(&self) -> Ptr {
        let mut e = std::ptr::null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { (self.cuEventCreate)(&mut e, 0) }, 0);
        e
    }

    pub fn alloc(&self, n: usize) -> u64 {
        let mut p = 0;
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { (self.cuMemAlloc_v2)(&mut p, n) }, 0);
        p
    }
}
