//! The raw C ABI of `dlpack.h` 1.3, with the C type and field names.
//!
//! This is the lowest layer of the crate: plain `#[repr(C)]` data, no methods
//! that interpret it. Everything here is exactly what crosses a C or Python
//! boundary; the safe layers ([`crate::tensor`], [`crate::managed`],
//! [`crate::export`]) are built on top.
//!
//! Enumerations of the header (`DLDeviceType`, `DLDataTypeCode`) are *open*
//! newtypes with associated constants, never Rust `enum`s: a newer producer
//! may send a value this crate does not know (DLPack `main` added codes 18 to
//! 20 while the version macro still reads 1.3), and a Rust `enum` holding an
//! unknown discriminant is undefined behaviour.
//!
//! Sizes and field offsets are asserted at compile time for 64-bit targets
//! (48, 64, 80 and 56 bytes for `DLTensor`, `DLManagedTensor`,
//! `DLManagedTensorVersioned` and `DLPackExchangeAPI`).
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use core::ffi::{c_char, c_int, c_void};

/// `DLPACK_MAJOR_VERSION`: the ABI major version this crate implements.
pub const DLPACK_MAJOR_VERSION: u32 = 1;
/// `DLPACK_MINOR_VERSION`: the minor version this crate implements.
pub const DLPACK_MINOR_VERSION: u32 = 3;

/// `DLPACK_FLAG_BITMASK_READ_ONLY`: the tensor must not be written through.
pub const DLPACK_FLAG_BITMASK_READ_ONLY: u64 = 1 << 0;
/// `DLPACK_FLAG_BITMASK_IS_COPIED`: the producer made a copy that the consumer
/// solely owns until it calls the deleter.
pub const DLPACK_FLAG_BITMASK_IS_COPIED: u64 = 1 << 1;
/// `DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED`: sub-byte elements are stored
/// one per byte instead of packed (DLPack 1.1).
pub const DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED: u64 = 1 << 2;

/// `DLPackVersion`: the ABI version of a versioned managed tensor or of an
/// exchange API table.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DLPackVersion {
    /// Major version; a consumer must not read anything but the deleter when
    /// it differs from its own.
    pub major: u32,
    /// Minor version; new enum values and flags only.
    pub minor: u32,
}

impl DLPackVersion {
    /// The version this crate implements and writes into what it produces.
    pub const CURRENT: DLPackVersion = DLPackVersion {
        major: DLPACK_MAJOR_VERSION,
        minor: DLPACK_MINOR_VERSION,
    };
}

/// `DLDeviceType`: a C `enum` (4 bytes) in the header, an open newtype here.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DLDeviceType(pub i32);

impl DLDeviceType {
    /// `kDLCPU`: host memory.
    pub const kDLCPU: Self = Self(1);
    /// `kDLCUDA`: CUDA device memory.
    pub const kDLCUDA: Self = Self(2);
    /// `kDLCUDAHost`: pinned CUDA host memory (`cudaMallocHost`).
    pub const kDLCUDAHost: Self = Self(3);
    /// `kDLOpenCL`: an OpenCL `cl_mem` handle.
    pub const kDLOpenCL: Self = Self(4);
    /// `kDLVulkan`: a Vulkan buffer.
    pub const kDLVulkan: Self = Self(7);
    /// `kDLMetal`: an Apple Metal buffer (`id<MTLBuffer>`).
    pub const kDLMetal: Self = Self(8);
    /// `kDLVPI`: a Verilog simulator buffer.
    pub const kDLVPI: Self = Self(9);
    /// `kDLROCM`: ROCm (HIP) device memory.
    pub const kDLROCM: Self = Self(10);
    /// `kDLROCMHost`: pinned ROCm host memory (`hipMallocHost`).
    pub const kDLROCMHost: Self = Self(11);
    /// `kDLExtDev`: reserved extension device; meaning is implementation-defined.
    pub const kDLExtDev: Self = Self(12);
    /// `kDLCUDAManaged`: CUDA managed (unified) memory.
    pub const kDLCUDAManaged: Self = Self(13);
    /// `kDLOneAPI`: oneAPI unified shared memory.
    pub const kDLOneAPI: Self = Self(14);
    /// `kDLWebGPU`: WebGPU.
    pub const kDLWebGPU: Self = Self(15);
    /// `kDLHexagon`: Qualcomm Hexagon DSP.
    pub const kDLHexagon: Self = Self(16);
    /// `kDLMAIA`: Microsoft MAIA (DLPack 1.0).
    pub const kDLMAIA: Self = Self(17);
    /// `kDLTrn`: AWS Trainium (DLPack 1.2).
    pub const kDLTrn: Self = Self(18);
    /// `kDLTPU`: Google TPU (DLPack main after 1.3).
    pub const kDLTPU: Self = Self(19);
    /// `kDLTPUHost`: Google TPU pinned host memory (DLPack main after 1.3).
    pub const kDLTPUHost: Self = Self(20);
}

/// `DLDevice`: where the data lives.
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct DLDevice {
    /// The kind of device.
    pub device_type: DLDeviceType,
    /// The producer's device ordinal (0 for CPU, pinned and managed memory).
    pub device_id: i32,
}

/// `DLDataTypeCode`: stored in the `u8` field `DLDataType::code`; an open
/// newtype here.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DLDataTypeCode(pub u8);

impl DLDataTypeCode {
    /// `kDLInt`: signed integer.
    pub const kDLInt: Self = Self(0);
    /// `kDLUInt`: unsigned integer.
    pub const kDLUInt: Self = Self(1);
    /// `kDLFloat`: IEEE floating point.
    pub const kDLFloat: Self = Self(2);
    /// `kDLOpaqueHandle`: opaque handle, reserved for testing.
    pub const kDLOpaqueHandle: Self = Self(3);
    /// `kDLBfloat`: bfloat16.
    pub const kDLBfloat: Self = Self(4);
    /// `kDLComplex`: complex number (real and imaginary part in one element).
    pub const kDLComplex: Self = Self(5);
    /// `kDLBool`: boolean stored in 8 bits.
    pub const kDLBool: Self = Self(6);
    /// `kDLFloat8_e3m4`.
    pub const kDLFloat8_e3m4: Self = Self(7);
    /// `kDLFloat8_e4m3`.
    pub const kDLFloat8_e4m3: Self = Self(8);
    /// `kDLFloat8_e4m3b11fnuz`.
    pub const kDLFloat8_e4m3b11fnuz: Self = Self(9);
    /// `kDLFloat8_e4m3fn`.
    pub const kDLFloat8_e4m3fn: Self = Self(10);
    /// `kDLFloat8_e4m3fnuz`.
    pub const kDLFloat8_e4m3fnuz: Self = Self(11);
    /// `kDLFloat8_e5m2`.
    pub const kDLFloat8_e5m2: Self = Self(12);
    /// `kDLFloat8_e5m2fnuz`.
    pub const kDLFloat8_e5m2fnuz: Self = Self(13);
    /// `kDLFloat8_e8m0fnu`.
    pub const kDLFloat8_e8m0fnu: Self = Self(14);
    /// `kDLFloat6_e2m3fn` (bits must be 6).
    pub const kDLFloat6_e2m3fn: Self = Self(15);
    /// `kDLFloat6_e3m2fn` (bits must be 6).
    pub const kDLFloat6_e3m2fn: Self = Self(16);
    /// `kDLFloat4_e2m1fn` (bits must be 4).
    pub const kDLFloat4_e2m1fn: Self = Self(17);
    /// `kDLBcomplex`: complex of two bfloat16 (DLPack main after 1.3).
    pub const kDLBcomplex: Self = Self(18);
}

/// `DLDataType`: element type as (code, bits, lanes).
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct DLDataType {
    /// Type code, see [`DLDataTypeCode`].
    pub code: u8,
    /// Bits per lane.
    pub bits: u8,
    /// Vector lanes; 1 for ordinary arrays.
    pub lanes: u16,
}

/// `DLTensor`: the borrowed description of a strided array.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct DLTensor {
    /// Base pointer (device pointer or opaque handle on some devices).
    pub data: *mut c_void,
    /// Where the data lives.
    pub device: DLDevice,
    /// Number of dimensions (>= 0).
    pub ndim: i32,
    /// Element type.
    pub dtype: DLDataType,
    /// `ndim` extents; may be NULL when `ndim == 0`.
    pub shape: *mut i64,
    /// `ndim` strides in elements; NULL means compact row-major before DLPack
    /// 1.2, and is allowed since 1.2 only when `ndim == 0`.
    pub strides: *mut i64,
    /// Offset in bytes from `data` to the first element.
    pub byte_offset: u64,
}

/// `DLManagedTensor`: the legacy (pre-1.0) owning wrapper, capsule name
/// `"dltensor"`.
#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensor {
    /// The tensor description.
    pub dl_tensor: DLTensor,
    /// Producer-private context.
    pub manager_ctx: *mut c_void,
    /// Frees `self` and what it holds; may be NULL.
    pub deleter: Option<unsafe extern "C" fn(self_: *mut DLManagedTensor)>,
}

/// `DLManagedTensorVersioned`: the 1.x owning wrapper, capsule name
/// `"dltensor_versioned"`.
#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensorVersioned {
    /// The ABI version the producer implements.
    pub version: DLPackVersion,
    /// Producer-private context.
    pub manager_ctx: *mut c_void,
    /// Frees `self` and what it holds; may be NULL.
    pub deleter: Option<unsafe extern "C" fn(self_: *mut DLManagedTensorVersioned)>,
    /// `DLPACK_FLAG_BITMASK_*` bits.
    pub flags: u64,
    /// The tensor description.
    pub dl_tensor: DLTensor,
}

/// `DLPackManagedTensorAllocator`: ask the producer library to allocate a
/// tensor like `prototype`; on failure calls `SetError` and returns -1.
pub type DLPackManagedTensorAllocator = Option<
    unsafe extern "C" fn(
        prototype: *mut DLTensor,
        out: *mut *mut DLManagedTensorVersioned,
        error_ctx: *mut c_void,
        SetError: Option<
            unsafe extern "C" fn(
                error_ctx: *mut c_void,
                kind: *const c_char,
                message: *const c_char,
            ),
        >,
    ) -> c_int,
>;

/// `DLPackManagedTensorFromPyObjectNoSync`: owning export of a Python object,
/// without stream synchronisation.
pub type DLPackManagedTensorFromPyObjectNoSync = Option<
    unsafe extern "C" fn(py_object: *mut c_void, out: *mut *mut DLManagedTensorVersioned) -> c_int,
>;

/// `DLPackManagedTensorToPyObjectNoSync`: import an owning tensor into the
/// producer's Python type (steals `tensor`).
pub type DLPackManagedTensorToPyObjectNoSync = Option<
    unsafe extern "C" fn(
        tensor: *mut DLManagedTensorVersioned,
        out_py_object: *mut *mut c_void,
    ) -> c_int,
>;

/// `DLPackDLTensorFromPyObjectNoSync`: borrowed view of a Python object's
/// tensor, valid until control returns to Python.
pub type DLPackDLTensorFromPyObjectNoSync =
    Option<unsafe extern "C" fn(py_object: *mut c_void, out: *mut DLTensor) -> c_int>;

/// `DLPackCurrentWorkStream`: the producer's current stream on a device.
pub type DLPackCurrentWorkStream = Option<
    unsafe extern "C" fn(
        device_type: DLDeviceType,
        device_id: i32,
        out_current_stream: *mut *mut c_void,
    ) -> c_int,
>;

/// `DLPackExchangeAPIHeader`: version and the link to an older table.
#[repr(C)]
#[derive(Debug)]
pub struct DLPackExchangeAPIHeader {
    /// Version of the table; a consumer checks `major` first.
    pub version: DLPackVersion,
    /// An older table, or NULL.
    pub prev_api: *mut DLPackExchangeAPIHeader,
}

/// `DLPackExchangeAPI`: the DLPack 1.2+ C function table, published in 1.3 as
/// the type attribute `__dlpack_c_exchange_api__` (a capsule named
/// `"dlpack_exchange_api"`).
#[repr(C)]
#[derive(Debug)]
pub struct DLPackExchangeAPI {
    /// Version header.
    pub header: DLPackExchangeAPIHeader,
    /// Must not be NULL.
    pub managed_tensor_allocator: DLPackManagedTensorAllocator,
    /// Must not be NULL.
    pub managed_tensor_from_py_object_no_sync: DLPackManagedTensorFromPyObjectNoSync,
    /// Must not be NULL.
    pub managed_tensor_to_py_object_no_sync: DLPackManagedTensorToPyObjectNoSync,
    /// May be NULL.
    pub dltensor_from_py_object_no_sync: DLPackDLTensorFromPyObjectNoSync,
    /// Must not be NULL.
    pub current_work_stream: DLPackCurrentWorkStream,
}

// SAFETY-free layout checks: they compile only when the structs match the C
// header on 64-bit (LP64 / LLP64) targets.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<DLPackVersion>() == 8);
    assert!(size_of::<DLDevice>() == 8 && align_of::<DLDevice>() == 4);
    assert!(size_of::<DLDataType>() == 4 && align_of::<DLDataType>() == 2);
    assert!(size_of::<DLTensor>() == 48 && align_of::<DLTensor>() == 8);
    assert!(offset_of!(DLTensor, data) == 0);
    assert!(offset_of!(DLTensor, device) == 8);
    assert!(offset_of!(DLTensor, ndim) == 16);
    assert!(offset_of!(DLTensor, dtype) == 20);
    assert!(offset_of!(DLTensor, shape) == 24);
    assert!(offset_of!(DLTensor, strides) == 32);
    assert!(offset_of!(DLTensor, byte_offset) == 40);
    assert!(size_of::<DLManagedTensor>() == 64);
    assert!(offset_of!(DLManagedTensor, dl_tensor) == 0);
    assert!(offset_of!(DLManagedTensor, manager_ctx) == 48);
    assert!(offset_of!(DLManagedTensor, deleter) == 56);
    assert!(size_of::<DLManagedTensorVersioned>() == 80);
    assert!(offset_of!(DLManagedTensorVersioned, version) == 0);
    assert!(offset_of!(DLManagedTensorVersioned, manager_ctx) == 8);
    assert!(offset_of!(DLManagedTensorVersioned, deleter) == 16);
    assert!(offset_of!(DLManagedTensorVersioned, flags) == 24);
    assert!(offset_of!(DLManagedTensorVersioned, dl_tensor) == 32);
    assert!(size_of::<DLPackExchangeAPIHeader>() == 16);
    assert!(size_of::<DLPackExchangeAPI>() == 56);
    assert!(offset_of!(DLPackExchangeAPI, managed_tensor_allocator) == 16);
    assert!(offset_of!(DLPackExchangeAPI, managed_tensor_from_py_object_no_sync) == 24);
    assert!(offset_of!(DLPackExchangeAPI, managed_tensor_to_py_object_no_sync) == 32);
    assert!(offset_of!(DLPackExchangeAPI, dltensor_from_py_object_no_sync) == 40);
    assert!(offset_of!(DLPackExchangeAPI, current_work_stream) == 48);
    assert!(size_of::<DLDeviceType>() == 4 && size_of::<DLDataTypeCode>() == 1);
};

// Every 32-bit target: the pointer-free prefix is fixed.
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<DLPackVersion>() == 8);
    assert!(size_of::<DLDevice>() == 8);
    assert!(size_of::<DLDataType>() == 4);
};
