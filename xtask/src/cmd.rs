//! Running other programs: [`Cmd`] prints what it runs, inherits stdout and stderr, and turns a
//! failure into an [`Error`] that names the command and its exit status.
//!
//! Every child gets the same base environment: stdin is closed (CI has none, and nothing we run may
//! prompt), and `LD_LIBRARY_PATH` is the one the user had *before* `cargo run` prepended xtask's own
//! target and toolchain directories to it (see [`inherited_library_path`]). Commands that need the GPU
//! simulator prepend its folder explicitly.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The variable the dynamic loader searches first on Linux.
pub const LIBRARY_PATH_VAR: &str = "LD_LIBRARY_PATH";

/// An error of xtask: a message meant for humans, printed once at the end.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The result type of everything in xtask.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// A command line to run: program, arguments, working directory and environment changes.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    /// Variables set (`Some`) or removed (`None`) on top of the base environment, in order.
    env: Vec<(OsString, Option<OsString>)>,
}

impl Cmd {
    /// A command running `program` (a path, or a name looked up on `PATH`).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Runs the command in `dir` instead of xtask's working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable for the command (shown when the command is printed).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Puts `dir` first on the loader's search path, before the user's own `LD_LIBRARY_PATH`.
    pub fn prepend_library_path(self, dir: &Path) -> Self {
        let mut dirs = vec![dir.to_owned()];
        if let Some(inherited) = inherited_library_path() {
            dirs.extend(std::env::split_paths(inherited));
        }
        let joined = std::env::join_paths(dirs).unwrap_or_else(|_| dir.as_os_str().to_owned());
        self.env(LIBRARY_PATH_VAR, joined)
    }

    /// Prints the command line, runs it with inherited stdout/stderr and waits for it.
    ///
    /// Fails with an error naming the command and its exit status (or why it could not start).
    pub fn run(&self) -> Result {
        match &self.cwd {
            Some(dir) if std::env::current_dir().ok().as_ref() != Some(dir) => {
                eprintln!("$ {self}    (in {})", dir.display());
            }
            _ => eprintln!("$ {self}"),
        }
        let status = self
            .command()
            .stdin(Stdio::null())
            .status()
            .map_err(|err| self.spawn_error(&err))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(format!("`{self}` failed: {status}")))
        }
    }

    /// Runs the command quietly and returns its stdout: for queries such as
    /// `rustup toolchain list`. On failure the error includes what the command wrote to stderr.
    pub fn read(&self) -> Result<String> {
        let output = self
            .command()
            .stdin(Stdio::null())
            .output()
            .map_err(|err| self.spawn_error(&err))?;
        if output.status.success() {
            String::from_utf8(output.stdout)
                .map_err(|_| Error::new(format!("`{self}` printed something that is not UTF-8")))
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(Error::new(format!(
                "`{self}` failed: {}\n{}",
                output.status,
                stderr.trim_end()
            )))
        }
    }

    /// Runs the command quietly and returns what it wrote to stderr: for tools that report
    /// there, such as valgrind's summary. Fails as [`Cmd::read`] does.
    pub fn read_stderr(&self) -> Result<String> {
        let output = self
            .command()
            .stdin(Stdio::null())
            .output()
            .map_err(|err| self.spawn_error(&err))?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            Ok(stderr)
        } else {
            Err(Error::new(format!(
                "`{self}` failed: {}\n{}",
                output.status,
                stderr.trim_end()
            )))
        }
    }

    /// Runs the command with all output discarded and tells whether it exited successfully: for
    /// probes such as "is `cargo fuzz` installed?".
    /// Runs the command, then prints what it printed; returns whether it succeeded and its
    /// standard output and error, joined (for callers that read test results).
    pub fn run_capturing(&self) -> Result<(bool, String)> {
        eprintln!("$ {self}");
        let output = self
            .command()
            .stdin(Stdio::null())
            .output()
            .map_err(|err| self.spawn_error(&err))?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        eprint!("{text}");
        Ok((output.status.success(), text))
    }

    pub fn probe(&self) -> bool {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        match inherited_library_path() {
            Some(path) => command.env(LIBRARY_PATH_VAR, path),
            None => command.env_remove(LIBRARY_PATH_VAR),
        };
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
    }

    fn spawn_error(&self, err: &std::io::Error) -> Error {
        let hint = if err.kind() == std::io::ErrorKind::NotFound {
            " (is it installed and on PATH?)"
        } else {
            ""
        };
        Error::new(format!("could not start `{self}`: {err}{hint}"))
    }
}

/// Shows the command as a shell line: `VAR=value program args`. The program is shown by its file
/// name (`cargo`, not the toolchain's full path in `$CARGO`); the working directory is not shown.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.env {
            if let Some(value) = value {
                write!(f, "{}={} ", key.to_string_lossy(), quote(value))?;
            }
        }
        let program = Path::new(&self.program)
            .file_name()
            .unwrap_or(&self.program);
        f.write_str(&quote(program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// Quotes a word for display the way a POSIX shell would need it.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The user's `LD_LIBRARY_PATH`, without the directories `cargo run` prepended to it for xtask.
///
/// `cargo run` puts xtask's own output directory (`<target>/debug`, `<target>/debug/deps`) and the
/// running toolchain's library directories in front of the user's value. Children must not inherit
/// those: a nightly `cargo miri` would search the stable toolchain's libraries first, and
/// `test-gpu` against the real driver must see the user's loader path unchanged. `None` when
/// nothing is left.
pub fn inherited_library_path() -> Option<&'static OsStr> {
    static INHERITED: OnceLock<Option<OsString>> = OnceLock::new();
    INHERITED
        .get_or_init(|| {
            let current = std::env::var_os(LIBRARY_PATH_VAR)?;
            let added_by_cargo = cargo_run_library_dirs();
            let kept: Vec<PathBuf> = std::env::split_paths(&current)
                .filter(|dir| !dir.as_os_str().is_empty())
                .filter(|dir| !added_by_cargo.iter().any(|added| dir.starts_with(added)))
                .collect();
            if kept.is_empty() {
                None
            } else {
                std::env::join_paths(kept).ok()
            }
        })
        .as_deref()
}

/// The directories under which `cargo run` adds loader paths: the directory of the running xtask
/// binary (`<target>/debug`) and the sysroot of the toolchain that runs it (`$CARGO/../..`).
fn cargo_run_library_dirs() -> Vec<PathBuf> {
    if std::env::var_os("CARGO").is_none() {
        // Not started by cargo: the variable is entirely the user's.
        return Vec::new();
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned));
    let sysroot = std::env::var_os("CARGO").and_then(|cargo| {
        Path::new(&cargo)
            .parent()
            .and_then(Path::parent)
            .map(Path::to_owned)
    });
    exe_dir.into_iter().chain(sysroot).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::new("/opt/rust/bin/cargo")
            .args(["fuzz", "run", "validate_tensor", "--", "-max_total_time=60"])
            .env("MIRIFLAGS", "-Zmiri-strict-provenance -Zmiri-tree-borrows")
            .current_dir("/repo/fuzz");
        assert_eq!(
            cmd.to_string(),
            "MIRIFLAGS='-Zmiri-strict-provenance -Zmiri-tree-borrows' cargo fuzz run \
             validate_tensor -- -max_total_time=60"
        );
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
    }

    #[test]
    fn failure_names_the_command_and_status() {
        let err = Cmd::new("sh").args(["-c", "exit 3"]).run().unwrap_err();
        assert_eq!(err.to_string(), "`sh -c 'exit 3'` failed: exit status: 3");
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let err = Cmd::new("xtask-no-such-program").read().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not start `xtask-no-such-program`")
        );
    }
}
