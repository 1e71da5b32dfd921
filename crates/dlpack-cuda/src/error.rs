//! The crate's error type.

use std::fmt;

use cudarc::driver::DriverError;
use dlpack_core::ErrorKind;
use dlpack_core::ffi::DLDevice;

/// Everything this crate refuses or fails at.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// No CUDA driver library (`libcuda.so`) could be loaded.
    DriverNotFound,
    /// A driver call failed.
    Driver {
        /// The driver function that failed, e.g. `"cuEventRecord"`.
        call: &'static str,
        /// The driver's error code.
        source: DriverError,
    },
    /// A rule of the DLPack standard (from `dlpack-core`).
    Core(dlpack_core::Error),
    /// The device type is not one this crate handles (CUDA, CUDA managed or
    /// CUDA host memory).
    UnsupportedDevice {
        /// The device given.
        device: DLDevice,
    },
    /// The driver does not know the pointer (not CUDA memory, or freed).
    UnknownPointer {
        /// The address asked about.
        ptr: u64,
        /// The driver's error code.
        source: DriverError,
    },
    /// A device ordinal that does not fit the driver's `int`.
    InvalidOrdinal {
        /// The ordinal given.
        ordinal: i64,
    },
}

impl Error {
    pub(crate) fn driver(call: &'static str, source: DriverError) -> Self {
        Error::Driver { call, source }
    }

    /// The Python exception this error maps to: `ValueError` for bad
    /// arguments (streams, devices: a negative ordinal, or one the driver
    /// calls invalid), `BufferError` for everything that makes the export or
    /// import impossible.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Core(e) => e.kind(),
            Error::InvalidOrdinal { .. } => ErrorKind::Value,
            Error::Driver { source, .. }
                if source.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_INVALID_DEVICE =>
            {
                ErrorKind::Value
            }
            Error::DriverNotFound
            | Error::Driver { .. }
            | Error::UnsupportedDevice { .. }
            | Error::UnknownPointer { .. } => ErrorKind::Buffer,
        }
    }
}

impl From<dlpack_core::Error> for Error {
    fn from(e: dlpack_core::Error) -> Self {
        Error::Core(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DriverNotFound => f.write_str(
                "the CUDA driver (libcuda.so) is not loadable: install the NVIDIA driver, or put a \
                 folder holding libcuda.so (e.g. the gpu-sim simulator's) on LD_LIBRARY_PATH",
            ),
            // DriverError's Display asks the driver for the message, which is
            // there: a driver error implies a loaded driver.
            Error::Driver { call, source } => write!(f, "{call} failed: {source}"),
            Error::Core(e) => fmt::Display::fmt(e, f),
            Error::UnsupportedDevice { device } => write!(
                f,
                "device {device:?} is not a CUDA device (kDLCUDA, kDLCUDAManaged or kDLCUDAHost)"
            ),
            Error::UnknownPointer { ptr, source } => write!(
                f,
                "the CUDA driver does not know the pointer {ptr:#x} (not CUDA memory, or freed): {source}"
            ),
            Error::InvalidOrdinal { ordinal } => {
                write!(
                    f,
                    "device ordinal {ordinal} is not a valid CUDA device ordinal"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Driver { source, .. } | Error::UnknownPointer { source, .. } => Some(source),
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}
