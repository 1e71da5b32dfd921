//! [`TensorView`]: a validated, borrowed view of a `DLTensor`.
//!
//! A `DLTensor` that came from elsewhere is trusted only after
//! [`TensorView::from_raw`] checked it; every typed accessor (slices, element
//! pointers) is reached through a `TensorView`, so no typed view of foreign
//! memory exists without validation.

use core::marker::PhantomData;
use core::{fmt, slice};

use crate::device::MemoryKind;
use crate::dtype::{Element, Storage};
use crate::error::Error;
use crate::ffi::{DLDataType, DLDevice, DLPACK_FLAG_BITMASK_IS_COPIED, DLTensor};
use crate::ffi::{DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED, DLPACK_FLAG_BITMASK_READ_ONLY};
use crate::layout::{self, Layout};

/// Flags of a tensor, with what is known about writability.
///
/// Legacy `DLManagedTensor`s (and bare `DLTensor`s, as the C exchange API
/// lends them) carry no flags; they are described as [`Flags::LEGACY`],
/// whose [`Access`] is [`Access::Unknown`]: read-only for safe mutable
/// access and wherever it becomes a tensor that can state writability (the
/// producer could not say otherwise, and NumPy makes the same choice).
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Flags {
    bits: u64,
    legacy: bool,
}

impl Flags {
    /// The flags of a tensor without flags (legacy ABI, bare `DLTensor`):
    /// unknown writability.
    pub const LEGACY: Flags = Flags {
        bits: 0,
        legacy: true,
    };

    /// Flags of a versioned tensor.
    pub const fn from_bits(bits: u64) -> Self {
        Flags {
            bits,
            legacy: false,
        }
    }

    /// The raw `DLPACK_FLAG_BITMASK_*` bits (0 for legacy tensors).
    pub const fn bits(self) -> u64 {
        self.bits
    }

    /// Whether the tensor came without flags (legacy ABI).
    pub const fn is_legacy(self) -> bool {
        self.legacy
    }

    /// `READ_ONLY` is set. False for a legacy tensor, which has no flags:
    /// whether its data may be written is unknown, so ask [`Flags::access`]
    /// (or [`Flags::is_writable`]) before writing or re-exporting.
    pub const fn is_read_only(self) -> bool {
        self.bits & DLPACK_FLAG_BITMASK_READ_ONLY != 0
    }

    /// What the producer said about writing the data.
    ///
    /// ```
    /// use dlpack_core::ffi::DLPACK_FLAG_BITMASK_READ_ONLY;
    /// use dlpack_core::tensor::{Access, Flags};
    ///
    /// assert_eq!(Flags::from_bits(0).access(), Access::Writable);
    /// assert_eq!(Flags::from_bits(DLPACK_FLAG_BITMASK_READ_ONLY).access(), Access::ReadOnly);
    /// assert_eq!(Flags::LEGACY.access(), Access::Unknown);
    /// ```
    pub const fn access(self) -> Access {
        if self.legacy {
            Access::Unknown
        } else if self.is_read_only() {
            Access::ReadOnly
        } else {
            Access::Writable
        }
    }

    /// Safe mutable access is allowed: a versioned tensor without
    /// `READ_ONLY` ([`Access::Writable`]).
    pub const fn is_writable(self) -> bool {
        self.access().is_writable()
    }

    /// `IS_COPIED` is set: the consumer solely owns the data.
    pub const fn is_copied(self) -> bool {
        self.bits & DLPACK_FLAG_BITMASK_IS_COPIED != 0
    }

    /// `IS_SUBBYTE_TYPE_PADDED` is set.
    pub const fn is_subbyte_padded(self) -> bool {
        self.bits & DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED != 0
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.legacy {
            return f.write_str("Flags(legacy)");
        }
        write!(f, "Flags({:#x}", self.bits)?;
        for (set, name) in [
            (self.is_read_only(), "READ_ONLY"),
            (self.is_copied(), "IS_COPIED"),
            (self.is_subbyte_padded(), "IS_SUBBYTE_TYPE_PADDED"),
        ] {
            if set {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// What a producer said about writing a tensor's data: the one rule for
/// every conversion between the ABIs and every re-export.
///
/// A tensor that could not say ([`Access::Unknown`]: legacy ABI, bare
/// `DLTensor`) is never upgraded: whatever it becomes that can state
/// writability (a versioned tensor, a buffer, an array interface) says
/// read-only. It may still travel on as a legacy tensor, which claims
/// nothing either.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A versioned tensor without `READ_ONLY`.
    Writable,
    /// `READ_ONLY` is set.
    ReadOnly,
    /// No flags were given (legacy ABI): the data may not be writable.
    Unknown,
}

impl Access {
    /// Whether the data may be written through a tensor that states it.
    pub const fn is_writable(self) -> bool {
        matches!(self, Access::Writable)
    }

    /// The `READ_ONLY` bit a versioned tensor sharing this data carries:
    /// set unless the data is known to be writable.
    ///
    /// ```
    /// use dlpack_core::ffi::DLPACK_FLAG_BITMASK_READ_ONLY as RO;
    /// use dlpack_core::tensor::Access;
    ///
    /// assert_eq!(Access::Writable.versioned_flags(), 0);
    /// assert_eq!(Access::ReadOnly.versioned_flags(), RO);
    /// assert_eq!(Access::Unknown.versioned_flags(), RO);
    /// ```
    pub const fn versioned_flags(self) -> u64 {
        if self.is_writable() {
            0
        } else {
            DLPACK_FLAG_BITMASK_READ_ONLY
        }
    }
}

impl From<Flags> for Access {
    fn from(flags: Flags) -> Self {
        flags.access()
    }
}

/// An owner's `read_only`: `true` is [`Access::ReadOnly`], `false`
/// [`Access::Writable`].
impl From<bool> for Access {
    fn from(read_only: bool) -> Self {
        if read_only {
            Access::ReadOnly
        } else {
            Access::Writable
        }
    }
}

/// A validated, borrowed view of a `DLTensor`.
///
/// Construction ([`TensorView::from_raw`]) checks, with checked arithmetic:
/// `ndim >= 0`; `shape` non-NULL when `ndim > 0`; every extent `>= 0`;
/// `strides` NULL read as compact row-major; `data` NULL only for size-zero
/// tensors; a dtype whose size is meaningful (whole bytes, or a known packed
/// sub-byte type); element count, byte reach, and `data + byte_offset` plus
/// that reach free of overflow. Unknown dtype codes and device types are
/// carried through and refused only by typed accessors.
#[derive(Copy, Clone)]
pub struct TensorView<'a> {
    raw: &'a DLTensor,
    layout: Layout,
    storage: Storage,
    flags: Flags,
}

// SAFETY: a TensorView only reads the descriptor it borrows; the data it
// points to is shared by the DLPack contract, which allows use from any
// thread (deleters, and therefore owners, must be thread-agnostic).
unsafe impl Send for TensorView<'_> {}
// SAFETY: as above; &TensorView exposes only reads.
unsafe impl Sync for TensorView<'_> {}

impl<'a> TensorView<'a> {
    /// Validates a foreign `DLTensor`.
    ///
    /// # Safety
    ///
    /// `raw` must be a tensor description as the DLPack standard defines it:
    /// when `ndim > 0`, `shape` (if non-NULL) and `strides` (if non-NULL)
    /// point to `ndim` readable `i64`s, valid and unchanged for `'a`. When
    /// the tensor is on a host-accessible device, `data + byte_offset` must
    /// address the elements the layout describes for `'a`, and their bytes
    /// must be valid for the dtype (e.g. 0 or 1 for `kDLBool`). This is the
    /// producer's side of the DLPack contract; what this function can check
    /// without reading the data, it checks.
    ///
    /// # Errors
    ///
    /// The first rule the tensor breaks, as an [`Error`].
    // Always inlined: `#[inline]` alone left it a call from
    // `Managed::from_raw` (see there).
    #[inline(always)]
    pub unsafe fn from_raw(raw: &'a DLTensor, flags: Flags) -> Result<Self, Error> {
        if raw.ndim < 0 {
            return Err(Error::NegativeNdim { ndim: raw.ndim });
        }
        let ndim = raw.ndim as usize;
        // SAFETY: caller guarantees shape/strides point to ndim i64s when
        // non-NULL; NULL is handled by raw_dims.
        let (shape, strides) = unsafe { (raw_dims(raw.shape, ndim), raw_dims(raw.strides, ndim)) };
        let shape = match shape {
            Some(shape) => shape,
            None if ndim == 0 => &[],
            None => return Err(Error::NullShape { ndim: raw.ndim }),
        };
        let storage = raw.dtype.storage(flags.is_subbyte_padded())?;
        let layout = layout::analyze(shape, strides, storage)?;
        if layout.elements != 0 {
            if raw.data.is_null() {
                return Err(Error::NullData {
                    elements: layout.elements,
                });
            }
            if raw.device.device_type.has_addressable_data() {
                // The first element's address, and the lowest and one past
                // the highest byte reached, free of overflow: for a
                // non-empty layout `start <= 0 < end`, both within isize.
                let in_range = usize::try_from(raw.byte_offset)
                    .ok()
                    .and_then(|off| (raw.data as usize).checked_add(off))
                    .is_some_and(|first| {
                        first >= layout.start.unsigned_abs() as usize
                            && first.checked_add(layout.end as usize).is_some()
                    });
                if !in_range {
                    return Err(Error::AddressOverflow {
                        byte_offset: raw.byte_offset,
                    });
                }
            }
        }
        Ok(TensorView {
            raw,
            layout,
            storage,
            flags,
        })
    }

    /// Builds a view from the results of an earlier validation.
    ///
    /// # Safety
    ///
    /// `TensorView::from_raw(raw, flags)` would succeed with this `layout`
    /// and `storage`, and its contract holds for `'a`.
    pub(crate) unsafe fn from_validated(
        raw: &'a DLTensor,
        layout: Layout,
        storage: Storage,
        flags: Flags,
    ) -> Self {
        TensorView {
            raw,
            layout,
            storage,
            flags,
        }
    }

    /// The underlying descriptor.
    pub fn raw(&self) -> &'a DLTensor {
        self.raw
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.raw.ndim as usize
    }

    /// The extents (empty for 0-d tensors).
    pub fn shape(&self) -> &'a [i64] {
        // SAFETY: validated in from_raw: non-NULL with ndim entries, or
        // ndim == 0.
        unsafe { raw_dims(self.raw.shape, self.ndim()) }.unwrap_or(&[])
    }

    /// The strides exactly as the producer sent them (`None` when NULL).
    pub fn raw_strides(&self) -> Option<&'a [i64]> {
        // SAFETY: the from_raw contract: strides, when non-NULL, point to
        // ndim i64s for 'a.
        unsafe { raw_dims(self.raw.strides, self.ndim()) }
    }

    /// Stride of `axis` in elements; row-major strides when the producer
    /// sent NULL.
    ///
    /// # Panics
    ///
    /// If `axis >= ndim`.
    pub fn stride(&self, axis: usize) -> i64 {
        assert!(
            axis < self.ndim(),
            "axis {axis} out of range for ndim {}",
            self.ndim()
        );
        match self.raw_strides() {
            Some(strides) => strides[axis],
            // Row-major: product of the later extents (each >= 1 here, or
            // the tensor is empty and strides are arbitrary). Overflow was
            // ruled out when the layout's reach was checked.
            None => self.shape()[axis + 1..]
                .iter()
                .fold(1i64, |acc, &e| acc.wrapping_mul(e.max(1))),
        }
    }

    /// The strides in elements, row-major when the producer sent NULL.
    pub fn strides(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        (0..self.ndim()).map(|axis| self.stride(axis))
    }

    /// The element type.
    pub fn dtype(&self) -> DLDataType {
        self.raw.dtype
    }

    /// The device.
    pub fn device(&self) -> DLDevice {
        self.raw.device
    }

    /// The flags.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// How elements are stored.
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// The validated layout: element count, byte reach, contiguity.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Number of elements.
    pub fn num_elements(&self) -> u64 {
        self.layout.elements
    }

    /// Whether the elements are compact and row-major.
    pub fn is_c_contiguous(&self) -> bool {
        self.layout.c_contiguous
    }

    /// Whether the elements are compact and column-major.
    pub fn is_f_contiguous(&self) -> bool {
        layout::is_f_contiguous(self.shape(), self.raw_strides())
    }

    /// Address of the first element, `data + byte_offset`; NULL for a
    /// size-zero tensor. Meaningful only for devices with addressable data.
    pub fn data_ptr(&self) -> *mut u8 {
        if self.layout.elements == 0 {
            return core::ptr::null_mut();
        }
        (self.raw.data as *mut u8).wrapping_add(self.raw.byte_offset as usize)
    }

    /// Checks that the tensor holds `T`s on host-accessible memory and
    /// returns the (aligned) address of the first element; a dangling
    /// aligned pointer for size-zero tensors.
    ///
    /// # Errors
    ///
    /// [`Error::DtypeMismatch`], [`Error::UnsupportedDtype`],
    /// [`Error::NotHostAccessible`] or [`Error::Misaligned`].
    pub fn element_ptr<T: Element>(&self) -> Result<*mut T, Error> {
        self.check_element::<T>()?;
        if !self.raw.device.device_type.is_host_accessible() {
            return Err(Error::NotHostAccessible {
                device: self.raw.device,
            });
        }
        if self.layout.elements == 0 {
            return Ok(core::ptr::NonNull::<T>::dangling().as_ptr());
        }
        let ptr = self.data_ptr();
        let align = core::mem::align_of::<T>();
        if (ptr as usize) % align != 0 {
            return Err(Error::Misaligned {
                address: ptr as usize,
                align,
            });
        }
        Ok(ptr.cast())
    }

    /// Checks that the tensor's dtype is `T`'s, on any device.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedDtype`] for codes or widths the standard does not
    /// define, [`Error::DtypeMismatch`] otherwise.
    pub fn check_element<T: Element>(&self) -> Result<(), Error> {
        let dtype = self.raw.dtype;
        dtype.check_known()?;
        if dtype != T::DTYPE {
            return Err(Error::DtypeMismatch {
                expected: T::DTYPE,
                found: dtype,
            });
        }
        Ok(())
    }

    /// The elements as a slice, in row-major order.
    ///
    /// # Errors
    ///
    /// As [`TensorView::element_ptr`], and [`Error::NotContiguous`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_core::ffi::{DLDataType, DLDevice, DLTensor};
    /// use dlpack_core::tensor::{Flags, TensorView};
    ///
    /// let mut data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    /// let mut shape = [2i64, 3];
    /// let raw = DLTensor {
    ///     data: data.as_mut_ptr().cast(),
    ///     device: DLDevice::cpu(),
    ///     ndim: 2,
    ///     dtype: DLDataType::F32,
    ///     shape: shape.as_mut_ptr(),
    ///     strides: std::ptr::null_mut(), // compact row-major (pre-1.2 producers)
    ///     byte_offset: 0,
    /// };
    /// // SAFETY: `raw` describes `data`, `shape` lives as long as the view.
    /// let view = unsafe { TensorView::from_raw(&raw, Flags::from_bits(0)) }.unwrap();
    /// assert_eq!(view.as_slice::<f32>().unwrap(), &data);
    /// assert!(view.as_slice::<i32>().is_err());
    /// ```
    pub fn as_slice<T: Element>(&self) -> Result<&'a [T], Error> {
        let ptr = self.element_ptr::<T>()?;
        if !self.layout.c_contiguous {
            return Err(Error::NotContiguous);
        }
        // SAFETY: element_ptr checked dtype (size of T == element size),
        // host access and alignment; the layout is compact row-major with
        // `elements` elements (fits isize, checked by analyze) starting at
        // ptr, valid for 'a by the from_raw contract. Size-zero tensors use
        // a dangling aligned pointer, which is valid for empty slices.
        Ok(unsafe { slice::from_raw_parts(ptr, self.layout.elements as usize) })
    }
}

impl fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorView")
            .field("device", &self.device())
            .field("dtype", &self.dtype())
            .field("shape", &self.shape())
            .field("strides", &self.raw_strides())
            .field("byte_offset", &self.raw.byte_offset)
            .field("flags", &self.flags)
            .finish()
    }
}

/// `ndim` entries at `ptr`, or `None` for NULL.
///
/// # Safety
///
/// When non-NULL, `ptr` points to `ndim` readable `i64`s valid for `'a`.
unsafe fn raw_dims<'a>(ptr: *const i64, ndim: usize) -> Option<&'a [i64]> {
    if ptr.is_null() {
        None
    } else if ndim == 0 {
        Some(&[])
    } else {
        // SAFETY: the caller's contract.
        Some(unsafe { slice::from_raw_parts(ptr, ndim) })
    }
}

/// A validated view of device memory holding `T`s, with the device and
/// memory kind a driver resolved from the pointer (never trusted from the
/// producer's `device_id`).
///
/// Device crates build it (`dlpack-cuda`'s `CudaTensorView`,
/// `dlpack-rocm`'s `RocmTensorView` wrap it) after asking their driver; it
/// never dereferences the memory.
///
/// ```
/// use dlpack_core::device::MemoryKind;
/// use dlpack_core::export::Export;
/// use dlpack_core::ffi::DLDevice;
/// use dlpack_core::tensor::DeviceView;
///
/// let t = Export::new(vec![0f32; 6]).shape(&[2, 3]).versioned().unwrap();
/// let view = DeviceView::<f32>::new(t.view(), DLDevice::cpu(), MemoryKind::Host).unwrap();
/// assert_eq!((view.len(), view.shape()), (6, &[2i64, 3][..]));
/// assert!(DeviceView::<i32>::new(t.view(), DLDevice::cpu(), MemoryKind::Host).is_err());
/// ```
#[derive(Copy, Clone, Debug)]
pub struct DeviceView<'a, T> {
    view: TensorView<'a>,
    device: DLDevice,
    memory: MemoryKind,
    marker: PhantomData<&'a [T]>,
}

impl<'a, T: Element> DeviceView<'a, T> {
    /// Checks that `view` holds `T`s and records where its memory lives.
    ///
    /// # Errors
    ///
    /// As [`TensorView::check_element`].
    pub fn new(view: TensorView<'a>, device: DLDevice, memory: MemoryKind) -> Result<Self, Error> {
        view.check_element::<T>()?;
        Ok(DeviceView {
            view,
            device,
            memory,
            marker: PhantomData,
        })
    }

    /// The same view, on the device and memory kind a driver reported.
    pub fn with_location(self, device: DLDevice, memory: MemoryKind) -> Self {
        DeviceView {
            device,
            memory,
            ..self
        }
    }

    /// The device the memory belongs to, as resolved.
    pub fn device(&self) -> DLDevice {
        self.device
    }

    /// The device the producer claimed.
    pub fn claimed_device(&self) -> DLDevice {
        self.view.device()
    }

    /// The kind of memory.
    pub fn memory(&self) -> MemoryKind {
        self.memory
    }

    /// The device address of the first element (0 for a size-zero tensor).
    pub fn device_ptr(&self) -> u64 {
        self.view.data_ptr() as u64
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.view.num_elements() as usize
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The extents.
    pub fn shape(&self) -> &'a [i64] {
        self.view.shape()
    }

    /// The strides in elements (row-major when the producer sent none).
    pub fn strides(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        self.view.strides()
    }

    /// Whether the elements are compact and row-major.
    pub fn is_c_contiguous(&self) -> bool {
        self.view.is_c_contiguous()
    }

    /// The validated descriptor.
    pub fn tensor(&self) -> TensorView<'a> {
        self.view
    }
}
