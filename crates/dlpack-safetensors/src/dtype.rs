//! The element types of the format, as one table: the header's name, the
//! bits per element, and the DLPack dtype each one is.

use dlpack_core::ffi::{DLDataType, DLDataTypeCode};

/// An element type of the safetensors format (the header's `dtype`).
///
/// Every type the format defines (safetensors 0.8) has a DLPack dtype.
/// `F8_E4M3` is the finite-only format PyTorch calls `float8_e4m3fn`
/// (DLPack's `kDLFloat8_e4m3fn`), as the safetensors writers use it; `F4`
/// and `F6_*` are packed below one byte (DLPack's sub-byte floats, not
/// padded).
#[allow(non_camel_case_types)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// `bool`, one byte, 0 or 1.
    BOOL,
    /// `float4_e2m1fn`, packed two to a byte.
    F4,
    /// `float6_e2m3fn`, packed.
    F6_E2M3,
    /// `float6_e3m2fn`, packed.
    F6_E3M2,
    /// `uint8`.
    U8,
    /// `int8`.
    I8,
    /// `float8_e5m2`.
    F8_E5M2,
    /// `float8_e4m3fn` (finite, no infinities).
    F8_E4M3,
    /// `float8_e8m0fnu` (a scale: exponent only).
    F8_E8M0,
    /// `float8_e4m3fnuz`.
    F8_E4M3FNUZ,
    /// `float8_e5m2fnuz`.
    F8_E5M2FNUZ,
    /// `int16`.
    I16,
    /// `uint16`.
    U16,
    /// `float16`.
    F16,
    /// `bfloat16`.
    BF16,
    /// `int32`.
    I32,
    /// `uint32`.
    U32,
    /// `float32`.
    F32,
    /// `complex64` (two `float32`).
    C64,
    /// `float64`.
    F64,
    /// `int64`.
    I64,
    /// `uint64`.
    U64,
}

use DLDataTypeCode as C;

/// The table: each type's name in the header, bits per element, and DLPack
/// dtype. Every lookup is a scan or a match over it.
const TABLE: &[(Dtype, &str, u8, DLDataType)] = &[
    (Dtype::BOOL, "BOOL", 8, DLDataType::BOOL),
    (
        Dtype::F4,
        "F4",
        4,
        DLDataType::new(C::kDLFloat4_e2m1fn, 4, 1),
    ),
    (
        Dtype::F6_E2M3,
        "F6_E2M3",
        6,
        DLDataType::new(C::kDLFloat6_e2m3fn, 6, 1),
    ),
    (
        Dtype::F6_E3M2,
        "F6_E3M2",
        6,
        DLDataType::new(C::kDLFloat6_e3m2fn, 6, 1),
    ),
    (Dtype::U8, "U8", 8, DLDataType::U8),
    (Dtype::I8, "I8", 8, DLDataType::I8),
    (
        Dtype::F8_E5M2,
        "F8_E5M2",
        8,
        DLDataType::new(C::kDLFloat8_e5m2, 8, 1),
    ),
    (
        Dtype::F8_E4M3,
        "F8_E4M3",
        8,
        DLDataType::new(C::kDLFloat8_e4m3fn, 8, 1),
    ),
    (
        Dtype::F8_E8M0,
        "F8_E8M0",
        8,
        DLDataType::new(C::kDLFloat8_e8m0fnu, 8, 1),
    ),
    (
        Dtype::F8_E4M3FNUZ,
        "F8_E4M3FNUZ",
        8,
        DLDataType::new(C::kDLFloat8_e4m3fnuz, 8, 1),
    ),
    (
        Dtype::F8_E5M2FNUZ,
        "F8_E5M2FNUZ",
        8,
        DLDataType::new(C::kDLFloat8_e5m2fnuz, 8, 1),
    ),
    (Dtype::I16, "I16", 16, DLDataType::I16),
    (Dtype::U16, "U16", 16, DLDataType::U16),
    (Dtype::F16, "F16", 16, DLDataType::F16),
    (Dtype::BF16, "BF16", 16, DLDataType::BF16),
    (Dtype::I32, "I32", 32, DLDataType::I32),
    (Dtype::U32, "U32", 32, DLDataType::U32),
    (Dtype::F32, "F32", 32, DLDataType::F32),
    (Dtype::C64, "C64", 64, DLDataType::C64),
    (Dtype::F64, "F64", 64, DLDataType::F64),
    (Dtype::I64, "I64", 64, DLDataType::I64),
    (Dtype::U64, "U64", 64, DLDataType::U64),
];

impl Dtype {
    /// Every type, in the order of the table.
    pub const ALL: [Dtype; 22] = [
        Dtype::BOOL,
        Dtype::F4,
        Dtype::F6_E2M3,
        Dtype::F6_E3M2,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8_E5M2,
        Dtype::F8_E4M3,
        Dtype::F8_E8M0,
        Dtype::F8_E4M3FNUZ,
        Dtype::F8_E5M2FNUZ,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::C64,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    fn row(self) -> &'static (Dtype, &'static str, u8, DLDataType) {
        // The table lists every variant in declaration order.
        &TABLE[self as usize]
    }

    /// The type of a header's `dtype` string, or `None` for a name the
    /// format does not define.
    ///
    /// ```
    /// use dlpack_safetensors::Dtype;
    ///
    /// assert_eq!(Dtype::from_name("BF16"), Some(Dtype::BF16));
    /// assert_eq!(Dtype::from_name("bf16"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Dtype> {
        TABLE.iter().find(|row| row.1 == name).map(|row| row.0)
    }

    /// The header's name (`"F8_E4M3"`).
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// Bits per element: 4 or 6 for the packed floats, else 8 × bytes.
    pub fn bits(self) -> u8 {
        self.row().2
    }

    /// The DLPack dtype.
    ///
    /// ```
    /// use dlpack_core::ffi::{DLDataType, DLDataTypeCode};
    /// use dlpack_safetensors::Dtype;
    ///
    /// assert_eq!(Dtype::F32.to_dlpack(), DLDataType::F32);
    /// assert_eq!(Dtype::F8_E4M3.to_dlpack().type_code(), DLDataTypeCode::kDLFloat8_e4m3fn);
    /// ```
    pub fn to_dlpack(self) -> DLDataType {
        self.row().3
    }

    /// The type of a DLPack dtype, or `None` when the format has none
    /// (vector lanes, `complex128`, `float8_e3m4`, ...).
    pub fn from_dlpack(dtype: DLDataType) -> Option<Dtype> {
        TABLE.iter().find(|row| row.3 == dtype).map(|row| row.0)
    }

    /// The alignment an element needs in memory: its size for whole-byte
    /// scalars, 4 for `C64` (two `float32`), 1 for the packed ones.
    pub fn alignment(self) -> usize {
        match self {
            Dtype::C64 => 4,
            _ => usize::from(self.bits() / 8).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_variant_in_order() {
        for (i, dtype) in Dtype::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].0, *dtype);
            assert_eq!(*dtype as usize, i);
            assert_eq!(Dtype::from_name(dtype.name()), Some(*dtype));
            assert_eq!(Dtype::from_dlpack(dtype.to_dlpack()), Some(*dtype));
            // Every DLPack dtype of the table is one the standard defines.
            dtype.to_dlpack().check_known().unwrap();
        }
        assert_eq!(TABLE.len(), Dtype::ALL.len());
    }
}
