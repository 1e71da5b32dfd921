//! The workspace xtask works on: its root, its target directory and its packages, read once from
//! `cargo metadata`, and the `cargo` commands that run in it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, Error, Result};

/// The workspace root, what `cargo metadata --no-deps` says about it, and how to run cargo in it.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    target_dir: PathBuf,
    cargo: OsString,
    metadata: String,
}

impl Workspace {
    /// Finds the workspace (the parent of xtask's manifest directory) and reads its metadata.
    pub fn locate() -> Result<Self> {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let root = manifest_dir
            .parent()
            .ok_or_else(|| Error::new("xtask's manifest directory has no parent"))?
            .to_owned();
        // `cargo` sets `CARGO` to the binary of the toolchain that runs xtask; use the same one.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let metadata = Cmd::new(&cargo)
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(&root)
            .read()?;
        // Honours CARGO_TARGET_DIR and `build.target-dir`; otherwise it is `<root>/target`.
        let target_dir = json_string_field(&metadata, "target_directory")
            .map_or_else(|| root.join("target"), PathBuf::from);
        Ok(Self {
            root,
            target_dir,
            cargo,
            metadata,
        })
    }

    /// The workspace root (where the root `Cargo.toml` is).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory cargo builds into.
    pub fn target_dir(&self) -> &Path {
        &self.target_dir
    }

    /// `cargo` (the toolchain that runs xtask), run in the workspace root.
    pub fn cargo(&self) -> Cmd {
        Cmd::new(&self.cargo).current_dir(&self.root)
    }

    /// `cargo +<toolchain>`, run in the workspace root.
    ///
    /// This goes through the rustup proxy `cargo` on `PATH`, not `$CARGO`: only the proxy
    /// understands `+toolchain`, and `$CARGO` is the binary of the toolchain that runs xtask.
    pub fn cargo_on(&self, toolchain: &str) -> Cmd {
        Cmd::new("cargo")
            .arg(format!("+{toolchain}"))
            .current_dir(&self.root)
    }

    /// Whether the workspace has a package with this name.
    ///
    /// A plain search of the metadata for `"name":"<name>"`: with `--no-deps` it lists only
    /// workspace packages (their dependencies appear by name too, but a path dependency has to
    /// exist for `cargo metadata` to succeed at all).
    pub fn has_package(&self, name: &str) -> bool {
        self.metadata.contains(&format!(r#""name":"{name}""#))
    }

    /// The packages of `names` that exist; prints a note for each one that does not.
    pub fn existing_packages<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Vec<&'n str> {
        names
            .into_iter()
            .filter(|name| {
                let exists = self.has_package(name);
                if !exists {
                    eprintln!("note: package `{name}` is not in the workspace yet; skipping it");
                }
                exists
            })
            .collect()
    }
}

/// The value of the first string field `key` in a JSON text (enough for `cargo metadata`'s
/// `target_directory`), with the JSON escapes a path can contain undone.
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!(r#""{key}":""#))? + key.len() + 4;
    let mut value = String::new();
    let mut chars = json[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                escaped => value.push(escaped),
            },
            c => value.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_string_fields_with_escapes() {
        let json = r#"{"packages":[],"target_directory":"/w/my \"t\"\\dir","version":1}"#;
        assert_eq!(
            json_string_field(json, "target_directory").as_deref(),
            Some(r#"/w/my "t"\dir"#)
        );
        assert_eq!(json_string_field(json, "workspace_root"), None);
    }

    #[test]
    fn finds_packages_by_exact_name() {
        let ws = Workspace {
            root: PathBuf::from("/w"),
            target_dir: PathBuf::from("/w/target"),
            cargo: "cargo".into(),
            metadata: r#"{"packages":[{"name":"gpu-sim-inspect","version":"0.1.0"}]}"#.into(),
        };
        assert!(ws.has_package("gpu-sim-inspect"));
        assert!(!ws.has_package("gpu-sim"));
    }
}
