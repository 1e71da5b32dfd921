//! What the shm tests share.

use dlpack_core::ffi::{DLDataType, DLDataTypeCode};

/// Every dtype the core knows, by code: (code, bits) with one lane, plus
/// lanes for one of them.
pub fn known_dtypes() -> Vec<DLDataType> {
    let mut out = Vec::new();
    for code in 0u8..=18 {
        for bits in [4u8, 6, 8, 16, 32, 64, 128] {
            let d = DLDataType {
                code,
                bits,
                lanes: 1,
            };
            // Known, and describing memory (opaque handles of 4 or 6 bits do not).
            if d.check_known().is_ok() && d.storage(false).is_ok() {
                out.push(d);
            }
        }
    }
    out.push(DLDataType::new(DLDataTypeCode::kDLFloat, 32, 4));
    out
}
