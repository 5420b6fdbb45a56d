//! Driving the runtime binary under test: one `--root` per `Runtime`, output captured in files.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::proc;
use crate::tmp::TempDir;

/// How long any single runtime command may take before the test fails (a bound, not a sleep).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test: `$RUNTIME`, else the workspace's release husk if built, else debug.
pub fn runtime_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RUNTIME") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("spec-tests lives inside the workspace");
    let release = ws.join("target/x86_64-unknown-linux-gnu/release/husk");
    if release.exists() {
        release
    } else {
        ws.join("target/x86_64-unknown-linux-gnu/debug/husk")
    }
}

/// The first line the runtime under test prints for `--version`, asked once per test process.
fn version_line() -> &'static str {
    static LINE: OnceLock<String> = OnceLock::new();
    LINE.get_or_init(|| {
        let bin = runtime_binary();
        let out = Command::new(&bin)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {} --version: {e}", bin.display()));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

/// True when the runtime under test is runc 1.1.x. A few tests pin runc 1.1 behaviour that
/// runc 1.2 and the runtime-spec changed; they expect the 1.1 behaviour only then.
pub fn is_runc_1_1() -> bool {
    version_line().starts_with("runc version 1.1.")
}

/// True when the runtime under test is husk, for the tests of husk's own test hooks.
pub fn is_husk() -> bool {
    version_line().starts_with("husk version ")
}

/// What one runtime invocation did.
pub struct Output {
    pub argv: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Files that received the runtime's stdout/stderr. A detached container with
    /// `terminal: false` inherits them, so its later output can be read here too.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Output {
    /// Exit code; 128+signal if the runtime itself was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Asserts a non-zero exit and returns stderr.
    #[track_caller]
    pub fn assert_failure(&self) -> &str {
        assert!(!self.success(), "expected failure:\n{self}");
        &self.stderr
    }

    /// Re-reads the stdout file (a detached container may have written to it since).
    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).expect("read stdout file")
    }

    /// Re-reads the stderr file.
    pub fn stderr_now(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).expect("read stderr file")
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\nexit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.argv.join(" "),
            self.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// A runtime binary with its own state root (a fresh temp dir per `Runtime`, so tests never
/// touch /run/husk or /run/runc, nor each other's containers).
pub struct Runtime {
    bin: PathBuf,
    dir: TempDir,
    seq: AtomicU32,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        proc::become_subreaper();
        let dir = TempDir::new("root");
        std::fs::create_dir(dir.path().join("io")).expect("mkdir io");
        Runtime {
            bin: runtime_binary(),
            dir,
            seq: AtomicU32::new(0),
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` passed to every command. Not created beforehand: the runtime creates it,
    /// as containerd expects.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A command for `bin --root <root> args...`; run it with [`Runtime::output`].
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root()).args(args);
        self.mark(&mut c);
        c
    }

    /// Marks `cmd` as this runtime's: every process it starts without a new environment (its
    /// forks, an init before its execve, hooks) carries the mark, which the leftover check
    /// looks for (see [`crate::leftovers::marked`]).
    pub fn mark(&self, cmd: &mut Command) {
        cmd.env(crate::leftovers::MARK, self.root());
    }

    /// Runs `cmd` with stdin from /dev/null and stdout/stderr into fresh files (never pipes: a
    /// detached container inherits them and would keep a pipe open forever). Bounded by
    /// [`COMMAND_TIMEOUT`].
    pub fn output(&self, cmd: Command) -> Output {
        self.output_within(cmd, COMMAND_TIMEOUT)
    }

    /// [`Runtime::output`] with another bound: the tests of hangs fail in seconds, not minutes.
    pub fn output_within(&self, mut cmd: Command, timeout: Duration) -> Output {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let io = self.dir.path().join("io");
        let stdout_path = io.join(format!("{n}.out"));
        let stderr_path = io.join(format!("{n}.err"));
        self.mark(&mut cmd);
        let argv: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("create stdout file"))
            .stderr(File::create(&stderr_path).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        let pid = child.id() as i32;
        if !proc::wait_exit(pid, timeout) {
            // Bounded: a hung runtime fails the test instead of hanging the suite.
            child.kill().expect("kill hung runtime");
            child.wait().expect("wait killed runtime");
            panic!("{argv:?} did not finish within {timeout:?}");
        }
        let status = child.wait().expect("wait runtime");
        Output {
            argv,
            status,
            stdout: std::fs::read_to_string(&stdout_path).expect("read stdout"),
            stderr: std::fs::read_to_string(&stderr_path).expect("read stderr"),
            stdout_path,
            stderr_path,
        }
    }

    /// `bin --root <root> args...`
    pub fn run_args<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.output(self.command(args))
    }

    pub fn create(&self, bundle: &Path, id: &str) -> Output {
        self.run_args(&[
            OsStr::new("create"),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new(id),
        ])
    }

    pub fn start(&self, id: &str) -> Output {
        self.run_args(&["start", id])
    }

    pub fn state(&self, id: &str) -> Output {
        self.run_args(&["state", id])
    }

    /// `state`, asserted to succeed, parsed.
    #[track_caller]
    pub fn state_json(&self, id: &str) -> Value {
        let out = self.state(id);
        out.assert_success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}):\n{out}"))
    }

    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.run_args(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Output {
        self.run_args(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Output {
        self.run_args(&["delete", "--force", id])
    }

    /// Foreground `run`: the runtime waits for the container and exits with its status.
    pub fn run(&self, bundle: &Path, id: &str) -> Output {
        self.run_args(&[
            OsStr::new("run"),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new(id),
        ])
    }

    pub fn run_detached(&self, bundle: &Path, id: &str) -> Output {
        self.run_args(&[
            OsStr::new("run"),
            OsStr::new("--detach"),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new(id),
        ])
    }

    /// `exec <id> args...` in the foreground.
    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        let mut a = vec!["exec", id];
        a.extend_from_slice(args);
        self.run_args(&a)
    }

    pub fn list(&self, extra: &[&str]) -> Output {
        let mut a = vec!["list"];
        a.extend_from_slice(extra);
        self.run_args(&a)
    }
}
