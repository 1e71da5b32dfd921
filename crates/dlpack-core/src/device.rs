//! Devices: names, and what a device type implies for memory and streams.
//!
//! The properties here are one `match` each, so that code, standard and test
//! can be read side by side.

use core::fmt;

use crate::ffi::{DLDevice, DLDeviceType};

/// How `__dlpack__(stream=...)` values are interpreted for a device type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// CUDA rules: `None`/1 legacy default, 2 per-thread default, 0 refused.
    Cuda,
    /// ROCm rules: `None`/0 default, 1 and 2 refused.
    Rocm,
    /// No streams: only `None` is accepted.
    None,
}

/// What a driver says a pointer's memory is (CUDA's `cuPointerGetAttribute`,
/// HIP's `hipPointerGetAttributes`). Device crates read it from the pointer
/// instead of trusting the producer's device type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// Device memory (`kDLCUDA`, `kDLROCM`).
    Device,
    /// Page-locked host memory (`kDLCUDAHost`, `kDLROCMHost`).
    Host,
    /// Managed (unified) memory (`kDLCUDAManaged`; ROCm has no device type
    /// of its own for it).
    Managed,
}

impl DLDeviceType {
    /// The header's name of a known device type (`"kDLCUDA"`), or `None`.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "kDLCPU",
            2 => "kDLCUDA",
            3 => "kDLCUDAHost",
            4 => "kDLOpenCL",
            7 => "kDLVulkan",
            8 => "kDLMetal",
            9 => "kDLVPI",
            10 => "kDLROCM",
            11 => "kDLROCMHost",
            12 => "kDLExtDev",
            13 => "kDLCUDAManaged",
            14 => "kDLOneAPI",
            15 => "kDLWebGPU",
            16 => "kDLHexagon",
            17 => "kDLMAIA",
            18 => "kDLTrn",
            19 => "kDLTPU",
            20 => "kDLTPUHost",
            _ => return None,
        })
    }

    /// Whether the value is one the standard defines (1 to 20 but 5 and 6).
    pub const fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// Whether the host can read and write this memory with plain loads and
    /// stores: CPU, pinned CUDA/ROCm/TPU host memory and CUDA managed memory.
    pub const fn is_host_accessible(self) -> bool {
        matches!(self.0, 1 | 3 | 11 | 13 | 20)
    }

    /// Whether `data` is an address, so that `data + byte_offset` and strided
    /// offsets are address arithmetic. Opaque handles (OpenCL `cl_mem`,
    /// Vulkan, Metal, WebGPU, VPI) and unknown device types are not.
    pub const fn has_addressable_data(self) -> bool {
        matches!(
            self.0,
            1 | 2 | 3 | 10 | 11 | 13 | 14 | 16 | 17 | 18 | 19 | 20
        )
    }

    /// The stream rules of `__dlpack__(stream=...)` for this device type.
    ///
    /// CUDA managed memory follows the CUDA rules (as CuPy does).
    pub const fn stream_kind(self) -> StreamKind {
        match self.0 {
            2 | 13 => StreamKind::Cuda,
            10 => StreamKind::Rocm,
            _ => StreamKind::None,
        }
    }
}

impl fmt::Debug for DLDeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "DLDeviceType({})", self.0),
        }
    }
}

impl DLDevice {
    /// A device of the given type and ordinal.
    pub const fn new(device_type: DLDeviceType, device_id: i32) -> Self {
        DLDevice {
            device_type,
            device_id,
        }
    }

    /// `(kDLCPU, 0)`.
    pub const fn cpu() -> Self {
        Self::new(DLDeviceType::kDLCPU, 0)
    }

    /// `(kDLCUDA, id)`.
    pub const fn cuda(id: i32) -> Self {
        Self::new(DLDeviceType::kDLCUDA, id)
    }

    /// `(kDLROCM, id)`.
    pub const fn rocm(id: i32) -> Self {
        Self::new(DLDeviceType::kDLROCM, id)
    }
}

impl fmt::Debug for DLDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:?}, {})", self.device_type, self.device_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per value of the spec's device table.
    #[test]
    fn device_table() {
        #[rustfmt::skip]
        let rows: &[(i32, Option<&str>, bool, bool, StreamKind)] = &[
            // value, name,              host,  addressable, streams
            (1,  Some("kDLCPU"),         true,  true,  StreamKind::None),
            (2,  Some("kDLCUDA"),        false, true,  StreamKind::Cuda),
            (3,  Some("kDLCUDAHost"),    true,  true,  StreamKind::None),
            (4,  Some("kDLOpenCL"),      false, false, StreamKind::None),
            (5,  None,                   false, false, StreamKind::None),
            (6,  None,                   false, false, StreamKind::None),
            (7,  Some("kDLVulkan"),      false, false, StreamKind::None),
            (8,  Some("kDLMetal"),       false, false, StreamKind::None),
            (9,  Some("kDLVPI"),         false, false, StreamKind::None),
            (10, Some("kDLROCM"),        false, true,  StreamKind::Rocm),
            (11, Some("kDLROCMHost"),    true,  true,  StreamKind::None),
            (12, Some("kDLExtDev"),      false, false, StreamKind::None),
            (13, Some("kDLCUDAManaged"), true,  true,  StreamKind::Cuda),
            (14, Some("kDLOneAPI"),      false, true,  StreamKind::None),
            (15, Some("kDLWebGPU"),      false, false, StreamKind::None),
            (16, Some("kDLHexagon"),     false, true,  StreamKind::None),
            (17, Some("kDLMAIA"),        false, true,  StreamKind::None),
            (18, Some("kDLTrn"),         false, true,  StreamKind::None),
            (19, Some("kDLTPU"),         false, true,  StreamKind::None),
            (20, Some("kDLTPUHost"),     true,  true,  StreamKind::None),
            (21, None,                   false, false, StreamKind::None),
            (-1, None,                   false, false, StreamKind::None),
        ];
        for &(value, name, host, addressable, streams) in rows {
            let t = DLDeviceType(value);
            assert_eq!(t.name(), name, "name of {value}");
            assert_eq!(t.is_known(), name.is_some(), "known {value}");
            assert_eq!(t.is_host_accessible(), host, "host access of {value}");
            assert_eq!(t.has_addressable_data(), addressable, "addressable {value}");
            assert_eq!(t.stream_kind(), streams, "streams of {value}");
        }
    }

    #[test]
    fn debug_names_unknown_values() {
        extern crate alloc;
        use alloc::format;
        assert_eq!(format!("{:?}", DLDevice::cuda(1)), "(kDLCUDA, 1)");
        assert_eq!(format!("{:?}", DLDeviceType(99)), "DLDeviceType(99)");
    }
}
