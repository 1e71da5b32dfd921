//! What goes to crates.io, and the check that it can: every crate of [`PUBLISHED`] has the
//! metadata crates.io shows ([`REQUIRED_FIELDS`]) and passes `cargo package` with verification
//! (the packaged sources build on their own); every other workspace member says
//! `publish = false`.
//!
//! The crates depend on each other by path and version, and none is on crates.io yet: `cargo
//! package` with several `-p` packages them together and verifies each against a temporary local
//! registry holding the others (cargo >= 1.90), so the check needs neither crates.io nor
//! `--no-verify`. Path-only dev-dependencies (the simulator's inspector) are dropped from the
//! packaged manifests, as cargo does on publish.

use std::path::Path;

use crate::cmd::{Cmd, Error, Result};
use crate::workspace::Workspace;

/// The crates meant for crates.io, in dependency order. Not published: `xtask` and
/// `dlpack-benches` (the workspace's own tools), `gpu-sim` (a stand-in `libcuda`/`libamdhip64`
/// for tests: a published crate exporting the drivers' symbols would invite linking it by
/// mistake, and no published crate needs it) and `gpu-sim-inspect` (its test-only wrapper).
pub const PUBLISHED: &[&str] = &[
    "dlpack-core",
    "dlpack-ndarray",
    "dlpack-image",
    "dlpack-safetensors",
    "dlpack-arrow",
    "dlpack-device",
    "dlpack-cuda",
    "dlpack-rocm",
    "dlpack-shm",
    "dlpack-py",
    "dlpack-candle",
    "dlpack-burn",
];

/// The `[package]` keys every published crate sets (directly or with `.workspace = true`).
const REQUIRED_FIELDS: &[&str] = &[
    "description",
    "license",
    "repository",
    "readme",
    "keywords",
    "categories",
    "documentation",
];

/// The folders holding the workspace's members.
const MEMBER_DIRS: &[&str] = &["crates", "."];

/// Checks the metadata of every member, then runs `cargo package` on [`PUBLISHED`]. `cargo` is
/// the command to run it with (the caller's environment, e.g. the Python venv dlpack-py's build
/// script configures pyo3 with).
pub fn check(ws: &Workspace, cargo: Cmd) -> Result {
    let mut problems = Vec::new();
    for (name, manifest) in members(ws.root())? {
        let text = std::fs::read_to_string(&manifest)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", manifest.display())))?;
        problems.extend(manifest_problems(&name, &text));
    }
    if !problems.is_empty() {
        return Err(Error::new(format!(
            "crate metadata is incomplete:\n  {}",
            problems.join("\n  ")
        )));
    }
    let verify_dir = ws.target_dir().join(VERIFY_DIR);
    forget_earlier_packages(&verify_dir)?;
    // --allow-dirty: the check is about what the packages hold, not the state of the checkout.
    let mut cargo = cargo
        .args(["package", "--allow-dirty", "--locked", "--target-dir"])
        .arg(&verify_dir);
    for name in PUBLISHED {
        cargo = cargo.args(["-p", name]);
    }
    cargo.run()
}

/// Where `cargo package` builds the packages it verifies (not the workspace's `target/debug`).
const VERIFY_DIR: &str = "package-check";

/// Forgets what earlier runs unpacked and compiled of [`PUBLISHED`] from cargo package's
/// temporary local registry.
///
/// Cargo takes a registry's crate to be immutable: it unpacks `<name>-<version>` once into
/// `$CARGO_HOME/registry/src/<registry>/` and reuses both that folder and what it compiled of
/// it. The temporary registry's folder is named after its path (`-<hash>`, no host), the same on
/// every run in one checkout, and our versions do not change between commits: without this, a
/// second run verifies a crate against the first run's build of the crates it depends on (a
/// function added since is "not found"). Only our crates' folders and fingerprints are removed,
/// in the local registries' folders and in [`VERIFY_DIR`]; crates.io's are not touched.
fn forget_earlier_packages(verify_dir: &Path) -> Result {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(home) => std::path::PathBuf::from(home),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".cargo"),
            None => return Ok(()),
        },
    };
    let mut stale = Vec::new();
    for registry in read_dir(&home.join("registry").join("src")) {
        if registry.file_name().to_string_lossy().starts_with('-') {
            stale.extend(read_dir(&registry.path()));
        }
    }
    stale.extend(read_dir(&verify_dir.join("debug").join(".fingerprint")));
    for entry in stale {
        if is_build_of_published(&entry.file_name().to_string_lossy()) {
            std::fs::remove_dir_all(entry.path()).map_err(|err| {
                Error::new(format!("cannot remove {}: {err}", entry.path().display()))
            })?;
        }
    }
    Ok(())
}

/// The entries of folder `dir` (none when it does not exist).
fn read_dir(dir: &Path) -> Vec<std::fs::DirEntry> {
    std::fs::read_dir(dir).map_or_else(|_| Vec::new(), |d| d.flatten().collect())
}

/// Whether folder `dir` is `<name>-<version>` (unpacked) or `<name>-<hash>` (a fingerprint) of a
/// crate of [`PUBLISHED`].
fn is_build_of_published(dir: &str) -> bool {
    PUBLISHED.iter().any(|name| {
        dir.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_hexdigit()))
    })
}

/// `(package name, Cargo.toml)` of each folder of [`MEMBER_DIRS`] with a manifest that has a
/// `[package]` (the root manifest is the workspace's only; `xtask` is found under `.`).
fn members(root: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut found = Vec::new();
    for dir in MEMBER_DIRS {
        let dir = root.join(dir);
        let entries = std::fs::read_dir(&dir)
            .map_err(|err| Error::new(format!("cannot list {}: {err}", dir.display())))?;
        for entry in entries.filter_map(|entry| entry.ok()) {
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            if entry.file_name() == "fuzz" {
                continue; // its own workspace, never published
            }
            if let Some(name) = package_name(&text) {
                found.push((name, manifest));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `name = "..."` of the `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let package = package_table(manifest)?;
    package.lines().find_map(|line| {
        let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_owned())
    })
}

/// The lines of the `[package]` table.
fn package_table(manifest: &str) -> Option<&str> {
    let start = manifest.find("[package]\n")? + "[package]\n".len();
    let rest = &manifest[start..];
    let end = rest.find("\n[").map_or(rest.len(), |at| at + 1);
    Some(&rest[..end])
}

/// What is wrong with one member's manifest: a published crate lacking a field of
/// [`REQUIRED_FIELDS`], or another crate without `publish = false`.
fn manifest_problems(name: &str, manifest: &str) -> Vec<String> {
    let Some(package) = package_table(manifest) else {
        return vec![format!("{name}: no [package] table")];
    };
    let keys: Vec<&str> = package
        .lines()
        .filter_map(|line| line.split('=').next())
        .map(|key| key.trim().trim_end_matches(".workspace"))
        .collect();
    let publish_false = package
        .lines()
        .any(|line| line.replace(' ', "") == "publish=false");
    if PUBLISHED.contains(&name) {
        let mut problems: Vec<String> = REQUIRED_FIELDS
            .iter()
            .filter(|field| !keys.contains(field))
            .map(|field| format!("{name}: no `{field}` (crates.io shows it)"))
            .collect();
        if publish_false {
            problems.push(format!("{name}: is in PUBLISHED but says publish = false"));
        }
        problems
    } else if publish_false {
        Vec::new()
    } else {
        vec![format!(
            "{name}: not in xtask's PUBLISHED list, so it needs `publish = false` \
             (or add it to PUBLISHED with full metadata)"
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETE: &str = "[package]\nname = \"dlpack-core\"\ndescription = \"x\"\n\
        license.workspace = true\nrepository.workspace = true\nreadme.workspace = true\n\
        documentation = \"https://docs.rs/dlpack-core\"\nkeywords = [\"a\"]\ncategories = [\"b\"]\n\
        \n[dependencies]\nkeywords = 1\n";

    #[test]
    fn a_complete_published_manifest_passes() {
        assert_eq!(package_name(COMPLETE).as_deref(), Some("dlpack-core"));
        assert!(manifest_problems("dlpack-core", COMPLETE).is_empty());
    }

    #[test]
    fn a_missing_field_is_named() {
        let manifest = COMPLETE.replace("categories = [\"b\"]\n", "");
        assert_eq!(
            manifest_problems("dlpack-core", &manifest),
            ["dlpack-core: no `categories` (crates.io shows it)"]
        );
    }

    #[test]
    fn other_members_must_opt_out() {
        let tool = "[package]\nname = \"xtask\"\npublish = false\n";
        assert!(manifest_problems("xtask", tool).is_empty());
        let forgotten = "[package]\nname = \"new-crate\"\n";
        assert_eq!(manifest_problems("new-crate", forgotten).len(), 1);
    }

    #[test]
    fn the_workspace_agrees_with_the_list() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let members = members(root).unwrap();
        let names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
        for name in PUBLISHED {
            assert!(names.contains(name), "{name} is not a workspace member");
        }
        assert!(
            names.contains(&"xtask") && names.contains(&"gpu-sim"),
            "{names:?}"
        );
        for (name, manifest) in &members {
            let text = std::fs::read_to_string(manifest).unwrap();
            assert_eq!(manifest_problems(name, &text), Vec::<String>::new());
        }
    }

    #[test]
    fn only_our_crates_builds_are_forgotten() {
        assert!(is_build_of_published("dlpack-core-0.1.0"));
        assert!(is_build_of_published("dlpack-py-1.2.3"));
        assert!(is_build_of_published("dlpack-device-14e22a4a888d5618"));
        assert!(!is_build_of_published("dlpack-core"));
        assert!(!is_build_of_published("dlpack-corex-0.1.0"));
        assert!(!is_build_of_published("dlpark-0.10.0"));
        assert!(!is_build_of_published("ndarray-0.16.1"));
    }
}
