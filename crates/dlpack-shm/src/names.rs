//! Segment names: the generated ones (`dlpack-<creator pid>-<hex>`), the
//! rule for names given by users, and the removal of generated names
//! whose creator has died.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::sys;

/// The prefix of every name this crate generates: `dlpack-<pid>-<hex>`,
/// where `<pid>` is the creator's, so that [`cleanup_stale`] can tell
/// whose segment it is without opening it.
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

/// The pid in a generated name, if `name` is one.
fn creator_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, suffix) = rest.split_once('-')?;
    if pid.is_empty()
        || !pid.bytes().all(|b| b.is_ascii_digit())
        || suffix.is_empty()
        || !suffix.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    pid.parse().ok()
}

/// Removes every generated segment name (`dlpack-<pid>-<hex>`) whose
/// creator process no longer runs, and returns the names removed. Mappings
/// of those segments stay valid; segments with user-given names are left
/// alone. Linux (names are listed from `/dev/shm`).
///
/// A pid reused by a new process keeps the segment until that process
/// exits too (never removing a live creator's segment is the rule).
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
        let Some(pid) = creator_of(&name) else {
            continue;
        };
        if sys::process_alive(pid) {
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
        .filter(|n| creator_of(n) == Some(pid))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_carry_the_pid() {
        assert_eq!(creator_of("dlpack-123-00ff"), Some(123));
        for bad in [
            "dlpack-123-",
            "dlpack--ab",
            "dlpack-12x-ab",
            "dlpack-1-xyz",
            "psm_1234",
            "dlpack-123",
        ] {
            assert_eq!(creator_of(bad), None, "{bad}");
        }
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
