//! Peer test suites run against our module: pydlpack 0.2.1's own suite (`dlpack/tests/` in its
//! package), with the frameworks of the venv.
//!
//! The suite is copied at test time from the installed peer package (never vendored), into
//! `<target>/peer-suites/pydlpack/`, where `import dlpack` finds our module (pydlpack lives in
//! `<venv>/peers/pydlpack`, which is not on `sys.path`; a conftest checks which `dlpack` loaded).
//! Where the suite expects what the DLPack standard forbids, or reaches into pydlpack's
//! internals, the copy is rewritten by the table [`REWRITES`], each entry with its reason; every
//! rewrite must match exactly once, so a changed suite fails loudly instead of silently running
//! unpatched. Cases that need a GPU are skipped by the suite itself (it asks each framework
//! whether CUDA is there) and reported in pytest's summary.

use std::path::Path;

use crate::cmd::{Error, Result};
use crate::python::Venv;
use crate::steps::Outcome;
use crate::workspace::Workspace;

/// Where xtask installs pydlpack (`python.rs`), relative to the venv.
const PYDLPACK_DIR: &str = "peers/pydlpack/dlpack/tests";

/// Where the copy runs, relative to the target directory.
const WORK_DIR: &str = "peer-suites/pydlpack";

/// One change to the copied suite: in `file`, `from` (exactly once) becomes `to`.
struct Rewrite {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    /// Why the suite's expectation is not kept.
    why: &'static str,
}

/// Every change made to pydlpack's suite, with its reason.
const REWRITES: &[Rewrite] = &[
    Rewrite {
        file: "test_dlpack.py",
        from: "        c = dl.__dlpack__()\n",
        to: "        c = dl.__dlpack__(max_version=(1, 0)) if impl_cls is dlpack.DLManagedTensorVersioned else dl.__dlpack__()\n",
        why: "Spec: `__dlpack__()` without max_version asks for the legacy DLManagedTensor \
              (capsule \"dltensor\"). pydlpack's impl_cls=DLManagedTensorVersioned answered it \
              with a versioned struct under the legacy name, which every consumer misreads; ours \
              exports \"dltensor_versioned\" to a consumer that asks with max_version >= (1, 0) \
              and refuses the legacy request with BufferError. So the versioned cases ask as a \
              versioned consumer does; the assertions on the struct are unchanged.",
    },
    Rewrite {
        file: "test_dlpack.py",
        from: "            p = dl.impl.get_dlpack_data()\n",
        to: "            p = dl.__array_interface__[\"data\"][0]\n",
        why: "pydlpack internals: `DLPackObject.impl` is pydlpack's ctypes memory manager, not \
              part of its namespace; the same data pointer is public here as \
              `__array_interface__[\"data\"][0]`.",
    },
    Rewrite {
        file: "test_dlpack.py",
        from: "            if type(obj).__name__ in {\"memmap\", \"mmap\"}:\n                # Check failed: IsAligned()\n                continue\n",
        to: "            if type(obj).__name__ in {\"memmap\", \"mmap\"}:\n                # Check failed: IsAligned()\n                continue\n            if memoryview(obj).readonly:\n                continue  # legacy consumer, read-only data: refused (see the harness)\n",
        why: "Spec: TensorFlow's from_dlpack takes a legacy capsule (`__dlpack__()` without \
              max_version), and a legacy DLManagedTensor cannot say that its data is read-only, \
              so read-only memory (the `bytes` sample) is refused with BufferError, as NumPy \
              refuses its own read-only arrays; pydlpack handed TensorFlow writable access to an \
              immutable `bytes`. The writable samples still go to TensorFlow (and whether a \
              `bytes` buffer is 128-byte aligned, TensorFlow's own condition, changes run to run).",
    },
    Rewrite {
        file: "test_dlpack.py",
        from: "        yield fp\n        fp.close()\n        import os\n",
        to: "        yield fp\n        del fp  # closed with its last view (see the harness)\n        import os\n",
        why: "Lifetime: a DLPack producer keeps the memory alive until the tensor's deleter \
              runs, so asdlpack_buffer holds its buffer view as long as the DLPackObject or an \
              array made from it lives, and mmap.close() then raises BufferError (\"exported \
              pointers exist\"), as it does for a memoryview. pydlpack released its view at \
              once, so closing unmapped memory its arrays still pointed into. The sample \
              generator drops its reference instead of closing while the test's arrays live; \
              the mmap closes with its last view.",
    },
    Rewrite {
        file: "test_dlpack.py",
        from: "        a3 = from_dlpack(a2.copy())\n",
        to: "        a3 = from_dlpack(_aligned_copy(a2) if backend.__name__ == \"tensorflow\" else a2.copy())\n",
        why: "TensorFlow aborts the process (CHECK IsAligned) on an unaligned tensor instead of \
              raising. The suite skips our samples that are not 128-byte aligned for that reason, \
              but not its own NumPy copy, whose address (NumPy's allocator aligns to 16 bytes) \
              changes run to run, so the test aborted now and then; the copy handed to \
              TensorFlow is made 128-byte aligned (`_aligned_copy`, appended to the file).",
    },
];

/// The helper a rewrite of `test_dlpack.py` calls: a copy of a NumPy array whose data is
/// 128-byte aligned (TensorFlow aborts on unaligned tensors).
const ALIGNED_COPY: (&str, &str) = (
    "test_dlpack.py",
    "\n\ndef _aligned_copy(a, align=128):\n    \
     import numpy\n    \
     raw = numpy.empty(a.nbytes + align, dtype=numpy.uint8)\n    \
     start = -raw.ctypes.data % align\n    \
     out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)\n    \
     out[...] = a\n    \
     return out\n",
);

/// Runs pydlpack's suite against our installed module (built by the "python" step).
pub fn pydlpack(ws: &Workspace, venv: &Venv) -> Result<Outcome> {
    let python = venv.python();
    let prefix = python
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| Error::new("the venv's interpreter is not in <venv>/bin"))?;
    let suite = prefix.join(PYDLPACK_DIR);
    if !suite.is_dir() {
        return Err(Error::new(format!(
            "pydlpack's suite is not at {} (the python env step installs pydlpack there)",
            suite.display()
        )));
    }
    let work = ws.target_dir().join(WORK_DIR);
    copy_suite(&suite, &work)?;
    let pytest = venv
        .apply(crate::cmd::Cmd::new(&python))
        .args(["-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider"])
        .arg(&work)
        .current_dir(&work)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for r in REWRITES {
        eprintln!("pydlpack suite: rewrote {}: {}", r.file, r.why);
    }
    pytest.run()?;
    Ok(Outcome::Passed)
}

/// Copies the suite's `test_*.py` into a fresh `work`, applies [`REWRITES`], and adds the
/// conftest that makes sure `dlpack` is ours.
fn copy_suite(suite: &Path, work: &Path) -> Result {
    let io = |what: &str, path: &Path, err: std::io::Error| {
        Error::new(format!("cannot {what} {}: {err}", path.display()))
    };
    if work.exists() {
        std::fs::remove_dir_all(work).map_err(|e| io("remove", work, e))?;
    }
    std::fs::create_dir_all(work).map_err(|e| io("create", work, e))?;
    let entries = std::fs::read_dir(suite).map_err(|e| io("list", suite, e))?;
    let mut copied = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io("list", suite, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.starts_with("test_") && name.ends_with(".py")) {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).map_err(|e| io("read", &path, e))?;
        for r in REWRITES.iter().filter(|r| r.file == name) {
            let found = text.matches(r.from).count();
            if found != 1 {
                return Err(Error::new(format!(
                    "pydlpack suite: the rewrite of {name} expects {:?} once, found {found} \
                     times (did the installed pydlpack change?)",
                    r.from
                )));
            }
            text = text.replacen(r.from, r.to, 1);
        }
        if name == ALIGNED_COPY.0 {
            text.push_str(ALIGNED_COPY.1);
        }
        let to = work.join(name);
        std::fs::write(&to, text).map_err(|e| io("write", &to, e))?;
        copied.push(name.to_owned());
    }
    for r in REWRITES {
        if !copied.iter().any(|c| c == r.file) {
            return Err(Error::new(format!(
                "pydlpack suite: {} is not in {}",
                r.file,
                suite.display()
            )));
        }
    }
    let conftest = work.join("conftest.py");
    std::fs::write(&conftest, CONFTEST).map_err(|e| io("write", &conftest, e))?;
    let ini = work.join("pytest.ini");
    std::fs::write(&ini, "[pytest]\n").map_err(|e| io("write", &ini, e))?;
    Ok(())
}

/// The conftest of the copy: fail at once if `dlpack` is not our module.
const CONFTEST: &str = r#""""pydlpack 0.2.1's suite, run against the dlpack-rs module (written by cargo xtask)."""
import dlpack

if not hasattr(dlpack, "_native"):
    raise ImportError(
        f"`dlpack` is {dlpack.__file__}, not the dlpack-rs module: pydlpack must stay in "
        "<venv>/peers/pydlpack, off sys.path"
    )
"#;
