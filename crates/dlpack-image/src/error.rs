//! What an import refuses, with the refused value.

use core::fmt;

use dlpack_core::ErrorKind;
use dlpack_core::tensor::Access;

/// Why a tensor cannot become an image buffer of the pixel type asked for.
///
/// Every variant carries the value that was refused; `Display` names it and
/// the rule. [`Error::kind`] gives the Python exception it maps to, as the
/// core's errors do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The tensor breaks a rule of the standard (NULL pointers, bad
    /// extents, ...) or does not hold the pixel type's subpixels in host
    /// memory (dtype, device, alignment): the core's error, unchanged.
    Tensor(dlpack_core::Error),
    /// The rank is neither 3 (height, width, channels) nor, for a
    /// one-channel pixel type, 2 (height, width).
    Rank {
        /// The tensor's shape.
        shape: Vec<i64>,
        /// The pixel type's channel count.
        channels: u8,
    },
    /// The last axis is not the pixel type's channel count.
    Channels {
        /// The pixel type's channel count.
        expected: u8,
        /// The extent of the tensor's last axis.
        found: i64,
    },
    /// The height or the width does not fit the `u32` an image buffer
    /// counts pixels with.
    TooLarge {
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// The extent found.
        extent: i64,
    },
    /// The elements are not compact in height, width, channel order (a
    /// crop, a transposed or channel-first tensor, a broadcast): an image
    /// buffer cannot view them. [`copy_image`](crate::consumer::copy_image)
    /// copies them into a new buffer.
    NotCompact {
        /// The tensor's shape.
        shape: Vec<i64>,
        /// Its strides, in elements.
        strides: Vec<i64>,
        /// The strides a compact tensor of that shape has.
        compact: Vec<i64>,
    },
    /// Write access was asked for data the producer did not mark writable:
    /// `READ_ONLY` is set ([`Access::ReadOnly`]), or the tensor is a legacy
    /// one, which cannot say ([`Access::Unknown`]).
    NotWritable {
        /// What the producer said.
        access: Access,
    },
}

impl Error {
    /// The Python exception this error maps to: a wrong rank or channel
    /// count is a `TypeError` (the pixel type asked for does not fit, as a
    /// dtype mismatch is), the rest `BufferError`, and the core's errors
    /// keep their own kind.
    ///
    /// ```
    /// use dlpack_core::ErrorKind;
    /// use dlpack_image::Error;
    ///
    /// assert_eq!(Error::Channels { expected: 3, found: 4 }.kind(), ErrorKind::Type);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Tensor(err) => err.kind(),
            Error::Rank { .. } | Error::Channels { .. } => ErrorKind::Type,
            Error::TooLarge { .. } | Error::NotCompact { .. } | Error::NotWritable { .. } => {
                ErrorKind::Buffer
            }
        }
    }
}

impl From<dlpack_core::Error> for Error {
    fn from(err: dlpack_core::Error) -> Self {
        Error::Tensor(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tensor(err) => err.fmt(f),
            Error::Rank { shape, channels: 1 } => write!(
                f,
                "a tensor of shape {shape:?} is not an image: it must have 3 dimensions \
                 (height, width, 1) or 2 (height, width)"
            ),
            Error::Rank { shape, channels } => write!(
                f,
                "a tensor of shape {shape:?} is not an image: it must have 3 dimensions \
                 (height, width, {channels})"
            ),
            Error::Channels { expected, found } => write!(
                f,
                "the last axis has {found} channels but the pixel type has {expected}"
            ),
            Error::TooLarge { axis, extent } => write!(
                f,
                "the {axis} is {extent}, more than an image buffer can hold (u32::MAX)"
            ),
            Error::NotCompact {
                shape,
                strides,
                compact,
            } => write!(
                f,
                "strides {strides:?} of a tensor of shape {shape:?} are not compact in height, \
                 width, channel order ({compact:?}); copy_image makes a compact copy"
            ),
            Error::NotWritable { access } => match access {
                Access::Unknown => f.write_str(
                    "a mutable image of a legacy tensor was asked for, but a legacy tensor \
                     cannot say whether its data may be written",
                ),
                _ => f.write_str(
                    "a mutable image was asked for, but the tensor is read-only (READ_ONLY is set)",
                ),
            },
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tensor(err) => Some(err),
            _ => None,
        }
    }
}
