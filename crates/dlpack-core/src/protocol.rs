//! The Python DLPack protocol as pure functions: `stream` values per device,
//! version negotiation from `max_version`, the `copy`/`dl_device` decision,
//! and capsule names.
//!
//! A producer's `__dlpack__(*, stream, max_version, dl_device, copy)` is
//! [`plan_dlpack`] followed by doing what the returned [`DlpackPlan`] says;
//! no Python is involved here, so the rules are tested as tables.

use core::ffi::CStr;

use crate::device::StreamKind;
use crate::error::Error;
use crate::ffi::{DLDevice, DLDeviceType, DLPACK_FLAG_BITMASK_IS_COPIED, DLPackVersion};
use crate::tensor::Access;

/// Capsule name of an unconsumed legacy `DLManagedTensor`.
pub const DLTENSOR: &CStr = c"dltensor";
/// Capsule name of a consumed legacy `DLManagedTensor`.
pub const USED_DLTENSOR: &CStr = c"used_dltensor";
/// Capsule name of an unconsumed `DLManagedTensorVersioned`.
pub const DLTENSOR_VERSIONED: &CStr = c"dltensor_versioned";
/// Capsule name of a consumed `DLManagedTensorVersioned`.
pub const USED_DLTENSOR_VERSIONED: &CStr = c"used_dltensor_versioned";
/// Capsule name of the DLPack 1.3 C exchange API table.
pub const DLPACK_EXCHANGE_API: &CStr = c"dlpack_exchange_api";
/// Type attribute holding the exchange API capsule (DLPack 1.3).
pub const EXCHANGE_API_ATTR: &CStr = c"__dlpack_c_exchange_api__";
/// The DLPack 1.2 spelling of the attribute (a Python `int` pointer).
pub const EXCHANGE_API_ATTR_1_2: &CStr = c"__c_dlpack_exchange_api__";

/// Which managed-tensor ABI to produce.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// `DLManagedTensor`, capsule `"dltensor"`.
    Legacy,
    /// `DLManagedTensorVersioned` (this crate writes version 1.3), capsule
    /// `"dltensor_versioned"`.
    Versioned,
}

impl Abi {
    /// The capsule name before consumption.
    pub const fn capsule_name(self) -> &'static CStr {
        match self {
            Abi::Legacy => DLTENSOR,
            Abi::Versioned => DLTENSOR_VERSIONED,
        }
    }

    /// The capsule name a consumer renames to when it takes ownership.
    pub const fn used_capsule_name(self) -> &'static CStr {
        match self {
            Abi::Legacy => USED_DLTENSOR,
            Abi::Versioned => USED_DLTENSOR_VERSIONED,
        }
    }

    /// The ABI of an unconsumed capsule name, if it is one.
    pub fn from_capsule_name(name: &CStr) -> Option<Abi> {
        if name == DLTENSOR {
            Some(Abi::Legacy)
        } else if name == DLTENSOR_VERSIONED {
            Some(Abi::Versioned)
        } else {
            None
        }
    }
}

/// The producer's answer to `max_version`: `None` or a major below 1 gets the
/// legacy struct; any major >= 1 gets the versioned struct at our version
/// (1.3), as the array API prescribes ("majors match, return our own").
///
/// # Errors
///
/// [`Error::InvalidMaxVersion`] for negative numbers.
///
/// ```
/// use dlpack_core::protocol::{negotiate_version, Abi};
/// assert_eq!(negotiate_version(None), Ok(Abi::Legacy));
/// assert_eq!(negotiate_version(Some((0, 8))), Ok(Abi::Legacy));
/// assert_eq!(negotiate_version(Some((1, 0))), Ok(Abi::Versioned));
/// assert_eq!(negotiate_version(Some((2, 0))), Ok(Abi::Versioned));
/// ```
pub fn negotiate_version(max_version: Option<(i64, i64)>) -> Result<Abi, Error> {
    match max_version {
        None => Ok(Abi::Legacy),
        Some((major, minor)) if major < 0 || minor < 0 => {
            Err(Error::InvalidMaxVersion { major, minor })
        }
        Some((major, _)) if major < i64::from(DLPackVersion::CURRENT.major) => Ok(Abi::Legacy),
        Some(_) => Ok(Abi::Versioned),
    }
}

/// A stream a device crate can synchronise with, decoded from the consumer's
/// `stream` argument.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeviceStream {
    /// CUDA's legacy default stream (`None` or 1; handle `0x1`).
    CudaLegacyDefault,
    /// CUDA's per-thread default stream (2; handle `0x2`).
    CudaPerThreadDefault,
    /// ROCm's default (null) stream (`None` or 0; handle 0).
    RocmDefault,
    /// A stream handle (`cudaStream_t` / `hipStream_t`) given as an integer.
    Handle(u64),
}

impl DeviceStream {
    /// The value to pass to the driver as the stream handle.
    pub const fn as_raw(self) -> u64 {
        match self {
            DeviceStream::CudaLegacyDefault => 1,
            DeviceStream::CudaPerThreadDefault => 2,
            DeviceStream::RocmDefault => 0,
            DeviceStream::Handle(h) => h,
        }
    }

    /// The value a consumer passes as `__dlpack__(stream=...)` to ask for
    /// this stream on a device of type `device_type`.
    pub const fn as_dlpack_arg(self) -> i64 {
        self.as_raw() as i64
    }

    /// The stream a consumer names with a raw handle on a device kind: on
    /// CUDA, the NULL stream becomes the legacy default (0 is not allowed as
    /// a `stream` argument).
    pub const fn from_raw(kind: StreamKind, raw: u64) -> Option<DeviceStream> {
        match (kind, raw) {
            (StreamKind::Cuda, 0 | 1) => Some(DeviceStream::CudaLegacyDefault),
            (StreamKind::Cuda, 2) => Some(DeviceStream::CudaPerThreadDefault),
            (StreamKind::Rocm, 0) => Some(DeviceStream::RocmDefault),
            (StreamKind::None, _) => None,
            (_, h) => Some(DeviceStream::Handle(h)),
        }
    }
}

/// What the consumer's `stream` argument asks of the producer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamRequest {
    /// Make this stream wait for the producer's pending work.
    Sync(DeviceStream),
    /// `-1`: the consumer asked for no synchronisation.
    NoSync,
    /// The device has no streams (`stream` was `None`).
    Streamless,
}

const CUDA_ZERO: &str = "0 is disallowed for CUDA (ambiguous between None, 1 and 2); \
                         use 1 for the legacy default stream or 2 for the per-thread default stream";
const ROCM_ONE_TWO: &str =
    "1 and 2 are not supported for ROCm; use None or 0 for the default stream";
const BELOW_MINUS_ONE: &str = "stream must be None, -1, or a stream handle >= 0";
const STREAMLESS: &str = "only stream=None is accepted for devices without streams";

/// Decodes `__dlpack__(stream=...)` for data on a device of type
/// `device_type` (spec table §4.1).
///
/// # Errors
///
/// [`Error::InvalidStream`] (a `ValueError`), naming the value and the rule.
///
/// ```
/// use dlpack_core::ffi::DLDeviceType;
/// use dlpack_core::protocol::{decode_stream, DeviceStream, StreamRequest};
///
/// let cuda = DLDeviceType::kDLCUDA;
/// assert_eq!(decode_stream(cuda, None), Ok(StreamRequest::Sync(DeviceStream::CudaLegacyDefault)));
/// assert_eq!(decode_stream(cuda, Some(-1)), Ok(StreamRequest::NoSync));
/// assert!(decode_stream(cuda, Some(0)).is_err());
/// assert!(decode_stream(DLDeviceType::kDLCPU, Some(1)).is_err());
/// ```
pub fn decode_stream(
    device_type: DLDeviceType,
    stream: Option<i64>,
) -> Result<StreamRequest, Error> {
    let invalid = |stream: i64, rule: &'static str| Error::InvalidStream {
        device_type,
        stream,
        rule,
    };
    match (device_type.stream_kind(), stream) {
        (StreamKind::None, None) => Ok(StreamRequest::Streamless),
        (StreamKind::None, Some(s)) => Err(invalid(s, STREAMLESS)),
        (_, Some(-1)) => Ok(StreamRequest::NoSync),
        (_, Some(s)) if s < -1 => Err(invalid(s, BELOW_MINUS_ONE)),
        (StreamKind::Cuda, None | Some(1)) => {
            Ok(StreamRequest::Sync(DeviceStream::CudaLegacyDefault))
        }
        (StreamKind::Cuda, Some(2)) => Ok(StreamRequest::Sync(DeviceStream::CudaPerThreadDefault)),
        (StreamKind::Cuda, Some(0)) => Err(invalid(0, CUDA_ZERO)),
        (StreamKind::Rocm, None | Some(0)) => Ok(StreamRequest::Sync(DeviceStream::RocmDefault)),
        (StreamKind::Rocm, Some(s @ (1 | 2))) => Err(invalid(s, ROCM_ONE_TWO)),
        (_, Some(s)) => Ok(StreamRequest::Sync(DeviceStream::Handle(s as u64))),
    }
}

/// What to hand the consumer: the data itself, or a copy.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transfer {
    /// Share the producer's memory (zero-copy), described on `device`.
    Share {
        /// The device to write into the descriptor (the data's own, or
        /// `kDLCPU` for pinned/managed host-accessible memory).
        device: DLDevice,
    },
    /// Copy the data to `device` (set `IS_COPIED`).
    Copy {
        /// The device of the copy.
        device: DLDevice,
    },
}

impl Transfer {
    /// The device the consumer receives.
    pub const fn device(self) -> DLDevice {
        match self {
            Transfer::Share { device } | Transfer::Copy { device } => device,
        }
    }

    /// Whether a copy is made.
    pub const fn is_copy(self) -> bool {
        matches!(self, Transfer::Copy { .. })
    }
}

/// Decides between sharing and copying for `dl_device` and `copy`.
///
/// - `dl_device` `None` or the data's own device: share, or copy when
///   `copy=True`.
/// - `dl_device=(kDLCPU, 0)` for data the host can address (pinned or
///   managed memory): share, described as CPU memory, unless `copy=True`.
/// - `dl_device=(kDLCPU, 0)` for device memory: copy to the host, refused
///   with `copy=False`.
/// - any other target: refused.
///
/// # Errors
///
/// [`Error::CopyRequired`] or [`Error::UnsupportedTargetDevice`]
/// (both `BufferError`).
pub fn decide_transfer(
    source: DLDevice,
    dl_device: Option<DLDevice>,
    copy: Option<bool>,
) -> Result<Transfer, Error> {
    let target = dl_device.unwrap_or(source);
    let copy_or_share = |device| {
        if copy == Some(true) {
            Transfer::Copy { device }
        } else {
            Transfer::Share { device }
        }
    };
    if target == source {
        return Ok(copy_or_share(source));
    }
    if target.device_type == DLDeviceType::kDLCPU && target.device_id == 0 {
        if source.device_type.is_host_accessible() {
            return Ok(copy_or_share(target));
        }
        if matches!(
            source.device_type.stream_kind(),
            StreamKind::Cuda | StreamKind::Rocm
        ) {
            if copy == Some(false) {
                return Err(Error::CopyRequired {
                    from: source,
                    to: target,
                });
            }
            return Ok(Transfer::Copy { device: target });
        }
    }
    Err(Error::UnsupportedTargetDevice {
        from: source,
        to: target,
    })
}

/// The consumer's `__dlpack__` arguments, decoded from Python values.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DlpackRequest {
    /// `stream`.
    pub stream: Option<i64>,
    /// `max_version` as `(major, minor)`.
    pub max_version: Option<(i64, i64)>,
    /// `dl_device` as `(device_type, device_id)`.
    pub dl_device: Option<DLDevice>,
    /// `copy`.
    pub copy: Option<bool>,
}

/// What a producer's `__dlpack__` must do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DlpackPlan {
    /// Which struct and capsule name to produce.
    pub abi: Abi,
    /// Share or copy, and the device the consumer receives.
    pub transfer: Transfer,
    /// The stream to order the data (or the copy) on.
    pub stream: StreamRequest,
    /// Flags for a versioned tensor (`READ_ONLY`, `IS_COPIED`).
    pub flags: u64,
}

/// The whole decision of a producer's `__dlpack__`, for data on `source`
/// with the given [`Access`] (a `bool` reads as `read_only`; a tensor's
/// [`Flags`](crate::tensor::Flags) give theirs).
///
/// Order of checks: `max_version`, then `dl_device`/`copy`, then `stream`
/// (validated against the device the consumer receives, as the standard
/// asks when `dl_device` is given), then the read-only rule for the legacy
/// ABI (a copy is writable, so it may go legacy). Data of unknown
/// writability (a legacy source) goes out as legacy as it came, or as
/// versioned with `READ_ONLY`: it is never upgraded to writable.
///
/// # Errors
///
/// [`Error::InvalidMaxVersion`], [`Error::InvalidStream`] (`ValueError`);
/// [`Error::CopyRequired`], [`Error::UnsupportedTargetDevice`],
/// [`Error::ReadOnlyLegacyExport`] (`BufferError`).
///
/// ```
/// use dlpack_core::ffi::{DLDevice, DLPACK_FLAG_BITMASK_READ_ONLY};
/// use dlpack_core::protocol::{plan_dlpack, Abi, DlpackRequest, StreamRequest, Transfer};
///
/// let req = DlpackRequest { max_version: Some((1, 3)), ..Default::default() };
/// let plan = plan_dlpack(DLDevice::cpu(), true, &req).unwrap();
/// assert_eq!(plan.abi, Abi::Versioned);
/// assert_eq!(plan.transfer, Transfer::Share { device: DLDevice::cpu() });
/// assert_eq!(plan.stream, StreamRequest::Streamless);
/// assert_eq!(plan.flags, DLPACK_FLAG_BITMASK_READ_ONLY);
/// // Read-only data cannot go out as a legacy capsule.
/// assert!(plan_dlpack(DLDevice::cpu(), true, &DlpackRequest::default()).is_err());
/// // Data from a legacy tensor: legacy as it came, or versioned read-only.
/// use dlpack_core::tensor::Flags;
/// assert!(plan_dlpack(DLDevice::cpu(), Flags::LEGACY, &DlpackRequest::default()).is_ok());
/// let plan = plan_dlpack(DLDevice::cpu(), Flags::LEGACY, &req).unwrap();
/// assert_eq!(plan.flags, DLPACK_FLAG_BITMASK_READ_ONLY);
/// ```
pub fn plan_dlpack(
    source: DLDevice,
    access: impl Into<Access>,
    req: &DlpackRequest,
) -> Result<DlpackPlan, Error> {
    let abi = negotiate_version(req.max_version)?;
    let transfer = decide_transfer(source, req.dl_device, req.copy)?;
    let stream_device = if req.dl_device.is_some() {
        transfer.device().device_type
    } else {
        source.device_type
    };
    let stream = decode_stream(stream_device, req.stream)?;
    let mut flags = 0;
    if transfer.is_copy() {
        flags |= DLPACK_FLAG_BITMASK_IS_COPIED;
    } else {
        match (access.into(), abi) {
            (Access::ReadOnly, Abi::Legacy) => return Err(Error::ReadOnlyLegacyExport),
            (access, Abi::Versioned) => flags |= access.versioned_flags(),
            (Access::Writable | Access::Unknown, Abi::Legacy) => {}
        }
    }
    Ok(DlpackPlan {
        abi,
        transfer,
        stream,
        flags,
    })
}
