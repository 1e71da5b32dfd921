//! Segments in real POSIX shared memory: publish, allocate, open, unlink,
//! refusals of bad segments written on purpose, and lifetimes across
//! processes (this test binary re-runs itself as the other process).
//! mmap is not under miri.
#![cfg(not(miri))]

mod common;
use common::known_dtypes;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dlpack_core::export::Export;
use dlpack_core::ffi::DLDataType;
use dlpack_core::managed::ManagedTensorVersioned;
use dlpack_shm::format::{FIXED_HEADER, Header};
use dlpack_shm::{Error, Handle, Options, Segment, cleanup_stale, names_of, open, unlink};

/// Removes the named segments when dropped, whatever the test did.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = unlink(n);
        }
    }
}

fn exists(name: &str) -> bool {
    std::path::Path::new("/dev/shm").join(name).exists()
}

/// The permissions of the mapping of /dev/shm/`name` that holds `addr`.
fn mapping_perms(name: &str, addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().find_map(|l| {
        if !l.contains(&format!("/dev/shm/{name}")) {
            return None;
        }
        let mut f = l.split_whitespace();
        let (lo, hi) = f.next()?.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        (lo <= addr && addr < hi).then(|| f.next().unwrap().to_string())
    })
}

/// The elements of a tensor of whole-byte elements, in logical row-major
/// order, as their bytes.
fn logical_bytes(t: &ManagedTensorVersioned) -> Vec<u8> {
    let v = t.view();
    let size = match v.storage() {
        dlpack_core::dtype::Storage::Bytes(n) => n as usize,
        dlpack_core::dtype::Storage::PackedBits(_) => {
            // Packed: compact, so the bytes are the span.
            let n = v.layout().span_bytes() as usize;
            // SAFETY: a validated host tensor of n bytes from its first element.
            return unsafe { std::slice::from_raw_parts(v.data_ptr(), n) }.to_vec();
        }
    };
    let shape = v.shape().to_vec();
    let strides: Vec<i64> = v.strides().collect();
    let mut out = Vec::new();
    let n: i64 = shape.iter().product();
    for flat in 0..n {
        let (mut rem, mut off) = (flat, 0i64);
        for axis in (0..shape.len()).rev() {
            off += (rem % shape[axis]) * strides[axis];
            rem /= shape[axis];
        }
        // SAFETY: an element of a validated host tensor.
        let p = unsafe { v.data_ptr().offset(off as isize * size as isize) };
        // SAFETY: as above, `size` bytes of that element.
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(p, size) });
    }
    out
}

#[test]
fn every_dtype_is_published_and_opened_with_its_bytes() {
    // One lane each: the sizes below count bits per element.
    for dtype in known_dtypes().into_iter().filter(|d| d.lanes == 1) {
        let bits = usize::from(dtype.bits);
        let (shape, nbytes) = if bits % 8 == 0 {
            (vec![2i64, 3], 6 * bits / 8)
        } else {
            (vec![8i64], bits)
        };
        let data: Vec<u8> = (0..nbytes).map(|i| (i * 7 + 1) as u8).collect();
        let src = Export::new(data.clone())
            .dtype(dtype)
            .shape(&shape)
            .versioned()
            .unwrap();
        let seg = Segment::publish(&src.view(), &Options::default()).unwrap();
        let _c = Cleanup(vec![seg.name().into()]);
        let t = open(&seg.handle()).unwrap();
        let v = t.view();
        assert_eq!((v.dtype(), v.shape()), (dtype, &shape[..]), "{dtype:?}");
        assert_eq!(logical_bytes(&t), data, "{dtype:?}");
        assert!(!t.flags().is_read_only());
        // The payload is 64-byte aligned.
        assert_eq!(v.data_ptr() as usize % 64, 0, "{dtype:?}");
    }
}

#[test]
fn strides_and_offsets_travel_as_they_are() {
    let data: Vec<f32> = (0..12).map(|i| i as f32).collect();
    // A column of a 3 x 4 matrix walked backwards, and a broadcast view.
    for (shape, strides, offset) in [
        (&[3i64][..], &[-4i64][..], 32u64),
        (&[2, 3][..], &[0, 2][..], 4),
        (&[2, 2][..], &[1, 4][..], 0),
        (&[0, 5][..], &[1, 1][..], 0),
        (&[][..], &[][..], 8),
    ] {
        let src = Export::new(data.clone())
            .shape(shape)
            .strides(strides)
            .byte_offset(offset)
            .versioned()
            .unwrap();
        let seg = Segment::publish(&src.view(), &Options::default()).unwrap();
        let _c = Cleanup(vec![seg.name().into()]);
        let t = open(&seg.handle()).unwrap();
        assert_eq!(t.view().shape(), shape);
        if !shape.contains(&0) {
            assert_eq!(t.view().strides().collect::<Vec<_>>(), strides);
        }
        assert_eq!(
            logical_bytes(&t),
            logical_bytes(&src),
            "{shape:?} {strides:?}"
        );
    }
}

#[test]
fn device_memory_is_refused() {
    let src = Export::new(vec![1.0f32]).versioned().unwrap();
    let mut raw = *src.view().raw();
    raw.device = dlpack_core::ffi::DLDevice {
        device_type: dlpack_core::ffi::DLDeviceType::kDLCUDA,
        device_id: 0,
    };
    // SAFETY: the descriptor is valid (only the device differs); publish
    // refuses it before reading any byte.
    let v = unsafe {
        dlpack_core::tensor::TensorView::from_raw(&raw, dlpack_core::tensor::Flags::from_bits(0))
    }
    .unwrap();
    let err = Segment::publish(&v, &Options::default()).unwrap_err();
    assert!(matches!(err, Error::NotHost { .. }), "{err}");
    assert!(err.to_string().contains("dl_device=(1, 0)"), "{err}");
}

#[test]
fn read_only_segments_are_mapped_prot_read() {
    let src = Export::new(vec![1u16, 2, 3]).versioned().unwrap();
    let ro = Options {
        read_only: true,
        ..Options::default()
    };
    let seg = Segment::publish(&src.view(), &ro).unwrap();
    let _c = Cleanup(vec![seg.name().into()]);
    let mut t = open(&seg.handle()).unwrap();
    assert!(t.flags().is_read_only());
    assert!(t.as_mut_slice::<u16>().is_err());
    let addr = t.view().data_ptr() as usize;
    assert_eq!(mapping_perms(seg.name(), addr).as_deref(), Some("r--s"));
    // The creator's own view stays writable: read-only binds readers.
    assert!(!seg.tensor().unwrap().flags().is_read_only());
    // A writable one is mapped for writing, and shared: a write through
    // one mapping is read through the other.
    let mut w = Segment::allocate(DLDataType::U16, &[3], &Options::default()).unwrap();
    let _c2 = Cleanup(vec![w.name().into()]);
    w.as_mut_slice::<u16>().unwrap().copy_from_slice(&[4, 5, 6]);
    let mut a = open(&w.handle()).unwrap();
    let b = w.tensor().unwrap();
    assert_eq!(
        mapping_perms(w.name(), a.view().data_ptr() as usize).as_deref(),
        Some("rw-s")
    );
    assert_ne!(a.view().data_ptr(), b.view().data_ptr());
    a.as_mut_slice::<u16>().unwrap()[1] = 50;
    assert_eq!(b.view().as_slice::<u16>().unwrap(), &[4, 50, 6]);
    // While an export of the writer's mapping lives, no &mut of it.
    assert!(matches!(w.payload_mut(), Err(Error::ReadOnly { .. })));
    drop(b);
    assert!(w.payload_mut().is_ok());
}

#[test]
fn unlink_keeps_mappings_and_refuses_later_opens() {
    let mut seg = Segment::allocate(DLDataType::I64, &[2], &Options::default()).unwrap();
    seg.as_mut_slice::<i64>().unwrap().copy_from_slice(&[-1, 9]);
    let t = open(&seg.handle()).unwrap();
    seg.unlink().unwrap();
    assert!(!exists(seg.name()));
    assert_eq!(t.view().as_slice::<i64>().unwrap(), &[-1, 9]);
    let mine = seg.tensor().unwrap();
    drop(seg);
    assert_eq!(mine.view().as_slice::<i64>().unwrap(), &[-1, 9]);
    let err = open(&Handle {
        name: t_name(&t),
        nonce: 0,
    })
    .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
}

fn t_name(_t: &ManagedTensorVersioned) -> String {
    "dlpack-0-gone".into()
}

#[test]
fn unlink_on_drop_is_an_owner_policy() {
    let opts = Options {
        unlink_on_drop: true,
        ..Options::default()
    };
    let seg = Segment::allocate(DLDataType::U8, &[1], &opts).unwrap();
    let name = seg.name().to_string();
    let t = open(&seg.handle()).unwrap();
    drop(seg);
    assert!(!exists(&name));
    assert_eq!(t.view().as_slice::<u8>().unwrap(), &[0]);
}

#[test]
fn user_names_are_checked_and_kept_apart_from_generated_ones() {
    let named = Options {
        name: Some(format!("test.user-{}", std::process::id())),
        ..Options::default()
    };
    let seg = Segment::allocate(DLDataType::U8, &[2], &named).unwrap();
    let _c = Cleanup(vec![seg.name().into()]);
    assert_eq!(seg.name(), named.name.as_deref().unwrap());
    // The same name twice: EEXIST, never a silent reuse.
    let err = Segment::allocate(DLDataType::U8, &[2], &named).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    for bad in ["dlpack-1-ab", "a/b", ""] {
        let o = Options {
            name: Some(bad.into()),
            ..Options::default()
        };
        let err = Segment::allocate(DLDataType::U8, &[1], &o).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
    }
}

/// A segment larger than /dev/shm can hold is refused when it is made
/// (`ENOSPC`), not by `SIGBUS` at the first write that finds no page.
#[test]
#[cfg(target_os = "linux")]
fn a_segment_larger_than_dev_shm_is_refused_when_made() {
    // SAFETY: an all-zero statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    assert_eq!(unsafe { libc::statvfs(c"/dev/shm".as_ptr(), &mut st) }, 0);
    let total = st.f_blocks as i64 * st.f_frsize as i64;
    let err = Segment::allocate(DLDataType::U8, &[2 * total], &Options::default())
        .map(|seg| seg.unlink())
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOSPC), "{err}");
    assert!(err.to_string().contains("posix_fallocate"), "{err}");
    assert!(
        names_of(std::process::id())
            .unwrap()
            .iter()
            .all(|n| exists(n))
    );
}

/// Writes `bytes` as the segment `name` (a bad segment made on purpose).
fn write_segment(name: &str, bytes: &[u8]) {
    std::fs::write(std::path::Path::new("/dev/shm").join(name), bytes).unwrap();
}

#[test]
fn truncated_foreign_and_inconsistent_segments_are_refused() {
    let pid = std::process::id();
    let good = Export::new(vec![1.0f64, 2.0]).versioned().unwrap();
    let seg = Segment::publish(&good.view(), &Options::default()).unwrap();
    let _c0 = Cleanup(vec![seg.name().into()]);
    let whole = std::fs::read(std::path::Path::new("/dev/shm").join(seg.name())).unwrap();
    let header = Header::parse(&whole, whole.len() as u64).unwrap();
    let mut inconsistent = whole.clone();
    inconsistent[48..56].copy_from_slice(&1000u64.to_le_bytes());
    let mut outside = whole.clone();
    outside[56..64].copy_from_slice(&8u64.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "0 bytes, but the fixed header needs 64"),
        (
            "fixed header only",
            whole[..FIXED_HEADER].to_vec(),
            "the header's shape and strides",
        ),
        (
            "payload cut",
            whole[..whole.len() - 1].to_vec(),
            "the payload",
        ),
        (
            "foreign",
            b"hello, this is not a tensor at all; 64 bytes and more....................".to_vec(),
            "not a dlpack",
        ),
        ("payload length", inconsistent, "needs 1128 bytes"),
        (
            "byte offset",
            outside,
            "reach bytes [8, 24) of a 16-byte payload",
        ),
    ];
    for (what, bytes, needle) in cases {
        let name = format!("test.bad-{pid}-{}", what.replace(' ', "_"));
        let _c = Cleanup(vec![name.clone()]);
        write_segment(&name, &bytes);
        let err = dlpack_shm::open_by_name(&name).unwrap_err();
        assert!(err.to_string().contains(needle), "{what}: {err}");
        assert_eq!(
            err.kind(),
            dlpack_core::error::ErrorKind::Value,
            "{what}: {err:?}"
        );
    }
    // A handle whose nonce is not the header's: the name was reused.
    let err = open(&Handle {
        name: seg.name().into(),
        nonce: header.nonce ^ 1,
    })
    .unwrap_err();
    assert!(matches!(err, Error::NonceMismatch { .. }), "{err}");
}

// --- across processes ---------------------------------------------------

const ROLE: &str = "DLPACK_SHM_TEST_ROLE";

/// A child process, killed (if still running) and reaped on drop, so a
/// failing test never leaves one behind.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Kid {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Kid {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Runs this test binary as the other process, in `role`.
fn spawn(role: &str, arg: &str) -> Kid {
    Kid(Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env("DLPACK_SHM_TEST_ARG", arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap())
}

/// Reads lines of the child's stdout until one holds `tag ` (the test
/// harness prints its own words before it on the same line).
fn read_tagged(child: &mut Child, tag: &str) -> String {
    let out = child.stdout.as_mut().unwrap();
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(
            r.read_line(&mut line).unwrap(),
            0,
            "child ended before {tag}"
        );
        if let Some((_, rest)) = line.trim_end().split_once(&format!("{tag} ")) {
            return rest.split_whitespace().next().unwrap_or("").to_string();
        }
    }
}

/// The other process: a no-op in a normal run.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let arg = std::env::var("DLPACK_SHM_TEST_ARG").unwrap_or_default();
    match role.as_str() {
        // Publish, print the handle, wait for a line on stdin (or EOF), exit
        // without unlinking.
        "publish" | "publish-hang" => {
            let src = Export::new(vec![10i32, 20, 30, 40])
                .shape(&[2, 2])
                .versioned()
                .unwrap();
            let seg = Segment::publish(
                &src.view(),
                &Options {
                    read_only: true,
                    ..Options::default()
                },
            )
            .unwrap();
            println!("HANDLE {}", seg.handle());
            if role == "publish-hang" {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(60));
                }
            }
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        // Open the handle, print the sum, exit (the reader exits first).
        "open" => {
            let t = open(&Handle::parse(&arg).unwrap()).unwrap();
            let sum: i64 = t.view().as_slice::<i64>().unwrap().iter().sum();
            println!("SUM {sum}");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn the_creator_exits_while_a_reader_maps_it() {
    let mut child = spawn("publish", "");
    let handle = Handle::parse(&read_tagged(&mut child, "HANDLE")).unwrap();
    let _c = Cleanup(vec![handle.name.clone()]);
    let t = open(&handle).unwrap();
    assert!(t.flags().is_read_only());
    drop(child.stdin.take()); // the creator exits
    assert!(child.wait().unwrap().success());
    assert_eq!(t.view().as_slice::<i32>().unwrap(), &[10, 20, 30, 40]);
    // Its creator is gone: the next cleanup removes the name, and the
    // mapping stays readable.
    // (A test running beside this one may have cleaned it first.)
    cleanup_stale().unwrap();
    assert!(!exists(&handle.name));
    assert_eq!(t.view().as_slice::<i32>().unwrap(), &[10, 20, 30, 40]);
}

#[test]
fn a_reader_exits_first() {
    let mut seg = Segment::allocate(DLDataType::I64, &[3], &Options::default()).unwrap();
    let _c = Cleanup(vec![seg.name().into()]);
    seg.as_mut_slice::<i64>()
        .unwrap()
        .copy_from_slice(&[1, 2, 3]);
    let mut child = spawn("open", &seg.handle().to_string());
    assert_eq!(read_tagged(&mut child, "SUM"), "6");
    assert!(child.wait().unwrap().success());
    // Still ours, still named, still writable.
    seg.as_mut_slice::<i64>().unwrap()[0] = 4;
    assert!(exists(seg.name()));
    // A live creator's segment is never removed.
    assert!(!cleanup_stale().unwrap().contains(&seg.name().to_string()));
    assert_eq!(
        open(&seg.handle())
            .unwrap()
            .view()
            .as_slice::<i64>()
            .unwrap(),
        &[4, 2, 3]
    );
}

#[test]
fn a_creator_killed_by_sigkill_leaves_nothing_cleanup_cannot_remove() {
    let mut child = spawn("publish-hang", "");
    let handle = Handle::parse(&read_tagged(&mut child, "HANDLE")).unwrap();
    let _c = Cleanup(vec![handle.name.clone()]);
    let pid = child.id();
    let t = open(&handle).unwrap();
    assert_eq!(names_of(pid).unwrap(), vec![handle.name.clone()]);
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    child.wait().unwrap();
    cleanup_stale().unwrap();
    assert_eq!(names_of(pid).unwrap(), Vec::<String>::new());
    assert_eq!(t.view().as_slice::<i32>().unwrap(), &[10, 20, 30, 40]);
}

/// This process's start time (clock ticks since boot), read here from
/// `/proc/self/stat` independently of the crate.
fn own_start() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn a_dead_creator_whose_pid_is_reused_is_cleaned() {
    // A segment of an earlier process that had this pid: it started
    // earlier, died, and the pid came to this test. The pid is alive, but
    // the start time in the name is not this process's.
    let pid = std::process::id();
    let start = own_start();
    let stale = format!("dlpack-{pid}-{:x}-00000000abcd", start - 1);
    std::fs::write(std::path::Path::new("/dev/shm").join(&stale), b"x").unwrap();
    let _c = Cleanup(vec![stale.clone()]);
    // This process's own segment names its start and stays.
    let seg = Segment::allocate(DLDataType::I64, &[1], &Options::default()).unwrap();
    let _d = Cleanup(vec![seg.name().into()]);
    assert!(
        seg.name().starts_with(&format!("dlpack-{pid}-{start:x}-")),
        "{}",
        seg.name()
    );
    let removed = cleanup_stale().unwrap();
    assert!(!exists(&stale), "the reused pid kept {stale}");
    assert!(removed.contains(&stale) || !exists(&stale));
    assert!(!removed.contains(&seg.name().to_string()));
    assert!(exists(seg.name()));
}
