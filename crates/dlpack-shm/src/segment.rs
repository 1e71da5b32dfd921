//! The safe level: segments made by this process ([`Segment`]) and
//! segments opened by handle ([`open`]).

use std::sync::Arc;

use dlpack_core::dtype::Element;
use dlpack_core::export::{Export, Memory, TensorOwner};
use dlpack_core::ffi::{DLDataType, DLDevice};
use dlpack_core::layout::{analyze, row_major_strides};
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_core::tensor::TensorView;

use crate::error::Error;
use crate::format::{Handle, Header, MAX_NDIM, align_payload, header_size};
use crate::names::{NAME_PREFIX, check_name, generated_name, random_u64};
use crate::sys::{self, Mapping};

/// How a segment is made.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The segment's name; `None` generates `dlpack-<pid>-<start>-<hex>`. A given
    /// name must be 1 to 200 characters of `[A-Za-z0-9._-]` and must not
    /// start with [`NAME_PREFIX`] (those are the generated ones, which
    /// [`cleanup_stale`](crate::cleanup_stale) manages); such a segment is removed only by
    /// [`unlink`].
    pub name: Option<String>,
    /// Readers get a read-only tensor and a `PROT_READ` mapping.
    pub read_only: bool,
    /// Unlink the name when the [`Segment`] is dropped (the owner policy of
    /// a scope; existing mappings stay valid). Off by default: the name
    /// lives until [`Segment::unlink`], [`unlink`] or, for a generated name
    /// whose creator has exited, [`cleanup_stale`](crate::cleanup_stale).
    pub unlink_on_drop: bool,
}

/// A segment this process made: the writer's side.
///
/// The mapping stays valid while the `Segment` or any tensor exported from
/// it lives, whatever happens to the name; dropping it leaves the name in
/// place unless [`Options::unlink_on_drop`] is set.
#[derive(Debug)]
pub struct Segment {
    name: String,
    header: Header,
    map: Arc<Mapping>,
    unlink_on_drop: bool,
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.unlink_on_drop {
            let _ = sys::unlink(&self.name);
        }
    }
}

impl Segment {
    /// Creates a segment for `header` (its `nonce` and `creator_pid` are
    /// set here), maps it writable and writes the header.
    fn create(mut header: Header, options: &Options) -> Result<Segment, Error> {
        header.nonce = random_u64();
        header.creator_pid = std::process::id();
        header.layout()?;
        let len = usize::try_from(header.segment_len()?).map_err(|_| {
            Error::inconsistent(
                "payload length",
                header.payload_len.into(),
                "must fit in the address space",
            )
        })?;
        let (name, map) = match &options.name {
            Some(name) => {
                check_name(name)?;
                if name.starts_with(NAME_PREFIX) {
                    return Err(Error::InvalidName {
                        name: name.clone(),
                        rule: "names starting with \"dlpack-\" are generated ones (leave name \
                               unset)",
                    });
                }
                (name.clone(), sys::create(name, len)?)
            }
            None => loop {
                let name = generated_name(header.creator_pid, sys::own_start(), random_u64());
                match sys::create(&name, len) {
                    Ok(map) => break (name, map),
                    Err(e) if e.errno() == Some(libc::EEXIST) => continue,
                    Err(e) => return Err(e),
                }
            },
        };
        map.write_at(0, &header.to_bytes());
        Ok(Segment {
            name,
            header,
            map: Arc::new(map),
            unlink_on_drop: options.unlink_on_drop,
        })
    }

    /// Copies a host tensor into a new segment: its byte span (from the
    /// lowest to one past the highest byte an element reaches), with its own
    /// strides, so every layout (negative, zero, padded strides) arrives as
    /// it was.
    ///
    /// # Errors
    ///
    /// [`Error::NotHost`] for device memory; [`Error::InvalidName`];
    /// [`Error::Os`] when the segment cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_core::export::Export;
    /// use dlpack_shm::{Options, Segment, open};
    ///
    /// let t = Export::new(vec![1.0f32, 2.0, 3.0, 4.0]).shape(&[2, 2]).versioned()?;
    /// let seg = Segment::publish(&t.view(), &Options::default())?;
    /// // Another process would receive `seg.handle()` (a name and a nonce).
    /// let opened = open(&seg.handle())?;
    /// assert_eq!(opened.view().as_slice::<f32>()?, &[1.0, 2.0, 3.0, 4.0]);
    /// seg.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(view: &TensorView<'_>, options: &Options) -> Result<Segment, Error> {
        let device = view.device();
        if !device.device_type.is_host_accessible() {
            return Err(Error::NotHost { device });
        }
        let layout = *view.layout();
        let shape = view.shape().to_vec();
        let strides: Vec<i64> = view.strides().collect();
        let (span, byte_offset) = if layout.elements == 0 {
            (0, 0)
        } else {
            (layout.span_bytes(), layout.start.unsigned_abs())
        };
        let header = Header {
            nonce: 0,
            creator_pid: 0,
            read_only: options.read_only,
            subbyte_padded: view.flags().is_subbyte_padded(),
            dtype: view.dtype(),
            payload_offset: payload_offset(shape.len())?,
            payload_len: span,
            byte_offset,
            shape,
            strides,
        };
        let seg = Segment::create(header, options)?;
        if span != 0 {
            let first = view.data_ptr().wrapping_offset(layout.start as isize);
            // SAFETY: the view was validated over host-accessible memory, so
            // its span [first, first + span) is readable; the segment is a
            // new mapping, not that memory.
            unsafe {
                seg.map
                    .copy_from(seg.header.payload_offset as usize, first, span as usize)
            };
        }
        Ok(seg)
    }

    /// Allocates a zero-filled, compact row-major tensor of `dtype` and
    /// `shape` in a new segment, to be filled in place: write through
    /// [`Segment::as_mut_slice`] / [`Segment::payload_mut`], or through a
    /// writable [`Segment::tensor`] handed to any consumer.
    ///
    /// # Errors
    ///
    /// [`Error::Tensor`] for a dtype or shape the core refuses; as
    /// [`Segment::publish`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use dlpack_core::ffi::DLDataType;
    /// use dlpack_shm::{Options, Segment, open};
    ///
    /// let mut seg = Segment::allocate(DLDataType::I32, &[3], &Options::default())?;
    /// seg.as_mut_slice::<i32>()?.copy_from_slice(&[7, 8, 9]);
    /// let opened = open(&seg.handle())?;
    /// assert_eq!(opened.view().as_slice::<i32>()?, &[7, 8, 9]);
    /// seg.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocate(dtype: DLDataType, shape: &[i64], options: &Options) -> Result<Segment, Error> {
        if shape.len() > MAX_NDIM as usize {
            return Err(Error::inconsistent(
                "ndim",
                shape.len() as i128,
                "must be at most 1024",
            ));
        }
        dtype.check_known().map_err(Error::Tensor)?;
        let storage = dtype.storage(false).map_err(Error::Tensor)?;
        let mut strides = vec![0i64; shape.len()];
        row_major_strides(shape, &mut strides).map_err(Error::Tensor)?;
        let layout = analyze(shape, Some(&strides), storage).map_err(Error::Tensor)?;
        let header = Header {
            nonce: 0,
            creator_pid: 0,
            read_only: options.read_only,
            subbyte_padded: false,
            dtype,
            shape: shape.to_vec(),
            strides,
            payload_offset: payload_offset(shape.len())?,
            payload_len: layout.span_bytes(),
            byte_offset: 0,
        };
        Segment::create(header, options)
    }

    /// The handle another process opens the segment with.
    pub fn handle(&self) -> Handle {
        Handle {
            name: self.name.clone(),
            nonce: self.header.nonce,
        }
    }

    /// The segment's name (without the leading `/`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header written into the segment.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The payload's bytes, writable, while no tensor exported from this
    /// segment lives in this process (other processes may map it too: that
    /// is the point of shared memory).
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] while a [`Segment::tensor`] export lives.
    pub fn payload_mut(&mut self) -> Result<&mut [u8], Error> {
        let (off, len) = (
            self.header.payload_offset as usize,
            self.header.payload_len as usize,
        );
        let name = self.name.clone();
        let map = Arc::get_mut(&mut self.map).ok_or(Error::ReadOnly { name })?;
        // SAFETY: Arc::get_mut proves no export of this mapping lives, and
        // the returned borrow holds `self` mutably.
        Ok(unsafe { map.bytes_mut(off, len) })
    }

    /// The payload as a slice of `T`, for a compact row-major tensor of
    /// `T` (what [`Segment::allocate`] makes), under the rule of
    /// [`Segment::payload_mut`].
    ///
    /// # Errors
    ///
    /// [`Error::Tensor`] when the dtype is not `T`'s or the tensor is not
    /// compact; [`Error::ReadOnly`] as for [`Segment::payload_mut`].
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], Error> {
        let h = &self.header;
        if h.dtype != T::DTYPE {
            return Err(Error::Tensor(dlpack_core::Error::DtypeMismatch {
                expected: T::DTYPE,
                found: h.dtype,
            }));
        }
        let layout = h.layout()?;
        if !layout.c_contiguous || h.byte_offset != 0 {
            return Err(Error::Tensor(dlpack_core::Error::NotContiguous));
        }
        let n = layout.elements as usize;
        let bytes = self.payload_mut()?;
        // SAFETY: the payload starts 64-aligned in a page-aligned mapping and
        // holds n compact elements of T (dtype checked, layout analysed);
        // every bit pattern is a valid T (Element).
        Ok(unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T>(), n) })
    }

    /// The creator's zero-copy tensor over this process's mapping: writable
    /// even when the segment is read-only (that flag binds readers; the
    /// creator fills the segment). It keeps the mapping alive after the
    /// `Segment` is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Tensor`] (not for a header this crate wrote).
    pub fn tensor(&self) -> Result<ManagedTensorVersioned, Error> {
        export(Arc::clone(&self.map), &self.header, false)
    }

    /// Removes the segment's name: later [`open`]s fail, every existing
    /// mapping (here and in other processes) stays valid.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] (`ENOENT` when the name is already gone).
    pub fn unlink(&self) -> Result<(), Error> {
        sys::unlink(&self.name)
    }
}

/// The payload offset after a header of rank `ndim`.
fn payload_offset(ndim: usize) -> Result<u64, Error> {
    align_payload(header_size(ndim) as u64).ok_or(Error::inconsistent(
        "ndim",
        ndim as i128,
        "must be at most 1024",
    ))
}

/// The owner of an exported tensor: the mapping and where its payload is.
struct Payload {
    map: Arc<Mapping>,
    offset: usize,
    len: usize,
    read_only: bool,
}

// SAFETY: the mapping is not unmapped while the Arc lives, never moves, and
// [offset, offset + len) lies inside it (checked against the segment size
// when the header was parsed or made); it is writable unless `read_only`,
// which is set whenever the mapping itself is read-only. Arc<Mapping> is
// Send (Mapping is Send + Sync).
unsafe impl TensorOwner for Payload {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.map.ptr().wrapping_add(self.offset).cast(),
            len: self.len,
            device: DLDevice::cpu(),
            dtype: None,
            read_only: self.read_only,
        }
    }
}

/// The tensor over `map` that `h` describes; read-only when the mapping is,
/// or when `honour_flag` and the header says so.
fn export(
    map: Arc<Mapping>,
    h: &Header,
    honour_flag: bool,
) -> Result<ManagedTensorVersioned, Error> {
    let read_only = (honour_flag && h.read_only) || !map.is_writable();
    let end = h.segment_len()?;
    assert!(
        end <= map.len() as u64,
        "header checked against the mapping"
    );
    let owner = Payload {
        offset: h.payload_offset as usize,
        len: h.payload_len as usize,
        read_only,
        map,
    };
    Export::new(owner)
        .dtype(h.dtype)
        .shape(&h.shape)
        .strides(&h.strides)
        .byte_offset(h.byte_offset)
        .read_only(read_only)
        .subbyte_padded(h.subbyte_padded)
        .versioned()
        .map_err(Error::Tensor)
}

/// Reads and checks the header of a mapping.
fn header_of(map: &Mapping) -> Result<Header, Error> {
    let prefix = map.copy_prefix(header_size(MAX_NDIM as usize));
    Header::parse(&prefix, map.len() as u64)
}

/// Opens a segment by handle: a zero-copy tensor over a new mapping of it,
/// read-only (and mapped `PROT_READ`) when the segment is read-only, or
/// when this process may not write it. The tensor keeps the mapping alive;
/// the creator may exit or unlink the name meanwhile.
///
/// # Errors
///
/// [`Error::Os`] (`ENOENT`: no such name); [`Error::NonceMismatch`];
/// [`Error::Truncated`], [`Error::Foreign`], [`Error::Version`],
/// [`Error::Inconsistent`], [`Error::OutOfPayload`], [`Error::Tensor`] for
/// a segment that is not a valid one.
pub fn open(handle: &Handle) -> Result<ManagedTensorVersioned, Error> {
    let (map, header) = open_checked(&handle.name)?;
    if header.nonce != handle.nonce {
        return Err(Error::NonceMismatch {
            name: handle.name.clone(),
            expected: handle.nonce,
            found: header.nonce,
        });
    }
    export(Arc::new(map), &header, true)
}

/// Opens a segment by name alone (no nonce check), as [`open`].
///
/// # Errors
///
/// As [`open`].
pub fn open_by_name(name: &str) -> Result<ManagedTensorVersioned, Error> {
    let (map, header) = open_checked(name)?;
    export(Arc::new(map), &header, true)
}

/// Reads the header of the segment `name` (without keeping a mapping).
///
/// # Errors
///
/// As [`open`].
pub fn inspect(name: &str) -> Result<Header, Error> {
    open_checked(name).map(|(_, h)| h)
}

fn open_checked(name: &str) -> Result<(Mapping, Header), Error> {
    check_name(name)?;
    let map = sys::open(name, false)?;
    let header = header_of(&map)?;
    if header.read_only {
        return Ok((map, header));
    }
    // Writable: map again with write access (a process that may not write
    // the segment gets the read-only mapping, and a read-only tensor).
    match sys::open(name, true) {
        Ok(mut map) => {
            let header = header_of(&map)?;
            if header.read_only {
                map.protect_read_only(name)?;
            }
            Ok((map, header))
        }
        Err(e) if e.errno() == Some(libc::EACCES) => Ok((map, header)),
        Err(e) => Err(e),
    }
}

/// Removes the name `name` (existing mappings stay valid).
///
/// # Errors
///
/// [`Error::InvalidName`]; [`Error::Os`] (`ENOENT` when there is no such
/// name).
pub fn unlink(name: &str) -> Result<(), Error> {
    check_name(name)?;
    sys::unlink(name)
}
