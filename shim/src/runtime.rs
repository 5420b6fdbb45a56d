//! The runtime binary (husk, runc, crun), driven through its runc-compatible CLI exactly as the
//! Go runc-v2 shim drives runc: `<binary> --root <root>/<ns> --log <bundle>/log.json
//! --log-format json [--systemd-cgroup] <command> ...`.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use containerd_shim::{
    monitor::Topic,
    synchronous::monitor::{monitor_subscribe, wait_pid},
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
        cmd.args(args);
        let mut output = None;
        match stdio {
            Some([i, o, e]) => {
                cmd.stdin(i).stdout(o).stderr(e);
            }
            None => {
                let (r, w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
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
        let mut out = String::new();
        if let Some(mut r) = output {
            // A read error leaves the output short; the exit status below still decides.
            let _ = r.read_to_string(&mut out);
        }
        let code = wait_pid(child.id() as i32, sub);
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
