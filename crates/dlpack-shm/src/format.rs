//! The on-segment format: a fixed header, the shape and strides, then the
//! payload. Pure functions over bytes (no system call, no pointer), so they
//! are tested under miri and fuzzed directly.
//!
//! All integers are little-endian. Offsets are from the start of the segment.
//!
//! | offset | size | field | rule checked when reading |
//! |---:|---:|---|---|
//! | 0 | 8 | magic `b"DLPKSHM\0"` | exactly these bytes |
//! | 8 | 4 | format version (`u32`) | [`VERSION`] |
//! | 12 | 4 | header size (`u32`) | `64 + 16 * ndim`, inside the segment |
//! | 16 | 8 | nonce (`u64`) | equal to the handle's, when opened by handle |
//! | 24 | 4 | creator pid (`u32`) | any (informative; names carry it for cleanup) |
//! | 28 | 4 | flags (`u32`): bit 0 read-only, bit 1 sub-byte padded | no other bit set |
//! | 32 | 1 | dtype code | a code the standard defines, with a width it allows |
//! | 33 | 1 | dtype bits | (with the code) |
//! | 34 | 2 | dtype lanes (`u16`) | non-zero |
//! | 36 | 4 | ndim (`u32`) | at most [`MAX_NDIM`] |
//! | 40 | 8 | payload offset (`u64`) | a multiple of [`PAYLOAD_ALIGN`], >= header size |
//! | 48 | 8 | payload length in bytes (`u64`) | payload offset + length <= segment size |
//! | 56 | 8 | byte offset of element 0 in the payload (`u64`) | every element inside the payload |
//! | 64 | 8 · ndim | shape (`i64`) | non-negative, element count without overflow |
//! | 64 + 8 · ndim | 8 · ndim | strides in elements (`i64`) | byte reach without overflow |
//!
//! The payload starts at a multiple of [`PAYLOAD_ALIGN`] bytes from the
//! segment's (page-aligned) start, so every element type is aligned.
//! Strides are the tensor's own (any sign, zero for broadcast axes): the
//! byte offset places element 0 so that negative strides stay inside.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use dlpack_core::ffi::DLDataType;
use dlpack_core::layout::{Layout, analyze};

use crate::error::Error;

/// The first eight bytes of every segment.
pub const MAGIC: [u8; 8] = *b"DLPKSHM\0";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the fixed part of the header (before the shape).
pub const FIXED_HEADER: usize = 64;
/// Alignment of the payload from the segment's start (a cache line; the
/// mapping itself is page-aligned).
pub const PAYLOAD_ALIGN: u64 = 64;
/// The largest rank a segment may declare (bounds the header a reader
/// parses before it looks at the segment size).
pub const MAX_NDIM: u32 = 1024;

/// Header flag: the tensor is read-only (readers map it `PROT_READ`).
pub const FLAG_READ_ONLY: u32 = 1;
/// Header flag: sub-byte elements take one byte each (DLPack's
/// `IS_SUBBYTE_TYPE_PADDED`).
pub const FLAG_SUBBYTE_PADDED: u32 = 2;
const KNOWN_FLAGS: u32 = FLAG_READ_ONLY | FLAG_SUBBYTE_PADDED;

/// A validated header: what a segment holds and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Random value fixed at creation; handles carry it, so a handle never
    /// opens another segment that later took the same name.
    pub nonce: u64,
    /// The pid of the process that created the segment.
    pub creator_pid: u32,
    /// Whether readers get a read-only tensor (and mapping).
    pub read_only: bool,
    /// Whether sub-byte elements are padded to one byte each.
    pub subbyte_padded: bool,
    /// The element type.
    pub dtype: DLDataType,
    /// Extents.
    pub shape: Vec<i64>,
    /// Strides in elements (same length as `shape`).
    pub strides: Vec<i64>,
    /// Offset of the payload from the segment's start.
    pub payload_offset: u64,
    /// Bytes of payload.
    pub payload_len: u64,
    /// Offset of element 0 inside the payload.
    pub byte_offset: u64,
}

/// The bytes of the header of a tensor of rank `ndim`.
pub const fn header_size(ndim: usize) -> usize {
    FIXED_HEADER + 16 * ndim
}

/// `n` rounded up to the payload alignment (`None` on overflow).
pub const fn align_payload(n: u64) -> Option<u64> {
    match n.checked_add(PAYLOAD_ALIGN - 1) {
        Some(v) => Some(v / PAYLOAD_ALIGN * PAYLOAD_ALIGN),
        None => None,
    }
}

impl Header {
    /// Checks a header made by this process (its layout, and every element
    /// inside the payload) and returns the layout.
    ///
    /// # Errors
    ///
    /// As [`Header::parse`] for the same values.
    pub fn layout(&self) -> Result<Layout, Error> {
        if self.shape.len() != self.strides.len() {
            return Err(Error::inconsistent(
                "strides",
                self.strides.len() as i128,
                "must have one entry per axis of the shape",
            ));
        }
        if self.shape.len() > MAX_NDIM as usize {
            return Err(Error::inconsistent(
                "ndim",
                self.shape.len() as i128,
                "must be at most 1024",
            ));
        }
        self.dtype.check_known().map_err(Error::Header)?;
        let storage = self
            .dtype
            .storage(self.subbyte_padded)
            .map_err(Error::Header)?;
        let layout = analyze(&self.shape, Some(&self.strides), storage).map_err(Error::Header)?;
        if self.payload_offset % PAYLOAD_ALIGN != 0
            || self.payload_offset < header_size(self.shape.len()) as u64
        {
            return Err(Error::inconsistent(
                "payload offset",
                self.payload_offset.into(),
                "must be a multiple of 64 at or after the end of the header",
            ));
        }
        if layout.elements != 0 {
            let lo = i128::from(self.byte_offset) + i128::from(layout.start);
            let hi = i128::from(self.byte_offset) + i128::from(layout.end);
            if lo < 0 || hi > i128::from(self.payload_len) {
                return Err(Error::OutOfPayload {
                    byte_offset: self.byte_offset,
                    reach: (lo, hi),
                    payload_len: self.payload_len,
                });
            }
        }
        Ok(layout)
    }

    /// Bytes of the whole segment: payload offset plus payload length.
    ///
    /// # Errors
    ///
    /// [`Error::Inconsistent`] when the sum overflows.
    pub fn segment_len(&self) -> Result<u64, Error> {
        self.payload_offset
            .checked_add(self.payload_len)
            .ok_or_else(|| {
                Error::inconsistent(
                    "payload length",
                    self.payload_len.into(),
                    "payload offset + length must fit in 64 bits",
                )
            })
    }

    /// Writes the header into the first [`header_size`] bytes of `out`.
    ///
    /// # Panics
    ///
    /// When `out` is shorter than the header or shape and strides differ in
    /// length (both are this process's own values, checked by
    /// [`Header::layout`] first).
    pub fn write(&self, out: &mut [u8]) {
        let ndim = self.shape.len();
        assert_eq!(ndim, self.strides.len(), "shape and strides differ in rank");
        let out = &mut out[..header_size(ndim)];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(header_size(ndim) as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.nonce.to_le_bytes());
        out[24..28].copy_from_slice(&self.creator_pid.to_le_bytes());
        let flags = if self.read_only { FLAG_READ_ONLY } else { 0 }
            | if self.subbyte_padded {
                FLAG_SUBBYTE_PADDED
            } else {
                0
            };
        out[28..32].copy_from_slice(&flags.to_le_bytes());
        out[32] = self.dtype.code;
        out[33] = self.dtype.bits;
        out[34..36].copy_from_slice(&self.dtype.lanes.to_le_bytes());
        out[36..40].copy_from_slice(&(ndim as u32).to_le_bytes());
        out[40..48].copy_from_slice(&self.payload_offset.to_le_bytes());
        out[48..56].copy_from_slice(&self.payload_len.to_le_bytes());
        out[56..64].copy_from_slice(&self.byte_offset.to_le_bytes());
        for (i, (s, st)) in self.shape.iter().zip(&self.strides).enumerate() {
            let a = FIXED_HEADER + 8 * i;
            let b = FIXED_HEADER + 8 * (ndim + i);
            out[a..a + 8].copy_from_slice(&s.to_le_bytes());
            out[b..b + 8].copy_from_slice(&st.to_le_bytes());
        }
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = alloc::vec![0u8; header_size(self.shape.len())];
        self.write(&mut out);
        out
    }

    /// Reads and validates the header at the start of `bytes`, the first
    /// bytes of a segment of `segment_len` bytes (`bytes` may be the whole
    /// segment, or only its beginning: at least the header).
    ///
    /// Every field is checked, with checked arithmetic, against the format's
    /// rules and the segment size; a refusal names the field, its value and
    /// the rule.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`], [`Error::Foreign`], [`Error::Version`],
    /// [`Error::Inconsistent`], [`Error::OutOfPayload`] or
    /// [`Error::Tensor`] (shape, strides or dtype refused by the core).
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_core::ffi::DLDataType;
    /// use dlpack_shm::format::Header;
    ///
    /// let h = Header {
    ///     nonce: 7,
    ///     creator_pid: 1,
    ///     read_only: true,
    ///     subbyte_padded: false,
    ///     dtype: DLDataType::F32,
    ///     shape: vec![2, 3],
    ///     strides: vec![3, 1],
    ///     payload_offset: 128,
    ///     payload_len: 24,
    ///     byte_offset: 0,
    /// };
    /// let bytes = h.to_bytes();
    /// assert_eq!(Header::parse(&bytes, 152).unwrap(), h);
    /// // One byte short of the payload: refused, naming both sizes.
    /// let err = Header::parse(&bytes, 151).unwrap_err();
    /// assert!(err.to_string().contains("151"), "{err}");
    /// ```
    pub fn parse(bytes: &[u8], segment_len: u64) -> Result<Header, Error> {
        let available = (bytes.len() as u64).min(segment_len);
        if available < FIXED_HEADER as u64 {
            return Err(Error::Truncated {
                segment_len: available,
                needed: FIXED_HEADER as u64,
                what: "the fixed header",
            });
        }
        let magic: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(Error::Foreign { magic });
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(Error::Version { found: version });
        }
        let size = u32_at(bytes, 12);
        let nonce = u64_at(bytes, 16);
        let creator_pid = u32_at(bytes, 24);
        let flags = u32_at(bytes, 28);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::inconsistent(
                "flags",
                flags.into(),
                "only bit 0 (read-only) and bit 1 (sub-byte padded) are defined",
            ));
        }
        let dtype = DLDataType {
            code: bytes[32],
            bits: bytes[33],
            lanes: u16::from_le_bytes([bytes[34], bytes[35]]),
        };
        let ndim = u32_at(bytes, 36);
        if ndim > MAX_NDIM {
            return Err(Error::inconsistent(
                "ndim",
                ndim.into(),
                "must be at most 1024",
            ));
        }
        let ndim = ndim as usize;
        if size as usize != header_size(ndim) {
            return Err(Error::inconsistent(
                "header size",
                size.into(),
                "must be 64 + 16 * ndim",
            ));
        }
        if available < u64::from(size) {
            return Err(Error::Truncated {
                segment_len: available,
                needed: size.into(),
                what: "the header's shape and strides",
            });
        }
        let read = |i: usize| i64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let h = Header {
            nonce,
            creator_pid,
            read_only: flags & FLAG_READ_ONLY != 0,
            subbyte_padded: flags & FLAG_SUBBYTE_PADDED != 0,
            dtype,
            shape: (0..ndim).map(|i| read(FIXED_HEADER + 8 * i)).collect(),
            strides: (0..ndim)
                .map(|i| read(FIXED_HEADER + 8 * (ndim + i)))
                .collect(),
            payload_offset: u64_at(bytes, 40),
            payload_len: u64_at(bytes, 48),
            byte_offset: u64_at(bytes, 56),
        };
        let end = h.segment_len()?;
        if end > segment_len {
            return Err(Error::Truncated {
                segment_len,
                needed: end,
                what: "the payload (payload offset + payload length)",
            });
        }
        h.layout()?;
        Ok(h)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The handle of a segment: its name and the nonce of its header. Small
/// and plain (send it by any means: a pipe, a pickle, a command line via
/// its `Display` and [`Handle::parse`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    /// The segment's name (without the leading `/`).
    pub name: String,
    /// The nonce its header must hold.
    pub nonce: u64,
}

impl fmt::Display for Handle {
    /// `name#nonce` in hexadecimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:016x}", self.name, self.nonce)
    }
}

impl Handle {
    /// Parses what [`Handle`]'s `Display` wrote.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHandle`] naming the text.
    ///
    /// ```
    /// use dlpack_shm::Handle;
    /// let h = Handle { name: "dlpack-1-ab".into(), nonce: 42 };
    /// assert_eq!(Handle::parse(&h.to_string()).unwrap(), h);
    /// assert!(Handle::parse("no-nonce").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Handle, Error> {
        let bad = || Error::InvalidHandle {
            text: text.into(),
            rule: "a handle is `name#nonce` with a 16-digit hexadecimal nonce",
        };
        let (name, nonce) = text.rsplit_once('#').ok_or_else(bad)?;
        if nonce.len() != 16 || name.is_empty() {
            return Err(bad());
        }
        let nonce = u64::from_str_radix(nonce, 16).map_err(|_| bad())?;
        Ok(Handle {
            name: name.into(),
            nonce,
        })
    }
}
