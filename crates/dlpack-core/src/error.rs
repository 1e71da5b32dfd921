//! Typed errors and the Python exception each one maps to.
//!
//! Every refusal in the crate is an [`Error`] variant that carries the
//! offending value; its `Display` text names the value and the rule it
//! breaks. [`Error::kind`] maps each variant one to one onto the exception
//! the Python array API prescribes ([`ErrorKind`]), so a Python adapter needs
//! a single `match` to raise the right type.

use core::fmt;

use crate::ffi::{DLDataType, DLDevice, DLDeviceType, DLPackVersion};

/// The Python exception an [`Error`] maps to at a Python boundary.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `BufferError`: the data cannot be exported or imported as asked.
    Buffer,
    /// `ValueError`: an argument has a bad value (a stream, a device).
    Value,
    /// `TypeError`: an argument has the wrong type (dtype or rank of a typed
    /// view, a non-tuple `max_version`).
    Type,
    /// `NotImplementedError`: valid by the standard but not supported here.
    NotImplemented,
}

impl ErrorKind {
    /// The Python exception's name, e.g. `"BufferError"`.
    pub const fn python_name(self) -> &'static str {
        match self {
            ErrorKind::Buffer => "BufferError",
            ErrorKind::Value => "ValueError",
            ErrorKind::Type => "TypeError",
            ErrorKind::NotImplemented => "NotImplementedError",
        }
    }
}

/// Everything this crate refuses, with the value that was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A managed-tensor pointer was NULL.
    NullManagedTensor,
    /// `version.major` of a versioned tensor is not 1; the deleter was called.
    UnsupportedVersion {
        /// The version the producer wrote.
        version: DLPackVersion,
    },
    /// `ndim < 0`.
    NegativeNdim {
        /// The value found.
        ndim: i32,
    },
    /// `shape` is NULL while `ndim > 0`.
    NullShape {
        /// The value of `ndim`.
        ndim: i32,
    },
    /// An extent is negative.
    NegativeExtent {
        /// The axis.
        axis: usize,
        /// The extent found.
        extent: i64,
    },
    /// `data` is NULL for a tensor with elements.
    NullData {
        /// The number of elements.
        elements: u64,
    },
    /// `lanes == 0`, or `bits * lanes` is zero.
    ZeroSizedElement {
        /// The dtype found.
        dtype: DLDataType,
    },
    /// A sub-byte dtype (`bits * lanes < 8` or not a multiple of 8) that is
    /// neither a known packed sub-byte type nor padded.
    InvalidBitWidth {
        /// The dtype found.
        dtype: DLDataType,
    },
    /// The product of the extents overflows.
    ElementCountOverflow,
    /// The byte extent of the strided layout overflows the address space.
    LayoutOverflow,
    /// `data + byte_offset` (plus the layout's reach) overflows the address
    /// space.
    AddressOverflow {
        /// The `byte_offset` found.
        byte_offset: u64,
    },
    /// The layout reaches outside the memory an exporter owns.
    OutOfBounds {
        /// First byte the layout touches, relative to the owner's base.
        start: i128,
        /// One past the last byte the layout touches.
        end: i128,
        /// Bytes the owner holds.
        len: usize,
    },
    /// The strides array has the wrong number of entries (export).
    StridesLength {
        /// `ndim` (the length of `shape`).
        ndim: usize,
        /// The length of `strides`.
        strides: usize,
    },
    /// More dimensions than `int32_t` can count.
    TooManyDims {
        /// The number of dimensions asked for.
        ndim: usize,
    },
    /// The dtype is not the one a typed accessor asked for.
    DtypeMismatch {
        /// The dtype the accessor needs.
        expected: DLDataType,
        /// The dtype of the tensor.
        found: DLDataType,
    },
    /// The dtype is unknown or its bit width is wrong for its code.
    UnsupportedDtype {
        /// The dtype found.
        dtype: DLDataType,
    },
    /// Sub-byte elements that are packed cannot be addressed one by one.
    PackedSubByte {
        /// The dtype found.
        dtype: DLDataType,
    },
    /// The number of dimensions is not the one a typed view asked for.
    NdimMismatch {
        /// The rank the view needs.
        expected: usize,
        /// The rank of the tensor.
        found: usize,
    },
    /// The memory is not readable by the host.
    NotHostAccessible {
        /// The tensor's device.
        device: DLDevice,
    },
    /// The device type is not one this operation supports.
    UnsupportedDevice {
        /// The tensor's device.
        device: DLDevice,
    },
    /// The first element is not aligned for the element type.
    Misaligned {
        /// The address of the first element.
        address: usize,
        /// The alignment the element type needs.
        align: usize,
    },
    /// The tensor is not C-contiguous but a contiguous slice was asked for.
    NotContiguous,
    /// Two different indices reach the same element (e.g. a stride of 0 on
    /// an axis longer than 1, as broadcasting produces), so a mutable view
    /// would alias. Read-only views of such tensors are fine.
    OverlappingElements {
        /// The axis whose stride lands on elements other axes reach.
        axis: usize,
        /// Its stride, in elements.
        stride: i64,
    },
    /// Write access was asked for a read-only tensor (or a legacy tensor,
    /// which cannot say whether it is writable).
    ReadOnly,
    /// Read-only data cannot travel in a legacy `DLManagedTensor`.
    ReadOnlyLegacyExport,
    /// A `stream` value that the device type does not allow.
    InvalidStream {
        /// The device type the stream was given for.
        device_type: DLDeviceType,
        /// The value passed.
        stream: i64,
        /// The rule, in the words of the standard.
        rule: &'static str,
    },
    /// `copy=False` but the request needs a copy.
    CopyRequired {
        /// The device the data lives on.
        from: DLDevice,
        /// The device asked for.
        to: DLDevice,
    },
    /// The producer cannot provide the data on the device asked for.
    UnsupportedTargetDevice {
        /// The device the data lives on.
        from: DLDevice,
        /// The device asked for.
        to: DLDevice,
    },
    /// `max_version` has a negative or otherwise impossible component.
    InvalidMaxVersion {
        /// The major number passed.
        major: i64,
        /// The minor number passed.
        minor: i64,
    },
}

impl Error {
    /// The Python exception this error maps to.
    pub const fn kind(&self) -> ErrorKind {
        use Error::*;
        match self {
            InvalidStream { .. } | InvalidMaxVersion { .. } => ErrorKind::Value,
            DtypeMismatch { .. } | NdimMismatch { .. } => ErrorKind::Type,
            NullManagedTensor
            | UnsupportedVersion { .. }
            | NegativeNdim { .. }
            | NullShape { .. }
            | NegativeExtent { .. }
            | NullData { .. }
            | ZeroSizedElement { .. }
            | InvalidBitWidth { .. }
            | ElementCountOverflow
            | LayoutOverflow
            | AddressOverflow { .. }
            | OutOfBounds { .. }
            | StridesLength { .. }
            | TooManyDims { .. }
            | UnsupportedDtype { .. }
            | PackedSubByte { .. }
            | NotHostAccessible { .. }
            | UnsupportedDevice { .. }
            | Misaligned { .. }
            | NotContiguous
            | OverlappingElements { .. }
            | ReadOnly
            | ReadOnlyLegacyExport
            | CopyRequired { .. }
            | UnsupportedTargetDevice { .. } => ErrorKind::Buffer,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            NullManagedTensor => f.write_str("the managed tensor pointer is NULL"),
            UnsupportedVersion { version } => write!(
                f,
                "DLPack version {}.{} is not supported: the major version must be 1 \
                 (the tensor was released by calling its deleter)",
                version.major, version.minor
            ),
            NegativeNdim { ndim } => write!(f, "ndim is {ndim}, but it must be >= 0"),
            NullShape { ndim } => write!(f, "shape is NULL but ndim is {ndim} (only ndim == 0 may omit it)"),
            NegativeExtent { axis, extent } => {
                write!(f, "shape[{axis}] is {extent}, but extents must be >= 0")
            }
            NullData { elements } => write!(
                f,
                "data is NULL for a tensor of {elements} elements (only size-zero tensors may have NULL data)"
            ),
            ZeroSizedElement { dtype } => {
                write!(f, "dtype {dtype:?} has zero bits per element (bits and lanes must be > 0)")
            }
            InvalidBitWidth { dtype } => write!(
                f,
                "dtype {dtype:?} has {} bits per element, which is neither whole bytes nor a packed sub-byte type",
                u32::from(dtype.bits) * u32::from(dtype.lanes)
            ),
            ElementCountOverflow => f.write_str("the product of the extents overflows 64 bits"),
            LayoutOverflow => f.write_str("the byte extent of the strided layout overflows the address space"),
            AddressOverflow { byte_offset } => write!(
                f,
                "data + byte_offset ({byte_offset}) plus the layout's reach overflows the address space"
            ),
            OutOfBounds { start, end, len } => write!(
                f,
                "the layout touches bytes {start}..{end} but the owner holds only {len} bytes"
            ),
            StridesLength { ndim, strides } => {
                write!(f, "strides has {strides} entries but shape has {ndim}; they must match")
            }
            TooManyDims { ndim } => write!(f, "{ndim} dimensions do not fit DLTensor::ndim (int32_t)"),
            DtypeMismatch { expected, found } => {
                write!(f, "dtype is {found:?} but {expected:?} was asked for")
            }
            UnsupportedDtype { dtype } => write!(
                f,
                "dtype {dtype:?} is not supported: unknown code or a bit width the standard does not allow for it"
            ),
            PackedSubByte { dtype } => write!(
                f,
                "dtype {dtype:?} is packed below one byte per element; elements are not addressable \
                 (only IS_SUBBYTE_TYPE_PADDED tensors are)"
            ),
            NdimMismatch { expected, found } => {
                write!(f, "the tensor has {found} dimensions but {expected} were asked for")
            }
            NotHostAccessible { device } => {
                write!(f, "memory on {device:?} is not accessible from the host")
            }
            UnsupportedDevice { device } => write!(f, "device {device:?} is not supported here"),
            Misaligned { address, align } => write!(
                f,
                "the first element at {address:#x} is not aligned to {align} bytes as the element type requires"
            ),
            NotContiguous => f.write_str("the tensor is not C-contiguous"),
            OverlappingElements { axis, stride } => write!(
                f,
                "axis {axis} (stride {stride}) reaches elements that other indices reach too; \
                 a mutable view of overlapping elements is not allowed (use a read-only view)"
            ),
            ReadOnly => f.write_str(
                "the tensor is read-only (READ_ONLY flag set, or a legacy tensor that cannot signal writability)",
            ),
            ReadOnlyLegacyExport => f.write_str(
                "cannot export read-only data as a legacy DLManagedTensor (max_version=None), \
                 because it cannot signal READ_ONLY; ask for max_version >= (1, 0)",
            ),
            InvalidStream { device_type, stream, rule } => {
                write!(f, "stream={stream} is not valid for {device_type:?}: {rule}")
            }
            CopyRequired { from, to } => write!(
                f,
                "copy=False, but exporting data on {from:?} to {to:?} needs a copy"
            ),
            UnsupportedTargetDevice { from, to } => write!(
                f,
                "cannot provide data on {from:?} as {to:?}: only the tensor's own device or kDLCPU (for host-copyable memory) is supported"
            ),
            InvalidMaxVersion { major, minor } => write!(
                f,
                "max_version=({major}, {minor}) is not a valid version: both numbers must be >= 0"
            ),
        }
    }
}

impl core::error::Error for Error {}
