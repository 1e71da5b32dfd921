//! safetensors → DLPack: a file mapped once, its tensors handed out as
//! read-only DLPack tensors that keep the mapping alive.
//!
//! [`SafetensorsFile::open`] maps the file once (`mmap`: the pages are the
//! page cache's, nothing is read until a consumer touches them) and checks
//! the header once ([`Header::parse`]). Each
//! [`SafetensorsFile::tensor`] is then one allocation (the core's block,
//! holding an `Arc` of the mapping) and no copy: the data pointer is inside
//! the mapping, the tensor is compact row-major on the CPU, flagged
//! `READ_ONLY`, and the mapping is unmapped when the file and the last
//! tensor are gone, in any order, on any thread.
//!
//! Alignment: the format does not require it. Writers pad the header so the
//! data section starts at a multiple of 8 and put tensors of larger
//! elements first, so files written by the `safetensors` packages are
//! aligned; a file that is not would hand PyTorch (and the core's typed
//! views) elements it reads with aligned loads. A tensor whose address is
//! not a multiple of its element's alignment is therefore refused
//! ([`Error::Misaligned`]), and [`SafetensorsFile::copy_tensor`] makes an
//! aligned, writable copy (`IS_COPIED`) when one is wanted.
//!
//! The map is private and copy-on-write (`MAP_PRIVATE`, readable and
//! writable), not read-only: every tensor is flagged `READ_ONLY`, but
//! PyTorch 2.15 ignores the flag, and an in-place operation on a tensor of
//! a read-only map kills the process with `SIGSEGV`. In a copy-on-write map
//! such a write copies the page for this process alone: the file, other
//! processes and later loads never see it, and nothing crashes. Pages never
//! written stay the page cache's (no copy, no extra memory); the cost is the
//! kernel's commit accounting of a writable private map, which matters only
//! under strict overcommit (`vm.overcommit_memory = 2`).
//!
//! The mapping assumes the file is not written or truncated while mapped
//! (the assumption of every memory-mapped loader: a truncated file raises
//! `SIGBUS` on access, a rewritten one changes the tensors' values).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use dlpack_core::export::{Export, HostCopy, Memory, TensorOwner};
use dlpack_core::ffi::DLDevice;
use dlpack_core::managed::ManagedTensorVersioned;
use memmap2::{MmapMut, MmapOptions};

use crate::error::Error;
use crate::header::{Header, TensorInfo};

/// The bytes of a file: mapped, or owned (`from_bytes`).
enum Bytes {
    /// Private, copy-on-write (see the module docs); never written here.
    Map(MmapMut),
    Owned(Vec<u8>),
}

struct Inner {
    bytes: Bytes,
    header: Header,
}

impl Inner {
    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Map(map) => map,
            Bytes::Owned(vec) => vec,
        }
    }
}

/// A `.safetensors` file, read once, whose tensors are handed out as
/// read-only DLPack tensors without a copy.
///
/// Cloning is cheap (an `Arc`); clones and tensors share one mapping.
///
/// ```
/// use dlpack_core::export::Export;
/// use dlpack_safetensors::{SafetensorsFile, consumer};
///
/// # if cfg!(miri) { return Ok(()); } // files: not under miri
/// # let dir = std::env::temp_dir().join(format!("dlpack-st-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("model.safetensors");
/// let w = Export::new(vec![1.5f32, 2.5]).versioned()?;
/// std::fs::write(&path, consumer::serialize(&[("w", &w.view())], &[])?)?;
///
/// let file = SafetensorsFile::open(&path)?;
/// let w = file.tensor("w")?;
/// drop(file); // the tensor keeps the mapping alive
/// assert!(w.flags().is_read_only());
/// assert_eq!(w.view().as_slice::<f32>()?, &[1.5, 2.5]);
/// // Hand `w.into_raw()` to any DLPack consumer.
/// # drop(w);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SafetensorsFile {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("len", &self.inner.bytes().len())
            .field("tensors", &self.inner.header.len())
            .finish()
    }
}

impl SafetensorsFile {
    /// Opens and maps `path` read-only, and checks its header.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened or mapped, any rule of
    /// the format the header breaks ([`Header::parse`]), and
    /// [`Error::BigEndian`] on a big-endian target.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        check_endian()?;
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < 8 {
            // Nothing to map (a map of zero bytes is an error on Linux).
            return Err(Error::HeaderTooSmall { len });
        }
        // SAFETY: the map is private (writes through it reach no file and
        // no other process), and the file is assumed not to be written or
        // truncated while mapped (see the module docs: the assumption of
        // every memory-mapped loader).
        let map = unsafe { MmapOptions::new().map_copy(&file) }.map_err(io)?;
        let header = Header::parse(&map)?;
        Ok(SafetensorsFile {
            inner: Arc::new(Inner {
                bytes: Bytes::Map(map),
                header,
            }),
        })
    }

    /// Reads a file's bytes already in memory (no map, no copy: the tensors
    /// point into `bytes`). `Vec<u8>` guarantees no alignment, so tensors
    /// may be [`Error::Misaligned`] where the same file mapped would not be.
    ///
    /// # Errors
    ///
    /// As [`SafetensorsFile::open`], without [`Error::Io`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Error> {
        check_endian()?;
        let header = Header::parse(&bytes)?;
        Ok(SafetensorsFile {
            inner: Arc::new(Inner {
                bytes: Bytes::Owned(bytes),
                header,
            }),
        })
    }

    /// The whole file: the mapping (or the bytes given to `from_bytes`).
    /// Every shared tensor points into it.
    pub fn bytes(&self) -> &[u8] {
        self.inner.bytes()
    }

    /// The checked header: names, dtypes, shapes, offsets, metadata.
    pub fn header(&self) -> &Header {
        &self.inner.header
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.inner.header.len()
    }

    /// Whether the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.inner.header.is_empty()
    }

    /// The names, in the order of their data in the file.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inner.header.names()
    }

    fn info(&self, name: &str) -> Result<TensorInfo<'_>, Error> {
        self.inner
            .header
            .tensor(name)
            .ok_or_else(|| Error::NotFound {
                name: name.to_owned(),
            })
    }

    /// The bytes of a tensor (checked in range by the header).
    fn data(&self, info: &TensorInfo<'_>) -> &[u8] {
        let start = self.inner.header.data_start();
        // The header checked that every tensor lies in the data section,
        // which ends where the bytes end: in range, no overflow.
        let [begin, end] = info.data_offsets.map(|o| start + o as usize);
        &self.inner.bytes()[begin..end]
    }

    /// The tensor `name`, shared: read-only, its data inside the mapping.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Misaligned`] when its address is not
    /// aligned for its dtype (see the module docs;
    /// [`SafetensorsFile::copy_tensor`] copies it), or the core's export
    /// error for a shape DLPack cannot describe (an extent product that
    /// overflows strides).
    pub fn tensor(&self, name: &str) -> Result<ManagedTensorVersioned, Error> {
        let info = self.info(name)?;
        let data = self.data(&info);
        let alignment = info.dtype.alignment();
        if (data.as_ptr() as usize) % alignment != 0 && !data.is_empty() {
            return Err(Error::Misaligned {
                tensor: name.to_owned(),
                address: data.as_ptr() as usize,
                alignment,
            });
        }
        let owner = Shared {
            _file: Arc::clone(&self.inner),
            ptr: data.as_ptr(),
            len: data.len(),
        };
        Ok(Export::new(owner)
            .dtype(info.dtype.to_dlpack())
            .shape(info.shape)
            .versioned()?)
    }

    /// The tensor `name`, copied into aligned memory the consumer owns:
    /// writable, flagged `IS_COPIED`. For misaligned tensors, or for a
    /// consumer that wants to write.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], or the core's export error (as
    /// [`SafetensorsFile::tensor`]).
    pub fn copy_tensor(&self, name: &str) -> Result<ManagedTensorVersioned, Error> {
        let info = self.info(name)?;
        let data = self.data(&info);
        let mut copy = HostCopy::zeroed(data.len());
        copy.bytes_mut().copy_from_slice(data);
        Ok(Export::new(copy)
            .dtype(info.dtype.to_dlpack())
            .shape(info.shape)
            .copied(true)
            .versioned()?)
    }

    /// Every tensor, shared, in the order of the file; a misaligned one is
    /// copied when `copy_misaligned` is set, else refused.
    ///
    /// # Errors
    ///
    /// The first error of [`SafetensorsFile::tensor`].
    pub fn tensors(
        &self,
        copy_misaligned: bool,
    ) -> Result<Vec<(&str, ManagedTensorVersioned)>, Error> {
        self.names()
            .map(|name| match self.tensor(name) {
                Err(Error::Misaligned { .. }) if copy_misaligned => {
                    Ok((name, self.copy_tensor(name)?))
                }
                other => Ok((name, other?)),
            })
            .collect()
    }
}

/// The owner of a shared tensor: the mapping, and where in it the tensor is.
struct Shared {
    _file: Arc<Inner>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is into the bytes `_file` owns, which this crate never
// writes after reading the header (a private map, or a `Vec` given to
// `from_bytes`); `Inner` is Send and Sync (MmapMut and Vec<u8> are), so the
// owner may move to and be dropped on any thread.
unsafe impl Send for Shared {}

// SAFETY: the bytes stay at the same address while `_file` holds the `Arc`
// (a map is unmapped, a Vec freed, only when the last `Arc` goes), whatever
// the owner's moves; `len` bytes from `ptr` lie inside them (a slice of the
// bytes); they are reported read-only, and this crate never writes them.
unsafe impl TensorOwner for Shared {
    fn memory(&mut self) -> Memory {
        Memory {
            ptr: self.ptr.cast_mut().cast(),
            len: self.len,
            device: DLDevice::cpu(),
            dtype: None,
            read_only: true,
        }
    }
}

fn check_endian() -> Result<(), Error> {
    if cfg!(target_endian = "little") {
        Ok(())
    } else {
        Err(Error::BigEndian)
    }
}
