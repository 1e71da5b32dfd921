//! Segment names: the generated ones (`dlpack-<pid>-<start>-<hex>`, the
//! creator's pid and start time), the rule for names given by users, and
//! the removal of generated names whose creator has died.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::sys;

/// The prefix of every name this crate generates:
/// `dlpack-<pid>-<start>-<hex>`, where `<pid>` is the creator's and
/// `<start>` its start time (clock ticks since boot, in hex), so that
/// [`cleanup_stale`] can tell whose segment it is without opening it, even
/// after the pid went to another process.
pub const NAME_PREFIX: &str = "dlpack-";

/// Where Linux shows POSIX shared-memory names.
const SHM_DIR: &str = "/dev/shm";

/// Checks a name given by the user.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let bad = |rule| Error::InvalidName {
        name: name.into(),
        rule,
    };
    if name.is_empty() || name.len() > 200 {
        return Err(bad("a name has 1 to 200 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad("a name is made of [A-Za-z0-9._-]"));
    }
    Ok(())
}

/// A random 64-bit value (the hasher's keys are random per process).
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// A generated name: `dlpack-<pid>-<start>-<hex>` (`<start>` is 0 where
/// the creator's start time cannot be read).
pub(crate) fn generated_name(pid: u32, start: Option<u64>, random: u64) -> String {
    format!(
        "{NAME_PREFIX}{pid}-{:x}-{:012x}",
        start.unwrap_or(0),
        random >> 16
    )
}

/// The creator of a generated segment: its pid and, when the name records
/// it (not 0), its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Creator {
    pid: u32,
    start: Option<u64>,
}

impl Creator {
    /// Whether the creator still runs: its pid is alive and, when the name
    /// records a start time, the process holding the pid started then (a
    /// later process that reused the pid is not the creator). When the
    /// live process's start cannot be read, it counts as the creator.
    fn runs(self) -> bool {
        sys::process_runs(self.pid, self.start)
    }
}

/// The creator named by a generated name, if `name` is one:
/// `dlpack-<pid>-<start>-<hex>`, or `dlpack-<pid>-<hex>` (names made before
/// the start time was recorded).
fn creator_of(name: &str) -> Option<Creator> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut parts = rest.split('-');
    let (pid, a, b) = (parts.next()?, parts.next()?, parts.next());
    if parts.next().is_some() || !decimal(pid) || !hex(a) || !b.is_none_or(hex) {
        return None;
    }
    let start = match b {
        Some(_) => Some(u64::from_str_radix(a, 16).ok()?).filter(|&s| s != 0),
        None => None,
    };
    Some(Creator {
        pid: pid.parse().ok()?,
        start,
    })
}

/// Removes every generated segment name (`dlpack-<pid>-<start>-<hex>`)
/// whose creator process no longer runs, and returns the names removed.
/// Mappings of those segments stay valid; segments with user-given names
/// are left alone. Linux (names are listed from `/dev/shm`).
///
/// A pid reused by a later process does not keep a dead creator's segment:
/// the name records the creator's start time, which the later process does
/// not have. Never removing a live creator's segment is the rule, so a
/// name without a start time (or a process whose start cannot be read)
/// counts as its creator while the pid is alive.
///
/// # Errors
///
/// [`Error::Os`] when `/dev/shm` cannot be listed.
pub fn cleanup_stale() -> Result<Vec<String>, Error> {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| Error::Os {
        op: "read_dir",
        name: SHM_DIR.into(),
        errno: e.raw_os_error().unwrap_or(0),
    })?;
    let mut removed = Vec::new();
    for entry in dir.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(creator) = creator_of(&name) else {
            continue;
        };
        if creator.runs() {
            continue;
        }
        match sys::unlink(&name) {
            Ok(()) => removed.push(name),
            // Someone else removed it meanwhile.
            Err(e) if e.errno() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    removed.sort();
    Ok(removed)
}

/// The generated names of segments made by process `pid` that exist now
/// (Linux: listed from `/dev/shm`).
///
/// # Errors
///
/// [`Error::Os`] when `/dev/shm` cannot be listed.
pub fn names_of(pid: u32) -> Result<Vec<String>, Error> {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| Error::Os {
        op: "read_dir",
        name: SHM_DIR.into(),
        errno: e.raw_os_error().unwrap_or(0),
    })?;
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| creator_of(n).map(|c| c.pid) == Some(pid))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_carry_the_pid_and_start() {
        let name = generated_name(123, Some(0x4d2), u64::MAX);
        assert_eq!(name, "dlpack-123-4d2-ffffffffffff");
        let start = Some(0x4d2);
        assert_eq!(creator_of(&name), Some(Creator { pid: 123, start }));
        // Without a start time (0), and names made before it was recorded.
        for (name, pid) in [("dlpack-7-0-00ff", 7), ("dlpack-123-00ff", 123)] {
            let start = None;
            assert_eq!(creator_of(name), Some(Creator { pid, start }), "{name}");
        }
        for bad in [
            "dlpack-123-",
            "dlpack--ab",
            "dlpack-12x-ab",
            "dlpack-1-xyz",
            "dlpack-1-ab-",
            "dlpack-1-ab-xy",
            "dlpack-1-ab-cd-ef",
            "dlpack-1-fffffffffffffffff-ab",
            "psm_1234",
            "dlpack-123",
        ] {
            assert_eq!(creator_of(bad), None, "{bad}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "/proc is an operating-system facility")]
    fn a_pid_reused_by_a_later_process_is_not_the_creator() {
        let pid = std::process::id();
        let start = sys::own_start();
        assert!(
            start.is_some(),
            "/proc/self/stat gives this process's start"
        );
        assert!(Creator { pid, start }.runs());
        let later = start.map(|s| s + 1);
        assert!(!Creator { pid, start: later }.runs());
        assert!(Creator { pid, start: None }.runs());
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "a/b", "a b", "é", &"x".repeat(201)] {
            assert!(
                matches!(check_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
        check_name("my.tensor_1-a").unwrap();
    }
}
