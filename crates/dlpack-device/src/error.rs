//! The one error type of every device runtime.

use std::fmt;

use dlpack_core::ErrorKind;
use dlpack_core::ffi::DLDevice;

use crate::driver::Driver;

/// Everything a device runtime refuses or fails at, whichever the driver.
///
/// Each variant maps to the same [`ErrorKind`] for every driver:
/// `ValueError` for a bad device (a negative ordinal, or one the driver
/// calls invalid), the core's kind for its rules, `BufferError` for the
/// rest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The driver library could not be loaded.
    DriverNotFound {
        /// The driver (`"CUDA"`, `"HIP"`).
        driver: &'static str,
        /// Each library name tried, with the loader's answer (empty when
        /// the loader does not say).
        tried: String,
    },
    /// A driver call failed.
    Driver {
        /// The driver function that failed, e.g. `"cuEventRecord"`.
        call: &'static str,
        /// The driver's error code (`CUresult`, `hipError_t`).
        code: i32,
        /// The code's name.
        name: String,
        /// Whether the code means "invalid device" (a `ValueError`).
        invalid_device: bool,
    },
    /// A rule of the DLPack standard (from `dlpack-core`).
    Core(dlpack_core::Error),
    /// The device type is not one of this driver's.
    UnsupportedDevice {
        /// The driver (`"CUDA"`, `"HIP"`).
        driver: &'static str,
        /// The device given.
        device: DLDevice,
    },
    /// The driver does not know the pointer (not its memory, or freed).
    UnknownPointer {
        /// The driver (`"CUDA"`, `"HIP"`).
        driver: &'static str,
        /// The address asked about.
        ptr: u64,
        /// The driver's error code (for unregistered host memory, the
        /// driver's "invalid value").
        code: i32,
    },
    /// A device ordinal that is negative or does not fit the driver's
    /// `int`.
    InvalidOrdinal {
        /// The driver (`"CUDA"`, `"HIP"`).
        driver: &'static str,
        /// The ordinal given.
        ordinal: i64,
    },
}

impl Error {
    /// The driver library of `D` is missing.
    pub fn not_found<D: Driver>(tried: impl Into<String>) -> Self {
        Error::DriverNotFound {
            driver: D::NAME,
            tried: tried.into(),
        }
    }

    /// `device` is not one of `D`'s devices.
    pub fn unsupported<D: Driver>(device: DLDevice) -> Self {
        Error::UnsupportedDevice {
            driver: D::NAME,
            device,
        }
    }

    /// The ordinal checked for `D`: negative ordinals are refused.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOrdinal`].
    pub fn check_ordinal<D: Driver>(ordinal: i32) -> Result<i32, Error> {
        if ordinal < 0 {
            Err(Error::InvalidOrdinal {
                driver: D::NAME,
                ordinal: ordinal.into(),
            })
        } else {
            Ok(ordinal)
        }
    }

    /// The Python exception this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Core(e) => e.kind(),
            Error::InvalidOrdinal { .. }
            | Error::Driver {
                invalid_device: true,
                ..
            } => ErrorKind::Value,
            Error::DriverNotFound { .. }
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
            Error::DriverNotFound { driver, tried } => {
                write!(f, "the {driver} driver library is not loadable")?;
                if !tried.is_empty() {
                    write!(f, " (tried {tried})")?;
                }
                write!(
                    f,
                    ": install it, or put a folder holding it (e.g. the gpu-sim simulator's) on \
                     LD_LIBRARY_PATH"
                )
            }
            Error::Driver {
                call,
                code,
                name,
                invalid_device,
            } => {
                write!(f, "{call} failed: {name} ({code})")?;
                if *invalid_device {
                    f.write_str(": not a valid device ordinal")?;
                }
                Ok(())
            }
            Error::Core(e) => fmt::Display::fmt(e, f),
            Error::UnsupportedDevice { driver, device } => {
                write!(f, "device {device:?} is not a {driver} device")
            }
            Error::UnknownPointer { driver, ptr, code } => write!(
                f,
                "the {driver} driver does not know the pointer {ptr:#x} (not {driver} memory, or \
                 freed): error {code}"
            ),
            Error::InvalidOrdinal { driver, ordinal } => {
                write!(
                    f,
                    "device ordinal {ordinal} is not a valid {driver} device ordinal"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}
