//! Element types: the `(code, bits, lanes)` rules of the standard and the
//! mapping of Rust scalars onto them ([`Element`]).

use core::fmt;

use crate::error::Error;
use crate::ffi::{DLDataType, DLDataTypeCode};

/// How an element occupies memory.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// Whole bytes per element (`bits * lanes` is a multiple of 8).
    Bytes(u32),
    /// Packed below one byte, little bit-endian: element `i` is
    /// `(data >> (i * bits)) & mask`. Elements are not addressable.
    PackedBits(u32),
}

impl DLDataTypeCode {
    /// The header's name of a known code (`"kDLFloat"`), or `None`.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "kDLInt",
            1 => "kDLUInt",
            2 => "kDLFloat",
            3 => "kDLOpaqueHandle",
            4 => "kDLBfloat",
            5 => "kDLComplex",
            6 => "kDLBool",
            7 => "kDLFloat8_e3m4",
            8 => "kDLFloat8_e4m3",
            9 => "kDLFloat8_e4m3b11fnuz",
            10 => "kDLFloat8_e4m3fn",
            11 => "kDLFloat8_e4m3fnuz",
            12 => "kDLFloat8_e5m2",
            13 => "kDLFloat8_e5m2fnuz",
            14 => "kDLFloat8_e8m0fnu",
            15 => "kDLFloat6_e2m3fn",
            16 => "kDLFloat6_e3m2fn",
            17 => "kDLFloat4_e2m1fn",
            18 => "kDLBcomplex",
            _ => return None,
        })
    }
}

impl fmt::Debug for DLDataTypeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "DLDataTypeCode({})", self.0),
        }
    }
}

impl DLDataType {
    /// A dtype of the given code, bits and lanes.
    pub const fn new(code: DLDataTypeCode, bits: u8, lanes: u16) -> Self {
        DLDataType {
            code: code.0,
            bits,
            lanes,
        }
    }

    /// `int8`.
    pub const I8: Self = Self::new(DLDataTypeCode::kDLInt, 8, 1);
    /// `int16`.
    pub const I16: Self = Self::new(DLDataTypeCode::kDLInt, 16, 1);
    /// `int32`.
    pub const I32: Self = Self::new(DLDataTypeCode::kDLInt, 32, 1);
    /// `int64`.
    pub const I64: Self = Self::new(DLDataTypeCode::kDLInt, 64, 1);
    /// `uint8`.
    pub const U8: Self = Self::new(DLDataTypeCode::kDLUInt, 8, 1);
    /// `uint16`.
    pub const U16: Self = Self::new(DLDataTypeCode::kDLUInt, 16, 1);
    /// `uint32`.
    pub const U32: Self = Self::new(DLDataTypeCode::kDLUInt, 32, 1);
    /// `uint64`.
    pub const U64: Self = Self::new(DLDataTypeCode::kDLUInt, 64, 1);
    /// `float16`.
    pub const F16: Self = Self::new(DLDataTypeCode::kDLFloat, 16, 1);
    /// `float32`.
    pub const F32: Self = Self::new(DLDataTypeCode::kDLFloat, 32, 1);
    /// `float64`.
    pub const F64: Self = Self::new(DLDataTypeCode::kDLFloat, 64, 1);
    /// `bfloat16`.
    pub const BF16: Self = Self::new(DLDataTypeCode::kDLBfloat, 16, 1);
    /// `complex64` (two `float32`; bits 64, not bits 32 x lanes 2).
    pub const C64: Self = Self::new(DLDataTypeCode::kDLComplex, 64, 1);
    /// `complex128`.
    pub const C128: Self = Self::new(DLDataTypeCode::kDLComplex, 128, 1);
    /// `bool`, stored in 8 bits.
    pub const BOOL: Self = Self::new(DLDataTypeCode::kDLBool, 8, 1);

    /// The code as the open newtype.
    pub const fn type_code(self) -> DLDataTypeCode {
        DLDataTypeCode(self.code)
    }

    /// How one element is stored, or why the dtype cannot describe memory.
    ///
    /// `padded` is the `IS_SUBBYTE_TYPE_PADDED` flag: padded sub-byte
    /// elements take one byte each. Unknown codes are accepted here as long
    /// as the size is meaningful: they are carried through and refused only
    /// by typed accessors ([`DLDataType::check_known`]).
    pub const fn storage(self, padded: bool) -> Result<Storage, Error> {
        let bits = self.bits as u32 * self.lanes as u32;
        if bits == 0 {
            return Err(Error::ZeroSizedElement { dtype: self });
        }
        if bits % 8 == 0 {
            return Ok(Storage::Bytes(bits / 8));
        }
        let sub_byte = matches!(self.code, 15..=17) && self.lanes == 1;
        if !sub_byte {
            return Err(Error::InvalidBitWidth { dtype: self });
        }
        if padded {
            Ok(Storage::Bytes(1))
        } else {
            Ok(Storage::PackedBits(bits))
        }
    }

    /// Checks that the code is one the standard defines and that `bits` is a
    /// width the standard allows for it (lanes may be any non-zero value).
    pub const fn check_known(self) -> Result<(), Error> {
        let ok = self.lanes != 0
            && match self.code {
                0 | 1 => matches!(self.bits, 8 | 16 | 32 | 64),
                2 => matches!(self.bits, 16 | 32 | 64),
                3 => self.bits != 0,
                4 => self.bits == 16,
                5 => matches!(self.bits, 32 | 64 | 128),
                6 => self.bits == 8,
                7..=14 => self.bits == 8,
                15 | 16 => self.bits == 6,
                17 => self.bits == 4,
                18 => self.bits == 32,
                _ => false,
            };
        if ok {
            Ok(())
        } else {
            Err(Error::UnsupportedDtype { dtype: self })
        }
    }
}

impl fmt::Debug for DLDataType {
    /// NumPy-like names (`float32`, `int8x4`); the raw triple for anything
    /// unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match self.code {
            0 => "int",
            1 => "uint",
            2 => "float",
            4 => "bfloat",
            5 => "complex",
            6 => "bool",
            3 => "opaque",
            _ => match DLDataTypeCode(self.code).name() {
                Some(name) => name,
                None => {
                    return write!(
                        f,
                        "DLDataType(code={}, bits={}, lanes={})",
                        self.code, self.bits, self.lanes
                    );
                }
            },
        };
        if self.code == 6 && self.bits == 8 {
            f.write_str(base)?;
        } else if self.code <= 6 {
            write!(f, "{base}{}", self.bits)?;
        } else {
            write!(f, "{base}(bits={})", self.bits)?;
        }
        if self.lanes != 1 {
            write!(f, "x{}", self.lanes)?;
        }
        Ok(())
    }
}

/// A Rust scalar type with a DLPack dtype.
///
/// # Safety
///
/// `size_of::<Self>()` must equal `DTYPE.bits * DTYPE.lanes / 8`, and every
/// bit pattern that a conforming producer stores for `DTYPE` must be a valid
/// value of `Self` (for `bool`, the standard stores 0 or 1 in 8 bits). Typed
/// views of foreign memory rely on both.
pub unsafe trait Element: Copy + Send + Sync + 'static {
    /// The dtype of this element.
    const DTYPE: DLDataType;
}

macro_rules! element {
    ($($t:ty => $dtype:expr),* $(,)?) => {$(
        // SAFETY: the dtype's width matches the type's size (checked below at
        // compile time), and every bit pattern of the dtype is a valid value
        // (integers and IEEE floats accept all patterns; bool is 0/1 per the
        // standard's storage rule).
        unsafe impl Element for $t {
            const DTYPE: DLDataType = $dtype;
        }
        const _: () = assert!(
            core::mem::size_of::<$t>() * 8 == $dtype.bits as usize * $dtype.lanes as usize
        );
    )*};
}

element! {
    i8 => DLDataType::I8,
    i16 => DLDataType::I16,
    i32 => DLDataType::I32,
    i64 => DLDataType::I64,
    u8 => DLDataType::U8,
    u16 => DLDataType::U16,
    u32 => DLDataType::U32,
    u64 => DLDataType::U64,
    f32 => DLDataType::F32,
    f64 => DLDataType::F64,
    bool => DLDataType::BOOL,
}

#[cfg(feature = "half")]
element! {
    half::f16 => DLDataType::F16,
    half::bf16 => DLDataType::BF16,
}

#[cfg(feature = "num-complex")]
element! {
    num_complex::Complex<f32> => DLDataType::C64,
    num_complex::Complex<f64> => DLDataType::C128,
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use super::*;
    use alloc::format;

    #[test]
    fn known_widths_table() {
        #[rustfmt::skip]
        let rows: &[(u8, &[u8])] = &[
            (0, &[8, 16, 32, 64]),       // kDLInt
            (1, &[8, 16, 32, 64]),       // kDLUInt
            (2, &[16, 32, 64]),          // kDLFloat
            (4, &[16]),                  // kDLBfloat
            (5, &[32, 64, 128]),         // kDLComplex
            (6, &[8]),                   // kDLBool
            (7, &[8]), (8, &[8]), (9, &[8]), (10, &[8]),
            (11, &[8]), (12, &[8]), (13, &[8]), (14, &[8]), // float8 variants
            (15, &[6]), (16, &[6]),      // float6
            (17, &[4]),                  // float4
            (18, &[32]),                 // kDLBcomplex
        ];
        for &(code, widths) in rows {
            for bits in 0..=255u8 {
                let dt = DLDataType {
                    code,
                    bits,
                    lanes: 1,
                };
                assert_eq!(
                    dt.check_known().is_ok(),
                    widths.contains(&bits),
                    "code {code} bits {bits}"
                );
            }
        }
        for code in 19..=255u8 {
            let dt = DLDataType {
                code,
                bits: 8,
                lanes: 1,
            };
            assert!(dt.check_known().is_err(), "unknown code {code}");
        }
        assert!(
            DLDataType {
                code: 2,
                bits: 32,
                lanes: 0
            }
            .check_known()
            .is_err()
        );
    }

    #[test]
    fn storage_rules() {
        let f4 = DLDataType::new(DLDataTypeCode::kDLFloat4_e2m1fn, 4, 1);
        let f6 = DLDataType::new(DLDataTypeCode::kDLFloat6_e3m2fn, 6, 1);
        assert_eq!(f4.storage(false), Ok(Storage::PackedBits(4)));
        assert_eq!(f4.storage(true), Ok(Storage::Bytes(1)));
        assert_eq!(f6.storage(false), Ok(Storage::PackedBits(6)));
        assert_eq!(DLDataType::C128.storage(false), Ok(Storage::Bytes(16)));
        let vec4 = DLDataType::new(DLDataTypeCode::kDLFloat, 32, 4);
        assert_eq!(vec4.storage(false), Ok(Storage::Bytes(16)));
        let int3 = DLDataType::new(DLDataTypeCode::kDLInt, 3, 1);
        assert_eq!(
            int3.storage(true),
            Err(Error::InvalidBitWidth { dtype: int3 })
        );
        let zero = DLDataType::new(DLDataTypeCode::kDLInt, 8, 0);
        assert_eq!(
            zero.storage(false),
            Err(Error::ZeroSizedElement { dtype: zero })
        );
        // Unknown codes with whole bytes are carried through.
        let unknown = DLDataType {
            code: 200,
            bits: 16,
            lanes: 1,
        };
        assert_eq!(unknown.storage(false), Ok(Storage::Bytes(2)));
    }

    #[test]
    fn debug_names() {
        assert_eq!(format!("{:?}", DLDataType::F32), "float32");
        assert_eq!(format!("{:?}", DLDataType::BOOL), "bool");
        assert_eq!(format!("{:?}", DLDataType::C64), "complex64");
        assert_eq!(
            format!("{:?}", DLDataType::new(DLDataTypeCode::kDLInt, 8, 4)),
            "int8x4"
        );
        assert_eq!(
            format!(
                "{:?}",
                DLDataType::new(DLDataTypeCode::kDLFloat4_e2m1fn, 4, 1)
            ),
            "kDLFloat4_e2m1fn(bits=4)"
        );
        assert_eq!(
            format!(
                "{:?}",
                DLDataType {
                    code: 99,
                    bits: 8,
                    lanes: 1
                }
            ),
            "DLDataType(code=99, bits=8, lanes=1)"
        );
    }

    #[test]
    fn rust_elements_map_to_the_standard() {
        assert_eq!(
            <bool as Element>::DTYPE,
            DLDataType {
                code: 6,
                bits: 8,
                lanes: 1
            }
        );
        assert_eq!(
            <u16 as Element>::DTYPE,
            DLDataType {
                code: 1,
                bits: 16,
                lanes: 1
            }
        );
        assert_eq!(
            <f64 as Element>::DTYPE,
            DLDataType {
                code: 2,
                bits: 64,
                lanes: 1
            }
        );
        #[cfg(feature = "half")]
        assert_eq!(
            <half::bf16 as Element>::DTYPE,
            DLDataType {
                code: 4,
                bits: 16,
                lanes: 1
            }
        );
        #[cfg(feature = "num-complex")]
        assert_eq!(
            <num_complex::Complex<f32> as Element>::DTYPE,
            DLDataType {
                code: 5,
                bits: 64,
                lanes: 1
            }
        );
    }
}
