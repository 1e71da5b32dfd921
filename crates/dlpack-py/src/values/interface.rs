//! Element types of the other protocols: NumPy `typestr` (array interfaces)
//! and PEP 3118 format strings (buffer protocol), both ways.
//!
//! Only native byte order and single plain elements are representable in
//! DLPack; everything else is refused with a message naming the value and
//! the rule (the caller raises `BufferError`).

use dlpack_core::ffi::{DLDataType, DLDataTypeCode};

const LITTLE: bool = cfg!(target_endian = "little");

/// The DLPack dtype of a NumPy `typestr` such as `"<f4"` or `"|u1"`.
pub fn typestr_dtype(typestr: &str) -> Result<DLDataType, String> {
    let b = typestr.as_bytes();
    // Byte order and kind are single ASCII characters, so the size starts
    // at byte 2 on a character boundary (any other text is refused here,
    // before it is sliced).
    if b.len() < 3 || !b[0].is_ascii() || !b[1].is_ascii() {
        return Err(format!(
            "typestr {typestr:?} is not <byteorder><kind><size> with ASCII byte order and kind \
             (e.g. \"<f4\")"
        ));
    }
    let order_ok = match b[0] {
        b'|' | b'=' => true,
        b'<' => LITTLE,
        b'>' => !LITTLE,
        _ => {
            return Err(format!(
                "typestr {typestr:?}: byte order must be one of '<', '>', '|', '='"
            ));
        }
    };
    let digits = &typestr[2..];
    let size: u32 = digits
        .bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
        .ok_or_else(|| {
        format!("typestr {typestr:?}: the item size must be a plain number of bytes (units such as [ns] are not supported)")
    })?;
    let (code, ok) = match b[1] {
        b'b' => (DLDataTypeCode::kDLBool, size == 1),
        b'i' => (DLDataTypeCode::kDLInt, matches!(size, 1 | 2 | 4 | 8)),
        b'u' => (DLDataTypeCode::kDLUInt, matches!(size, 1 | 2 | 4 | 8)),
        b'f' => (DLDataTypeCode::kDLFloat, matches!(size, 2 | 4 | 8)),
        b'c' => (DLDataTypeCode::kDLComplex, matches!(size, 8 | 16)),
        k => {
            return Err(format!(
                "typestr {typestr:?}: kind {:?} has no DLPack type (only b, i, u, f, c are supported)",
                k as char
            ));
        }
    };
    if !ok {
        return Err(format!(
            "typestr {typestr:?}: {size}-byte items of kind {:?} have no DLPack type (long double and odd sizes are not supported)",
            b[1] as char
        ));
    }
    if !order_ok && size > 1 {
        return Err(format!(
            "typestr {typestr:?} is not in native byte order; DLPack only describes native-endian data"
        ));
    }
    Ok(DLDataType {
        code: code.0,
        // `ok` admits sizes of at most 16 bytes.
        bits: u8::try_from(size * 8).map_err(|_| format!("typestr {typestr:?}: too wide"))?,
        lanes: 1,
    })
}

/// The NumPy `typestr` of a DLPack dtype, if it has one.
pub fn dtype_typestr(dtype: DLDataType) -> Option<&'static str> {
    if dtype.lanes != 1 {
        return None;
    }
    let le = LITTLE;
    Some(match (dtype.code, dtype.bits) {
        (6, 8) => "|b1",
        (0, 8) => "|i1",
        (1, 8) => "|u1",
        (0, 16) => {
            if le {
                "<i2"
            } else {
                ">i2"
            }
        }
        (0, 32) => {
            if le {
                "<i4"
            } else {
                ">i4"
            }
        }
        (0, 64) => {
            if le {
                "<i8"
            } else {
                ">i8"
            }
        }
        (1, 16) => {
            if le {
                "<u2"
            } else {
                ">u2"
            }
        }
        (1, 32) => {
            if le {
                "<u4"
            } else {
                ">u4"
            }
        }
        (1, 64) => {
            if le {
                "<u8"
            } else {
                ">u8"
            }
        }
        (2, 16) => {
            if le {
                "<f2"
            } else {
                ">f2"
            }
        }
        (2, 32) => {
            if le {
                "<f4"
            } else {
                ">f4"
            }
        }
        (2, 64) => {
            if le {
                "<f8"
            } else {
                ">f8"
            }
        }
        (5, 64) => {
            if le {
                "<c8"
            } else {
                ">c8"
            }
        }
        (5, 128) => {
            if le {
                "<c16"
            } else {
                ">c16"
            }
        }
        _ => return None,
    })
}

/// The DLPack dtype of a PEP 3118 format string with item size `itemsize`
/// (`None` format means `"B"`).
pub fn format_dtype(format: Option<&str>, itemsize: isize) -> Result<DLDataType, String> {
    let fmt = format.unwrap_or("B");
    let (native_size, order_ok, rest) = match fmt.as_bytes().first() {
        Some(b'@') => (true, true, &fmt[1..]),
        Some(b'=') => (false, true, &fmt[1..]),
        Some(b'<') => (false, LITTLE, &fmt[1..]),
        Some(b'>') | Some(b'!') => (false, !LITTLE, &fmt[1..]),
        _ => (true, true, fmt),
    };
    let long_bits = if native_size {
        8 * std::mem::size_of::<std::ffi::c_long>() as u8
    } else {
        32
    };
    let ssize_bits = 8 * std::mem::size_of::<isize>() as u8;
    use DLDataTypeCode as C;
    let (code, bits) = match rest {
        "?" => (C::kDLBool, 8),
        "b" => (C::kDLInt, 8),
        "B" => (C::kDLUInt, 8),
        "h" => (C::kDLInt, 16),
        "H" => (C::kDLUInt, 16),
        "i" => (C::kDLInt, 32),
        "I" => (C::kDLUInt, 32),
        "l" => (C::kDLInt, long_bits),
        "L" => (C::kDLUInt, long_bits),
        "q" => (C::kDLInt, 64),
        "Q" => (C::kDLUInt, 64),
        "n" if native_size => (C::kDLInt, ssize_bits),
        "N" if native_size => (C::kDLUInt, ssize_bits),
        "e" => (C::kDLFloat, 16),
        "f" => (C::kDLFloat, 32),
        "d" => (C::kDLFloat, 64),
        "Zf" | "F" => (C::kDLComplex, 64),
        "Zd" | "D" => (C::kDLComplex, 128),
        _ => {
            return Err(format!(
                "buffer format {fmt:?} has no DLPack type (only single native numeric items \
                 ?, b, B, h, H, i, I, l, L, q, Q, n, N, e, f, d, Zf, Zd are supported)"
            ));
        }
    };
    if !order_ok && bits > 8 {
        return Err(format!(
            "buffer format {fmt:?} is not in native byte order; DLPack only describes native-endian data"
        ));
    }
    if itemsize.checked_mul(8) != Some(isize::from(bits)) {
        return Err(format!(
            "buffer format {fmt:?} implies {} bytes per item but the exporter reports itemsize {itemsize}",
            bits / 8
        ));
    }
    Ok(DLDataType {
        code: code.0,
        bits,
        lanes: 1,
    })
}

/// The PEP 3118 format of a DLPack dtype (native order), if it has one.
pub fn dtype_format(dtype: DLDataType) -> Option<&'static std::ffi::CStr> {
    if dtype.lanes != 1 {
        return None;
    }
    Some(match (dtype.code, dtype.bits) {
        (6, 8) => c"?",
        (0, 8) => c"b",
        (1, 8) => c"B",
        (0, 16) => c"h",
        (1, 16) => c"H",
        (0, 32) => c"i",
        (1, 32) => c"I",
        (0, 64) => c"q",
        (1, 64) => c"Q",
        (2, 16) => c"e",
        (2, 32) => c"f",
        (2, 64) => c"d",
        (5, 64) => c"Zf",
        (5, 128) => c"Zd",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of the functions' documentation.
    #[test]
    fn typestr_and_format_examples() {
        use dlpack_core::ffi::DLDataType;
        assert_eq!(typestr_dtype("<f4"), Ok(DLDataType::F32));
        assert!(typestr_dtype(">f4").is_err() || cfg!(target_endian = "big"));
        assert_eq!(format_dtype(Some("d"), 8), Ok(DLDataType::F64));
        assert_eq!(format_dtype(None, 1), Ok(DLDataType::U8));
        assert!(format_dtype(Some("T{i:a:}"), 4).is_err());
    }

    /// Foreign text is refused with a message, never sliced inside a
    /// character or multiplied past its type.
    #[test]
    fn foreign_text_and_sizes_are_refused_not_panicked_on() {
        for t in [
            "<é4",
            "é<f4",
            "<fé",
            "<f٤",
            "<f+4",
            "<f",
            "",
            "<f99999999999",
        ] {
            let err = typestr_dtype(t).unwrap_err();
            assert!(err.contains(&format!("{t:?}")), "{err}");
        }
        for size in [isize::MAX, isize::MIN, isize::MAX / 4, -1, 0] {
            let err = format_dtype(Some("d"), size).unwrap_err();
            assert!(err.contains(&size.to_string()), "{err}");
        }
        assert!(format_dtype(Some("é"), 1).is_err());
        assert!(format_dtype(Some("<é"), 1).is_err());
    }
}
