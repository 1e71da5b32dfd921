//! burn → DLPack: `TensorData` (and backend tensors through it) as managed
//! tensors, zero-copy.
//!
//! The data's `Bytes` move into the exported tensor (the core's single
//! allocation holds them next to the header, shape and strides); the
//! elements stay where they are. The tensor is compact row-major (strides
//! `[.., shape[n-1], 1]`) on the CPU, of the data's dtype
//! ([`dtype`](crate::dtype) has the table).
//!
//! It is writable when the bytes are the data's own (burn's `Vec`-backed
//! bytes, what a backend's `into_data` returns); `READ_ONLY` when burn
//! shares them (shared or file-backed bytes, data imported from another
//! read-only tensor), since a consumer's writes would reach other holders.
//! Read-only tensors cannot travel as legacy tensors
//! ([`dlpack_core::Error::ReadOnlyLegacyExport`]).
//!
//! A burn `Tensor` is exported through its data: [`IntoDlpack`] for
//! `Tensor<D, K>` calls `into_data`, which on the ndarray backend hands
//! over the tensor's own buffer without a copy when the tensor is compact
//! and not shared (a tensor made from `TensorData` or by an operation);
//! other backends read the device memory back into host memory first.
//!
//! Cost: one heap allocation per export (the core's block), none for the
//! shape up to 8 dimensions.

use burn_std::{Bytes, Reader, TensorData, Writer};
use burn_tensor::Tensor;
use burn_tensor::kind::{Basic, TensorKind};
use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::managed::{ManagedTensor, ManagedTensorVersioned};

use crate::dtype::dlpack_dtype;
use crate::error::Error;

/// The bytes as the core sees them.
struct Owner {
    bytes: Bytes,
    /// Decided once, at the first call of `memory` (both calls must
    /// describe the same memory).
    writable: Option<bool>,
}

// SAFETY: the memory is the `Bytes`' allocation, which its controller
// holds at a fixed address and frees only when the `Bytes` is dropped
// (moving a `Bytes` moves the box of its controller, not the memory): a
// no-copy write access succeeds only on memory the bytes hold alone, which
// is then reported writable; otherwise the read access (which materialises
// lazy storage once, inside the controller) is reported read-only. `Bytes`
// is Send.
unsafe impl TensorOwner for Owner {
    fn memory(&mut self) -> Memory {
        let len = self.bytes.len();
        let writable = *self
            .writable
            .get_or_insert_with(|| self.bytes.write(Writer::new().no_copy()).is_ok());
        let ptr = match writable {
            true => self
                .bytes
                .write(Writer::new().no_copy())
                .map(|b| b.as_mut_ptr()),
            false => self
                .bytes
                .read(Reader::new())
                .map(|b| b.as_ptr().cast_mut()),
        };
        Memory {
            // A failed read (a lazy allocation whose storage cannot be
            // read) exports as NULL with the length: the core refuses NULL
            // data for a tensor with elements.
            ptr: ptr.map_or(core::ptr::null_mut(), |p| p.cast()),
            len,
            device: DLDevice::cpu(),
            dtype: None,
            read_only: !writable,
        }
    }
}

/// Builder of an export of `TensorData`: choose read-only-ness, then
/// [`DataExport::versioned`] or [`DataExport::legacy`].
///
/// # Examples
///
/// ```
/// use burn_std::TensorData;
/// use dlpack_burn::producer::DataExport;
///
/// let data = TensorData::new(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]);
/// let t = DataExport::new(data).read_only(true).versioned()?;
/// assert_eq!(t.view().shape(), &[3, 2]);
/// assert_eq!(t.view().strides().collect::<Vec<_>>(), [2, 1]);
/// assert!(t.flags().is_read_only());
/// # Ok::<(), dlpack_burn::Error>(())
/// ```
#[derive(Debug)]
pub struct DataExport {
    data: TensorData,
    read_only: bool,
}

impl DataExport {
    /// Starts an export of `data`.
    pub fn new(data: TensorData) -> Self {
        DataExport {
            data,
            read_only: false,
        }
    }

    /// Asks for a `READ_ONLY` export even when the bytes could be written.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Builds a `DLManagedTensorVersioned`.
    ///
    /// # Errors
    ///
    /// [`Error::NoDlpackDtype`] for quantized data and bools stored as
    /// `u32`; the core's errors for data whose bytes cannot be read
    /// (a failing lazy allocation) or a shape beyond `i64`. The data is
    /// dropped on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use burn_std::{TensorData, bf16};
    /// use dlpack_burn::producer::DataExport;
    /// use dlpack_core::ffi::DLDataType;
    ///
    /// let data = TensorData::new(vec![bf16::from_f32(1.5); 4], [2, 2]);
    /// let ptr = data.bytes().as_ptr();
    /// let t = DataExport::new(data).versioned()?;
    /// assert_eq!(t.view().dtype(), DLDataType::BF16);
    /// assert_eq!(t.view().data_ptr().cast_const(), ptr); // no copy
    /// assert!(t.flags().is_writable());
    /// # Ok::<(), dlpack_burn::Error>(())
    /// ```
    pub fn versioned(self) -> Result<ManagedTensorVersioned, Error> {
        self.build(|export| export.versioned())
    }

    /// Builds a legacy `DLManagedTensor`.
    ///
    /// # Errors
    ///
    /// As [`DataExport::versioned`], and the core's `ReadOnlyLegacyExport`
    /// when the export is read-only (asked for, or shared bytes).
    pub fn legacy(self) -> Result<ManagedTensor, Error> {
        self.build(|export| export.legacy())
    }

    fn build<R>(
        self,
        finish: impl FnOnce(Export<'_, Owner>) -> Result<R, dlpack_core::Error>,
    ) -> Result<R, Error> {
        let (bytes, shape, dtype) = self.data.into_parts();
        let dtype: DLDataType = dlpack_dtype(dtype)?;
        let extents = shape.as_slice();
        let mut small = [0i64; 8];
        let mut large;
        let out: &mut [i64] = if extents.len() <= small.len() {
            &mut small[..extents.len()]
        } else {
            large = vec![0i64; extents.len()];
            &mut large
        };
        for (out, &extent) in out.iter_mut().zip(extents) {
            *out = i64::try_from(extent).map_err(|_| dlpack_core::Error::LayoutOverflow)?;
        }
        let shape: &[i64] = out;
        let export = Export::new(Owner {
            bytes,
            writable: None,
        })
        .dtype(dtype)
        .shape(shape)
        .read_only(self.read_only);
        Ok(finish(export)?)
    }
}

/// Conversion of burn values into managed tensors, zero-copy for
/// `TensorData` (and for ndarray tensors whose `into_data` hands over their
/// buffer).
///
/// # Examples
///
/// ```
/// # #![allow(deprecated)]
/// use burn_tensor::{Device, Tensor, TensorData};
/// use dlpack_burn::IntoDlpack;
///
/// let device = Device::ndarray();
/// let tensor = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), &device);
/// let t = (tensor * 2.0).into_dlpack_versioned()?;
/// assert_eq!(t.view().as_slice::<f32>()?, &[2.0, 4.0, 6.0, 8.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait IntoDlpack {
    /// Builds a `DLManagedTensorVersioned`.
    ///
    /// # Errors
    ///
    /// As [`DataExport::versioned`], and [`Error::Read`] when a tensor's
    /// data cannot be read back.
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error>;

    /// Builds a legacy `DLManagedTensor`.
    ///
    /// # Errors
    ///
    /// As [`DataExport::legacy`], and [`Error::Read`].
    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error>;
}

impl IntoDlpack for TensorData {
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        DataExport::new(self).versioned()
    }

    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        DataExport::new(self).legacy()
    }
}

impl IntoDlpack for DataExport {
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        self.versioned()
    }

    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        self.legacy()
    }
}

impl<const D: usize, K> IntoDlpack for Tensor<D, K>
where
    K: TensorKind + Basic,
{
    fn into_dlpack_versioned(self) -> Result<ManagedTensorVersioned, Error> {
        read(self)?.into_dlpack_versioned()
    }

    fn into_dlpack_legacy(self) -> Result<ManagedTensor, Error> {
        read(self)?.into_dlpack_legacy()
    }
}

fn read<const D: usize, K>(tensor: Tensor<D, K>) -> Result<TensorData, Error>
where
    K: TensorKind + Basic,
{
    tensor.try_into_data().map_err(|err| Error::Read {
        message: err.to_string(),
    })
}
