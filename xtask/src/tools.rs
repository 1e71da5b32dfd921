//! Toolchains, targets, components, cargo subcommands and Debian packages: find what is installed, install what is
//! missing (with rustup or `cargo install`), and say clearly what could not be found.

use crate::cmd::{Cmd, Result};
use crate::workspace::Workspace;

/// Installs a Debian package with apt (non-interactive), after refreshing the package lists.
pub fn apt_install(deb: &str) -> Result {
    Cmd::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Cmd::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", deb])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
}

/// Whether rustup lists `target` as installed for the toolchain that runs xtask; adds it if not.
pub fn ensure_target(target: &str) -> Result {
    let installed = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()?;
    if installed.lines().any(|line| line.trim() == target) {
        eprintln!("rustup target `{target}` is installed");
        Ok(())
    } else {
        eprintln!("rustup target `{target}` is missing; adding it");
        Cmd::new("rustup").args(["target", "add", target]).run()
    }
}

/// The full name of an installed nightly toolchain (`nightly-x86_64-unknown-linux-gnu`, or a dated
/// one), or `None` if `rustup toolchain list` has none.
pub fn nightly_toolchain() -> Result<Option<String>> {
    let list = Cmd::new("rustup").args(["toolchain", "list"]).read()?;
    Ok(find_nightly(&list).map(str::to_owned))
}

/// The first toolchain in `rustup toolchain list` output whose line starts with `nightly`,
/// without rustup's `(default)`/`(active)` markers.
fn find_nightly(toolchain_list: &str) -> Option<&str> {
    toolchain_list
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("nightly"))
        .and_then(|line| line.split_whitespace().next())
}

/// Makes sure `toolchain` has each of `components` (for example `miri` and `rust-src`).
pub fn ensure_components(toolchain: &str, components: &[&str]) -> Result {
    let installed = Cmd::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", toolchain])
        .read()?;
    let missing = missing_components(&installed, components);
    if missing.is_empty() {
        eprintln!(
            "components {} are installed on {toolchain}",
            components.join(", ")
        );
        return Ok(());
    }
    eprintln!(
        "components {} are missing on {toolchain}; adding them",
        missing.join(", ")
    );
    Cmd::new("rustup")
        .args(["component", "add", "--toolchain", toolchain])
        .args(missing)
        .run()
}

/// The `wanted` components that `rustup component list --installed` output does not list. It
/// names host-specific components with the host triple (`miri-x86_64-unknown-linux-gnu`) and the
/// others bare (`rust-src`).
fn missing_components<'c>(installed: &str, wanted: &[&'c str]) -> Vec<&'c str> {
    wanted
        .iter()
        .copied()
        .filter(|component| {
            !installed.lines().map(str::trim).any(|line| {
                line == *component
                    || line
                        .strip_prefix(component)
                        .is_some_and(|rest| rest.starts_with('-') && is_host_triple(&rest[1..]))
            })
        })
        .collect()
}

/// `x86_64-unknown-linux-gnu`, `aarch64-apple-darwin`: an architecture and at least two more parts.
/// (Tells `miri-<triple>` from another component that merely starts with `miri-`.)
fn is_host_triple(text: &str) -> bool {
    let parts: Vec<_> = text.split('-').collect();
    parts.len() >= 3
        && [
            "x86_64",
            "aarch64",
            "i686",
            "arm",
            "riscv64",
            "powerpc64",
            "s390x",
            "loongarch64",
        ]
        .iter()
        .any(|arch| parts[0].starts_with(arch))
}

/// Makes sure `cargo <subcommand>` works (probing `cargo <subcommand> --version`), else installs
/// `crate_name` with `cargo install --locked`.
pub fn ensure_cargo_subcommand(ws: &Workspace, subcommand: &str, crate_name: &str) -> Result {
    if ws.cargo().args([subcommand, "--version"]).probe() {
        eprintln!("`cargo {subcommand}` is installed");
        return Ok(());
    }
    eprintln!("`cargo {subcommand}` is not installed; installing {crate_name}");
    ws.cargo().args(["install", crate_name, "--locked"]).run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_nightly_with_its_full_name() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-2026-05-19-x86_64-unknown-linux-gnu\n\
                    1.95.0-x86_64-unknown-linux-gnu\n";
        assert_eq!(
            find_nightly(list),
            Some("nightly-2026-05-19-x86_64-unknown-linux-gnu")
        );
        assert_eq!(
            find_nightly("nightly-x86_64-unknown-linux-gnu (default)\n"),
            Some("nightly-x86_64-unknown-linux-gnu")
        );
    }

    #[test]
    fn no_nightly_when_none_is_listed() {
        assert_eq!(
            find_nightly("stable-x86_64-unknown-linux-gnu (default)\n"),
            None
        );
        assert_eq!(find_nightly("no installed toolchains\n"), None);
    }

    #[test]
    fn missing_components_respects_host_suffixes() {
        let installed = "cargo-x86_64-unknown-linux-gnu\nmiri-x86_64-unknown-linux-gnu\nrust-src\n";
        assert!(missing_components(installed, &["miri", "rust-src"]).is_empty());
        let installed = "rust-src\nrust-std-x86_64-unknown-linux-gnu\n";
        assert_eq!(
            missing_components(installed, &["miri", "rust-src"]),
            ["miri"]
        );
        assert_eq!(
            missing_components("rust-docs-x86_64-unknown-linux-gnu\n", &["rust"]),
            ["rust"]
        );
    }
}
