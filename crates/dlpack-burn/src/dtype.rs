//! burn's `DType` ⇄ DLPack's `DLDataType`: one table, read both ways.
//!
//! | burn `DType`            | DLPack        |
//! |-------------------------|---------------|
//! | `F64`, `F32`, `F16`     | `float64`, `float32`, `float16` |
//! | `BF16`                  | `bfloat16`    |
//! | `I64` .. `I8`           | `int64` .. `int8` |
//! | `U64` .. `U8`           | `uint64` .. `uint8` |
//! | `Bool(BoolStore::Native)` | `bool` (8 bits) |
//!
//! Export only: `Flex32` (stored as `f32`) travels as `float32`, and
//! `Bool(BoolStore::U8)` (one byte, 0 or 1) as `bool`. Refused:
//! `Bool(BoolStore::U32)` (DLPack's `bool` is one byte) and every quantized
//! dtype (`QFloat`: packed values plus scales, no DLPack dtype), with
//! [`Error::NoDlpackDtype`]; on import every DLPack dtype burn lacks
//! (complex, float8/6/4, vectors of lanes > 1) with [`Error::NoBurnDtype`].

use burn_std::{BoolStore, DType};
use dlpack_core::ffi::DLDataType;

use crate::error::Error;

/// The dtypes both sides have, in one table.
const TABLE: [(DType, DLDataType); 13] = [
    (DType::F64, DLDataType::F64),
    (DType::F32, DLDataType::F32),
    (DType::F16, DLDataType::F16),
    (DType::BF16, DLDataType::BF16),
    (DType::I64, DLDataType::I64),
    (DType::I32, DLDataType::I32),
    (DType::I16, DLDataType::I16),
    (DType::I8, DLDataType::I8),
    (DType::U64, DLDataType::U64),
    (DType::U32, DLDataType::U32),
    (DType::U16, DLDataType::U16),
    (DType::U8, DLDataType::U8),
    (DType::Bool(BoolStore::Native), DLDataType::BOOL),
];

/// The burn dtype of a DLPack dtype.
///
/// # Errors
///
/// [`Error::NoBurnDtype`] for a dtype burn does not have.
///
/// ```
/// use burn_std::DType;
/// use dlpack_burn::dtype::burn_dtype;
/// use dlpack_core::ffi::DLDataType;
///
/// assert_eq!(burn_dtype(DLDataType::BF16)?, DType::BF16);
/// assert!(burn_dtype(DLDataType::C64).is_err());
/// # Ok::<(), dlpack_burn::Error>(())
/// ```
pub fn burn_dtype(dtype: DLDataType) -> Result<DType, Error> {
    TABLE
        .iter()
        .find(|(_, dl)| *dl == dtype)
        .map(|(burn, _)| *burn)
        .ok_or(Error::NoBurnDtype { dtype })
}

/// The DLPack dtype of a burn dtype.
///
/// # Errors
///
/// [`Error::NoDlpackDtype`] for quantized dtypes and `Bool(BoolStore::U32)`.
///
/// ```
/// use burn_std::{BoolStore, DType};
/// use dlpack_burn::dtype::dlpack_dtype;
/// use dlpack_core::ffi::DLDataType;
///
/// assert_eq!(dlpack_dtype(DType::Flex32)?, DLDataType::F32);
/// assert_eq!(dlpack_dtype(DType::Bool(BoolStore::U8))?, DLDataType::BOOL);
/// assert!(dlpack_dtype(DType::Bool(BoolStore::U32)).is_err());
/// # Ok::<(), dlpack_burn::Error>(())
/// ```
pub fn dlpack_dtype(dtype: DType) -> Result<DLDataType, Error> {
    match dtype {
        DType::Flex32 => Ok(DLDataType::F32),
        DType::Bool(BoolStore::U8) => Ok(DLDataType::BOOL),
        _ => TABLE
            .iter()
            .find(|(burn, _)| *burn == dtype)
            .map(|(_, dl)| *dl)
            .ok_or(Error::NoDlpackDtype { dtype }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_reads_both_ways() {
        for (burn, dl) in TABLE {
            assert_eq!(burn_dtype(dl).unwrap(), burn);
            assert_eq!(dlpack_dtype(burn).unwrap(), dl);
            // Sizes agree: the bytes are reinterpreted, never converted.
            assert_eq!(burn.size() * 8, usize::from(dl.bits), "{burn:?}");
        }
    }
}
