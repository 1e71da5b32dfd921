//! candle `DType` ⇄ DLPack dtype: one table, read both ways.

use candle_core::DType;
use dlpack_core::ffi::{DLDataType, DLDataTypeCode as Code};

/// Every candle dtype with its DLPack dtype, one row each.
///
/// - `F8E4M3` is candle's `float8::F8E4M3`, which holds the bytes of the
///   OCP "E4M3FN" format (PyTorch's `float8_e4m3fn`, safetensors'
///   `F8_E4M3`): `kDLFloat8_e4m3fn`, not the IEEE-style `kDLFloat8_e4m3`.
/// - `F8E8M0` is one byte per element: `kDLFloat8_e8m0fnu`.
/// - `F6E2M3`, `F6E3M2`, `F4` are raw bytes to candle, packed as
///   safetensors stores them (where candle gets them from): DLPack's packed
///   sub-byte storage, without `IS_SUBBYTE_TYPE_PADDED`.
pub const TABLE: &[(DType, DLDataType)] = &[
    (DType::U8, DLDataType::U8),
    (DType::U32, DLDataType::U32),
    (DType::I16, DLDataType::I16),
    (DType::I32, DLDataType::I32),
    (DType::I64, DLDataType::I64),
    (DType::BF16, DLDataType::BF16),
    (DType::F16, DLDataType::F16),
    (DType::F32, DLDataType::F32),
    (DType::F64, DLDataType::F64),
    (DType::F8E4M3, DLDataType::new(Code::kDLFloat8_e4m3fn, 8, 1)),
    (
        DType::F8E8M0,
        DLDataType::new(Code::kDLFloat8_e8m0fnu, 8, 1),
    ),
    (DType::F6E2M3, DLDataType::new(Code::kDLFloat6_e2m3fn, 6, 1)),
    (DType::F6E3M2, DLDataType::new(Code::kDLFloat6_e3m2fn, 6, 1)),
    (DType::F4, DLDataType::new(Code::kDLFloat4_e2m1fn, 4, 1)),
];

/// The DLPack dtype of a candle dtype (`None` for a variant newer than this
/// table).
///
/// ```
/// use candle_core::DType;
/// use dlpack_core::ffi::DLDataType;
///
/// assert_eq!(dlpack_candle::dtype::to_dlpack(DType::BF16), Some(DLDataType::BF16));
/// ```
pub fn to_dlpack(dtype: DType) -> Option<DLDataType> {
    TABLE.iter().find(|(d, _)| *d == dtype).map(|(_, dl)| *dl)
}

/// The candle dtype of a DLPack dtype, if candle has one.
///
/// ```
/// use candle_core::DType;
/// use dlpack_core::ffi::DLDataType;
///
/// assert_eq!(dlpack_candle::dtype::from_dlpack(DLDataType::I16), Some(DType::I16));
/// assert_eq!(dlpack_candle::dtype::from_dlpack(DLDataType::U16), None);
/// ```
pub fn from_dlpack(dtype: DLDataType) -> Option<DType> {
    TABLE.iter().find(|(_, dl)| *dl == dtype).map(|(d, _)| *d)
}
