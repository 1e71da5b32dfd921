//! The system level: POSIX shared memory (`shm_open`, `ftruncate`, `mmap`,
//! `shm_unlink`) and process liveness, as thin checked calls over `libc`.
//! Every `unsafe` block of the crate is here.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::Error;

/// A mapping of a whole segment; unmapped on drop (from any thread).
/// Unlinking the segment's name never invalidates it.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: a mapping is plain memory owned by this value; munmap may be
// called from any thread.
unsafe impl Send for Mapping {}
// SAFETY: shared references only read the address and length.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the
        // memory past this value (owners hold an Arc of it).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl Mapping {
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// A private copy of the first `n` bytes (at most the mapping): the
    /// header is parsed from a copy, since another process may write the
    /// segment while it is read.
    pub(crate) fn copy_prefix(&self, n: usize) -> Vec<u8> {
        let n = n.min(self.len);
        let mut out = vec![0u8; n];
        // SAFETY: n <= len bytes of the live mapping; `out` is a distinct
        // allocation of n bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.as_mut_ptr(), n) };
        out
    }

    /// Writes `bytes` at `offset`.
    ///
    /// # Panics
    ///
    /// When the range is outside the mapping or the mapping is read-only
    /// (this process's own arithmetic, checked by the caller).
    pub(crate) fn write_at(&self, offset: usize, bytes: &[u8]) {
        assert!(self.writable, "write to a read-only mapping");
        assert!(
            offset
                .checked_add(bytes.len())
                .is_some_and(|end| end <= self.len),
            "write outside the mapping"
        );
        // SAFETY: the range is inside the writable mapping (asserted above);
        // `bytes` is not in it (a Rust slice of this process's memory that
        // the caller owns, never a slice of this mapping).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            )
        };
    }

    /// Copies `len` bytes from `src` to `offset`.
    ///
    /// # Safety
    ///
    /// `src` is readable for `len` bytes and not inside this mapping.
    ///
    /// # Panics
    ///
    /// As [`Mapping::write_at`].
    pub(crate) unsafe fn copy_from(&self, offset: usize, src: *const u8, len: usize) {
        assert!(self.writable, "write to a read-only mapping");
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "write outside the mapping"
        );
        // SAFETY: destination inside the writable mapping (asserted); the
        // caller promises the source.
        unsafe { std::ptr::copy_nonoverlapping(src, self.ptr.as_ptr().add(offset), len) };
    }

    /// Makes the whole mapping read-only (`PROT_READ`).
    pub(crate) fn protect_read_only(&mut self, name: &str) -> Result<(), Error> {
        // SAFETY: exactly the range mmap returned.
        let rc = unsafe { libc::mprotect(self.ptr.as_ptr().cast(), self.len, libc::PROT_READ) };
        if rc != 0 {
            return Err(os("mprotect", name));
        }
        self.writable = false;
        Ok(())
    }

    /// The mutable bytes `[offset, offset + len)`.
    ///
    /// # Safety
    ///
    /// No other reference into the range exists in this process for the
    /// returned lifetime (other processes may write it: shared memory).
    pub(crate) unsafe fn bytes_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(self.writable, "write to a read-only mapping");
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "range outside the mapping"
        );
        // SAFETY: inside the writable mapping (asserted); uniqueness is the
        // caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(offset), len) }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn os(op: &'static str, name: &str) -> Error {
    Error::Os {
        op,
        name: name.into(),
        errno: errno(),
    }
}

fn c_name(name: &str) -> Result<CString, Error> {
    CString::new(format!("/{name}")).map_err(|_| Error::InvalidName {
        name: name.into(),
        rule: "a name cannot hold a NUL byte",
    })
}

/// A file descriptor closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: a descriptor this value owns; closed once.
        unsafe { libc::close(self.0) };
    }
}

fn map(fd: &Fd, len: usize, writable: bool, name: &str) -> Result<Mapping, Error> {
    let prot = if writable {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    // SAFETY: a new shared mapping of an open descriptor; len > 0 (callers
    // check); the kernel picks the address.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.0, 0) };
    if p == libc::MAP_FAILED {
        return Err(os("mmap", name));
    }
    Ok(Mapping {
        ptr: NonNull::new(p.cast()).ok_or_else(|| os("mmap", name))?,
        len,
        writable,
    })
}

/// Creates a new segment of `len` bytes (zero-filled, mode 0600) and maps
/// it writable. Fails with `EEXIST` if the name is taken; a failure after
/// creation unlinks the name again.
pub(crate) fn create(name: &str, len: usize) -> Result<Mapping, Error> {
    let c = c_name(name)?;
    // SAFETY: a NUL-terminated name; flags and mode are plain integers.
    let fd = unsafe {
        libc::shm_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
            0o600 as libc::mode_t,
        )
    };
    if fd < 0 {
        return Err(os("shm_open", name));
    }
    let fd = Fd(fd);
    let made = (|| {
        let size = libc::off_t::try_from(len).map_err(|_| Error::Os {
            op: "ftruncate",
            name: name.into(),
            errno: libc::EFBIG,
        })?;
        // SAFETY: an open descriptor of ours.
        if unsafe { libc::ftruncate(fd.0, size) } != 0 {
            return Err(os("ftruncate", name));
        }
        reserve(&fd, size, name)?;
        map(&fd, len, true, name)
    })();
    if made.is_err() {
        let _ = unlink(name);
    }
    made
}

/// Reserves the segment's pages now (Linux: `posix_fallocate`), so that a
/// full `/dev/shm` is `ENOSPC` here rather than `SIGBUS` at the first write
/// to a page that cannot be had (`ftruncate` alone makes a sparse file).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn reserve(fd: &Fd, size: libc::off_t, name: &str) -> Result<(), Error> {
    if size == 0 {
        return Ok(());
    }
    // SAFETY: an open descriptor of ours; posix_fallocate returns the error
    // number instead of setting errno.
    match unsafe { libc::posix_fallocate(fd.0, 0, size) } {
        0 => Ok(()),
        errno => Err(Error::Os {
            op: "posix_fallocate",
            name: name.into(),
            errno,
        }),
    }
}

/// Elsewhere the pages are made as they are first written.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn reserve(_fd: &Fd, _size: libc::off_t, _name: &str) -> Result<(), Error> {
    Ok(())
}

/// Opens an existing segment and maps all of it, writable or not.
pub(crate) fn open(name: &str, writable: bool) -> Result<Mapping, Error> {
    let c = c_name(name)?;
    let flags = if writable {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    } | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated name.
    let fd = unsafe { libc::shm_open(c.as_ptr(), flags, 0) };
    if fd < 0 {
        return Err(os("shm_open", name));
    }
    let fd = Fd(fd);
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: an open descriptor and a stat to fill.
    if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
        return Err(os("fstat", name));
    }
    let len = usize::try_from(st.st_size).unwrap_or(0);
    if len < crate::format::FIXED_HEADER {
        return Err(Error::Truncated {
            segment_len: len as u64,
            needed: crate::format::FIXED_HEADER as u64,
            what: "the fixed header",
        });
    }
    map(&fd, len, writable, name)
}

/// Removes the name (existing mappings stay valid).
pub(crate) fn unlink(name: &str) -> Result<(), Error> {
    let c = c_name(name)?;
    // SAFETY: a NUL-terminated name.
    if unsafe { libc::shm_unlink(c.as_ptr()) } != 0 {
        return Err(os("shm_unlink", name));
    }
    Ok(())
}

/// What `/proc/<pid>/stat` says of a process (Linux).
#[derive(Clone, Copy, Debug)]
struct ProcStat {
    /// Field 3: `Z` for a zombie (killed, not yet reaped).
    state: char,
    /// Field 22: when it started, in clock ticks since boot. With the pid
    /// it names one process for the life of the system: a pid reused by a
    /// later process comes with a later start.
    start: u64,
}

/// `/proc/<pid>/stat`, read once; `None` where it cannot be read (no such
/// process, or no `/proc`).
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything,
    // spaces and ')' included: fields 3.. follow its last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some(ProcStat { state, start })
}

/// This process's start time (clock ticks since boot, read once); `None`
/// without `/proc`.
pub(crate) fn own_start() -> Option<u64> {
    static START: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *START.get_or_init(|| proc_stat(std::process::id()).map(|s| s.start))
}

/// Whether the process `pid` that started at `start` (clock ticks since
/// boot; `None`: any start) still runs: `kill(pid, 0)` succeeds or is
/// refused with `EPERM`, and (on Linux) it is not a zombie and, when
/// `start` is given, started then (a later process that reused the pid is
/// another one). A live process whose `/proc` entry cannot be read counts
/// as running.
pub(crate) fn process_runs(pid: u32, start: Option<u64>) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(p, 0) } == 0 || errno() == libc::EPERM;
    if !alive || !cfg!(target_os = "linux") {
        return alive;
    }
    match proc_stat(pid) {
        Some(stat) => stat.state != 'Z' && start.is_none_or(|s| s == stat.start),
        None => true,
    }
}
