//! DLPack → safetensors: tensors written as the bytes of a `.safetensors`
//! file, which every safetensors reader (this crate's
//! [`SafetensorsFile`](crate::SafetensorsFile), the Python and Rust
//! `safetensors` packages) loads.
//!
//! The layout is the one the `safetensors` writers use, so that a file
//! mapped at a page boundary has every tensor aligned: the header is padded
//! with spaces so the data section starts at a multiple of 8, and tensors
//! are laid out by decreasing element alignment, then by name.

use dlpack_core::tensor::TensorView;

use crate::dtype::Dtype;
use crate::error::Error;

/// The bytes of a `.safetensors` file holding `tensors` (name, compact
/// host tensor) and the string `metadata`.
///
/// # Errors
///
/// [`Error::DuplicateName`] for a name given twice (or `__metadata__`),
/// [`Error::UnsupportedDtype`] for a dtype the format lacks, and the core's
/// [`NotHostAccessible`](dlpack_core::Error::NotHostAccessible) /
/// [`NotContiguous`](dlpack_core::Error::NotContiguous) /
/// [`PackedSubByte`](dlpack_core::Error::PackedSubByte) (padded sub-byte
/// elements) as [`Error::Export`].
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_safetensors::{Dtype, Header, consumer::serialize};
///
/// let t = Export::new(vec![1u16, 2, 3]).versioned()?;
/// let bytes = serialize(&[("t", &t.view())], &[])?;
/// let header = Header::parse(&bytes)?;
/// assert_eq!(header.tensor("t").unwrap().dtype, Dtype::U16);
/// assert_eq!(header.data_start() % 8, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serialize(
    tensors: &[(&str, &TensorView<'_>)],
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>, Error> {
    let mut order = Vec::with_capacity(tensors.len());
    for &(name, view) in tensors {
        let dtype = Dtype::from_dlpack(view.dtype()).ok_or_else(|| Error::UnsupportedDtype {
            tensor: name.to_owned(),
            dtype: view.dtype(),
        })?;
        if !view.device().device_type.is_host_accessible() {
            return Err(dlpack_core::Error::NotHostAccessible {
                device: view.device(),
            }
            .into());
        }
        if !view.is_c_contiguous() {
            return Err(dlpack_core::Error::NotContiguous.into());
        }
        if view.flags().is_subbyte_padded() && dtype.bits() < 8 {
            return Err(dlpack_core::Error::PackedSubByte {
                dtype: view.dtype(),
            }
            .into());
        }
        order.push((name, dtype, view));
    }
    order.sort_by(|a, b| b.1.alignment().cmp(&a.1.alignment()).then(a.0.cmp(b.0)));
    if let Some(pair) = order.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::DuplicateName {
            name: pair[0].0.to_owned(),
        });
    }
    let mut json = String::from("{");
    if !metadata.is_empty() {
        json.push_str("\"__metadata__\":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_string(&mut json, k);
            json.push(':');
            push_string(&mut json, v);
        }
        json.push('}');
    }
    let mut offset = 0u64;
    for (i, (name, dtype, view)) in order.iter().enumerate() {
        if *name == "__metadata__" {
            return Err(Error::DuplicateName {
                name: (*name).to_owned(),
            });
        }
        if i > 0 || !metadata.is_empty() {
            json.push(',');
        }
        let len = view.layout().span_bytes();
        push_string(&mut json, name);
        json.push_str(&format!(
            ":{{\"dtype\":\"{}\",\"shape\":{:?},\"data_offsets\":[{},{}]}}",
            dtype.name(),
            view.shape(),
            offset,
            offset + len
        ));
        offset += len;
    }
    json.push('}');
    while (8 + json.len()) % 8 != 0 {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset as usize);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    for (_, _, view) in &order {
        let len = view.layout().span_bytes() as usize;
        if len != 0 {
            // SAFETY: a validated view of host-accessible memory, compact:
            // `len` bytes from its first element are its data, alive while
            // the view is.
            out.extend_from_slice(unsafe { core::slice::from_raw_parts(view.data_ptr(), len) });
        }
    }
    Ok(out)
}

/// `s` as a JSON string.
fn push_string(json: &mut String, s: &str) {
    json.push('"');
    for c in s.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            c if (c as u32) < 0x20 => json.push_str(&format!("\\u{:04x}", c as u32)),
            c => json.push(c),
        }
    }
    json.push('"');
}
