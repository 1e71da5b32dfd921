//! The canonical `arrow.fixed_shape_tensor` extension type: its metadata,
//! read from and written to a field.
//!
//! The metadata is JSON: `{"shape": [...]}` (the physical, row-major shape
//! of each tensor) with optional `"dim_names"` and `"permutation"` (logical
//! axis `i` is physical axis `permutation[i]`). It is parsed here rather
//! than with arrow-schema's `FixedShapeTensor`, which in arrow-rs 60.1
//! writes the key as `"permutations"` (not the specification's
//! `"permutation"`, which pyarrow reads and writes) and absent keys as
//! `null`, and whose parser refuses `null`. We write the specification's
//! form and read both.

use std::collections::HashMap;

use arrow_schema::extension::{EXTENSION_TYPE_METADATA_KEY, EXTENSION_TYPE_NAME_KEY};
use arrow_schema::{DataType, Field};
use serde_json::Value;

use crate::error::Error;

/// The extension's name.
pub const NAME: &str = "arrow.fixed_shape_tensor";

/// The parsed metadata of a `fixed_shape_tensor` field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TensorMetadata {
    /// The physical (stored, row-major) shape of each tensor.
    pub shape: Vec<usize>,
    /// Logical axis `i` is physical axis `permutation[i]`; none when equal.
    pub permutation: Option<Vec<usize>>,
}

#[cold]
fn bad(message: String) -> Error {
    Error::Extension { message }
}

impl TensorMetadata {
    /// The metadata of `field` when it is a `fixed_shape_tensor`.
    pub(crate) fn of(field: &Field) -> Result<Option<Self>, Error> {
        if field
            .metadata()
            .get(EXTENSION_TYPE_NAME_KEY)
            .map(String::as_str)
            != Some(NAME)
        {
            return Ok(None);
        }
        let text = field
            .metadata()
            .get(EXTENSION_TYPE_METADATA_KEY)
            .ok_or_else(|| bad("the metadata is missing".into()))?;
        let json: Value =
            serde_json::from_str(text).map_err(|err| bad(format!("{text:?}: {err}")))?;
        let indices = |key: &str| -> Result<Option<Vec<usize>>, Error> {
            match json.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| bad(format!("{key} holds {item}, not an index")))
                    })
                    .collect::<Result<_, _>>()
                    .map(Some),
                Some(other) => Err(bad(format!("{key} is {other}, not an array"))),
            }
        };
        let shape = indices("shape")?.ok_or_else(|| bad(format!("no shape in {text:?}")))?;
        let permutation = match indices("permutation")? {
            Some(permutation) => Some(permutation),
            None => indices("permutations")?,
        };
        if let Some(permutation) = &permutation {
            let mut seen = vec![false; shape.len()];
            let valid = permutation.len() == shape.len()
                && permutation
                    .iter()
                    .all(|&axis| axis < seen.len() && !std::mem::replace(&mut seen[axis], true));
            if !valid {
                return Err(bad(format!(
                    "permutation {permutation:?} is not a permutation of the {} axes",
                    shape.len()
                )));
            }
        }
        Ok(Some(TensorMetadata { shape, permutation }))
    }

    /// A field named `name` of storage type `data_type` carrying this
    /// extension (keys absent rather than `null`).
    pub(crate) fn field(&self, name: &str, data_type: DataType) -> Field {
        let list = |items: &[usize]| {
            let items: Vec<String> = items.iter().map(usize::to_string).collect();
            format!("[{}]", items.join(","))
        };
        let mut json = format!("{{\"shape\":{}", list(&self.shape));
        if let Some(permutation) = &self.permutation {
            json.push_str(&format!(",\"permutation\":{}", list(permutation)));
        }
        json.push('}');
        let metadata = HashMap::from([
            (EXTENSION_TYPE_NAME_KEY.to_owned(), NAME.to_owned()),
            (EXTENSION_TYPE_METADATA_KEY.to_owned(), json),
        ]);
        Field::new(name, data_type, false).with_metadata(metadata)
    }
}
