//! The header format alone: round trips and refusals, pure (runs under miri).

mod common;
use common::known_dtypes;
use dlpack_core::ffi::{DLDataType, DLDataTypeCode};
use dlpack_shm::Error;
use dlpack_shm::format::{FIXED_HEADER, Header, MAGIC, VERSION, header_size};

fn header(dtype: DLDataType, shape: &[i64], strides: &[i64], payload_len: u64) -> Header {
    Header {
        nonce: 0x0123_4567_89ab_cdef,
        creator_pid: 4242,
        read_only: false,
        subbyte_padded: false,
        dtype,
        shape: shape.to_vec(),
        strides: strides.to_vec(),
        payload_offset: 128,
        payload_len,
        byte_offset: 0,
    }
}

fn segment_len(h: &Header) -> u64 {
    h.payload_offset + h.payload_len
}

#[test]
fn every_known_dtype_round_trips() {
    let dtypes = known_dtypes();
    // Every code of the standard appears (opaque handles included).
    for code in 0u8..=18 {
        assert!(dtypes.iter().any(|d| d.code == code), "code {code}");
    }
    for dtype in dtypes {
        let bits = u64::from(dtype.bits) * u64::from(dtype.lanes);
        // Sub-byte elements are packed: 8 of them need bits bytes.
        let (shape, len) = if bits % 8 == 0 {
            ([3i64, 2], 6 * bits / 8)
        } else {
            ([2, 4], bits)
        };
        let h = header(dtype, &shape, &[2, 1], len);
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), header_size(2));
        let back = Header::parse(&bytes, segment_len(&h)).unwrap();
        assert_eq!(back, h, "{dtype:?}");
        // Little-endian on disk, whatever the host.
        assert_eq!(&bytes[0..8], &MAGIC);
        assert_eq!(bytes[8..12], VERSION.to_le_bytes());
        assert_eq!(bytes[32], dtype.code);
    }
}

#[test]
fn strides_offsets_and_flags_round_trip() {
    // A float64 column walked backwards, element 0 at the end of its span.
    let mut h = header(DLDataType::F64, &[3], &[-4], 80);
    h.byte_offset = 64;
    h.read_only = true;
    let back = Header::parse(&h.to_bytes(), segment_len(&h)).unwrap();
    assert_eq!(back, h);
    // Broadcast (zero stride), 0-d and size-zero tensors.
    for (shape, strides, len) in [
        (&[5i64, 2][..], &[0i64, 1][..], 8u64),
        (&[][..], &[][..], 4),
        (&[0, 7][..], &[123, -9][..], 0),
    ] {
        let h = header(DLDataType::F32, shape, strides, len);
        assert_eq!(Header::parse(&h.to_bytes(), segment_len(&h)).unwrap(), h);
    }
    // Padded sub-byte elements take one byte each.
    let mut h = header(DLDataType::new(DLDataTypeCode(17), 4, 1), &[3], &[1], 3);
    h.subbyte_padded = true;
    assert_eq!(Header::parse(&h.to_bytes(), segment_len(&h)).unwrap(), h);
}

/// A valid header of a 2 x 3 float32 tensor.
fn valid() -> (Vec<u8>, u64) {
    let h = header(DLDataType::F32, &[2, 3], &[3, 1], 24);
    (h.to_bytes(), segment_len(&h))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Each bad header, the error it must give, and what the message names.
#[test]
fn bad_headers_are_refused_naming_value_and_rule() {
    type Edit = fn(&mut Vec<u8>, &mut u64);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "empty",
            |b, n| {
                b.clear();
                *n = 0
            },
            "0 bytes, but the fixed header needs 64",
        ),
        (
            "short",
            |b, n| {
                b.truncate(40);
                *n = 40
            },
            "40 bytes",
        ),
        (
            "foreign",
            |b, _| b[0..8].copy_from_slice(b"PSM_XXXX"),
            "not a dlpack shared-memory segment",
        ),
        ("version", |b, _| put_u32(b, 8, 2), "format version 2"),
        (
            "header size",
            |b, _| put_u32(b, 12, 65),
            "header size 65 must be 64 + 16 * ndim",
        ),
        ("flags", |b, _| put_u32(b, 28, 4), "flags 4"),
        ("dtype bits", |b, _| b[33] = 12, "float12"),
        (
            "dtype lanes",
            |b, _| {
                b[34] = 0;
                b[35] = 0
            },
            "inconsistent",
        ),
        (
            "ndim",
            |b, _| put_u32(b, 36, 1025),
            "ndim 1025 must be at most 1024",
        ),
        ("ndim vs header", |b, _| put_u32(b, 36, 3), "header size 96"),
        (
            "payload unaligned",
            |b, _| put_u64(b, 40, 120),
            "payload offset 120",
        ),
        (
            "payload in header",
            |b, _| put_u64(b, 40, 64),
            "payload offset 64",
        ),
        (
            "payload overflow",
            |b, _| put_u64(b, 48, u64::MAX),
            "must fit in 64 bits",
        ),
        (
            "payload truncated",
            |_, n| *n -= 1,
            "151 bytes, but the payload",
        ),
        (
            "negative extent",
            |b, _| put_u64(b, 64, (-2i64) as u64),
            "-2",
        ),
        (
            "outside payload",
            |b, _| put_u64(b, 56, 4),
            "reach bytes [4, 28) of a 24-byte payload",
        ),
        (
            "stride overflow",
            |b, _| put_u64(b, 80, i64::MAX as u64),
            "overflow",
        ),
        (
            "extent overflow",
            |b, _| {
                put_u64(b, 64, i64::MAX as u64);
                put_u64(b, 72, i64::MAX as u64)
            },
            "overflow",
        ),
    ];
    for (what, edit, needle) in cases {
        let (mut bytes, mut len) = valid();
        edit(&mut bytes, &mut len);
        let err = Header::parse(&bytes, len).expect_err(what);
        let msg = err.to_string().to_lowercase();
        assert!(msg.contains(&needle.to_lowercase()), "{what}: {msg}");
        assert_eq!(
            err.kind(),
            dlpack_core::error::ErrorKind::Value,
            "{what}: {err:?}"
        );
        if *what == "foreign" {
            assert!(matches!(err, Error::Foreign { .. }));
        }
    }
}

#[test]
fn a_header_longer_than_the_bytes_given_is_truncated() {
    let (bytes, len) = valid();
    let err = Header::parse(&bytes[..FIXED_HEADER + 8], len).unwrap_err();
    assert!(matches!(err, Error::Truncated { needed: 96, .. }), "{err}");
}

#[cfg(not(miri))]
mod mutations {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes, any segment size: parse never panics, and what it
        /// accepts re-encodes to the same header and fits the segment.
        #[test]
        fn mutated_headers_never_panic(
            edits in proptest::collection::vec((0usize..160, any::<u8>()), 0..12),
            cut in 0usize..200,
            len_delta in -40i64..40,
        ) {
            let (mut bytes, len) = valid();
            bytes.resize(160, 0);
            for (at, v) in edits {
                bytes[at] = v;
            }
            bytes.truncate(cut.max(1));
            let seg = len.saturating_add_signed(len_delta);
            if let Ok(h) = Header::parse(&bytes, seg) {
                prop_assert!(h.payload_offset + h.payload_len <= seg);
                let again = h.to_bytes();
                prop_assert_eq!(Header::parse(&again, seg).unwrap(), h);
            }
        }
    }
}
