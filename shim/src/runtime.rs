//! The runtime binary (husk, runc, crun), driven through its runc-compatible CLI exactly as the
//! Go runc-v2 shim drives runc: `<binary> --root <root>/<ns> --log <bundle>/log.json
//! --log-format json [--systemd-cgroup] <command> ...`.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::{fd::AsFd, unix::fs::PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use containerd_shim::{
    monitor::{ExitEvent, Subject, Topic},
    synchronous::monitor::{monitor_subscribe, wait_pid, Subscription},
};
use nix::{
    errno::Errno,
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::signal::{kill, Signal},
    unistd::Pid,
};

/// The root the Go shim gives runc is /run/containerd/runc; husk's own keeps the two apart.
pub const DEFAULT_ROOT: &str = "/run/containerd/husk";
pub const DEFAULT_BINARY: &str = "husk";

#[derive(Clone, Debug)]
pub struct Runtime {
    pub binary: PathBuf,
    /// Already including the namespace, as the Go shim does.
    pub root: PathBuf,
    pub log: PathBuf,
    pub systemd_cgroup: bool,
    /// runc options' CriuPath, given to the runtime as `--criu` (go-runc does); empty: none.
    pub criu: String,
    /// How long one runtime command may take before it is killed.
    pub timeout: Duration,
}

/// The default of `timeout`, overridden by $HUSK_SHIM_RUNTIME_TIMEOUT (seconds), which the
/// shim takes from containerd's environment.
pub fn command_timeout() -> Duration {
    let secs = std::env::var("HUSK_SHIM_RUNTIME_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok());
    Duration::from_secs(secs.unwrap_or(120))
}

/// Reads `r` to its end, or until `deadline`.
fn read_until(mut r: File, out: &mut Vec<u8>, deadline: Instant) {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return,
            Err(Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The exit status of `pid` from the shim's reaper, unless `deadline` passes first.
fn wait_until(pid: i32, sub: &Subscription, deadline: Instant) -> Option<i32> {
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match sub.rx.recv_timeout(left) {
            Ok(ExitEvent {
                subject: Subject::Pid(p),
                exit_code,
            }) if p == pid => return Some(exit_code),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Looks `name` up as the Go shim does (exec.LookPath), then next to the shim binary, where a
/// package installs husk beside its shim.
pub fn find_binary(name: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    std::env::split_paths(&path)
        .chain(beside)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("runtime binary {name:?} not found in $PATH or beside the shim"))
}

impl Runtime {
    /// Runs one runtime command to its end. With `stdio`, the command (and the container process
    /// it forks, which inherits them) gets those files; without, its output is captured for the
    /// error message and returned on success.
    pub fn run(
        &self,
        what: &str,
        args: &[&str],
        stdio: Option<[File; 3]>,
    ) -> Result<String, String> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        if !self.criu.is_empty() {
            cmd.args(["--criu", &self.criu]);
        }
        cmd.args(args);
        let mut output = None;
        match stdio {
            Some([i, o, e]) => {
                cmd.stdin(i).stdout(o).stderr(e);
            }
            None => {
                let (r, w) = crate::io::cloexec_pipe().map_err(|e| format!("pipe: {e}"))?;
                let w2 = w.try_clone().map_err(|e| format!("pipe: {e}"))?;
                cmd.stdin(Stdio::null()).stdout(w).stderr(w2);
                output = Some(File::from(r));
            }
        }
        let log_start = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        // Subscribed before the spawn: the shim's reaper may reap the command before we look.
        let sub = monitor_subscribe(Topic::All).map_err(|e| e.to_string())?;
        let child = cmd
            .spawn()
            .map_err(|e| format!("OCI runtime {what} failed: {}: {e}", self.binary.display()))?;
        // The write ends of the output pipe must go before reading it to its end.
        drop(cmd);
        let deadline = Instant::now() + self.timeout;
        let pid = child.id() as i32;
        let mut out = Vec::new();
        if let Some(r) = output {
            read_until(r, &mut out, deadline);
        }
        let out = String::from_utf8_lossy(&out).into_owned();
        let Some(code) = wait_until(pid, &sub, deadline) else {
            // Its exit was not seen, so it is not reaped and its pid is still its own.
            // ESRCH would mean it ended meanwhile; its exit is on its way either way.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            wait_pid(pid, sub);
            return Err(format!(
                "OCI runtime {what} failed: {} did not finish within {}s",
                self.binary.display(),
                self.timeout.as_secs()
            ));
        };
        if code == 0 {
            return Ok(out);
        }
        let msg = self
            .last_error(log_start)
            .or_else(|| Some(out.trim().to_string()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("exit status {code}"));
        Err(format!("OCI runtime {what} failed: {msg}"))
    }

    /// The last error the runtime logged since `from`, as the Go shim reports it.
    fn last_error(&self, from: u64) -> Option<String> {
        let mut f = File::open(&self.log).ok()?;
        f.seek(SeekFrom::Start(from)).ok()?;
        let mut s = String::new();
        f.read_to_string(&mut s).ok()?;
        s.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["level"] == "error")
            .filter_map(|v| v["msg"].as_str().map(str::to_string))
            .next_back()
    }

    pub fn pids(&self, id: &str) -> Result<Vec<u32>, String> {
        let out = self.run("ps", &["ps", "--format", "json", id], None)?;
        serde_json::from_str::<Option<Vec<u32>>>(out.trim())
            .map(Option::unwrap_or_default)
            .map_err(|e| format!("OCI runtime ps failed: bad output {out:?}: {e}"))
    }
}
