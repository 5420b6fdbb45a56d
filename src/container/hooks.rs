//! OCI hooks: each runs with the container's state JSON on stdin, its own args and env (or,
//! without env, husk's), and an optional timeout after which it is killed and fails. Its output
//! is collected and, when it fails, reported in the error on one line, as runc does.

use crate::error::{Context, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run_hooks(hooks: Option<&Vec<Hook>>, state_json: &str) -> Result<()> {
    for (i, hook) in hooks.into_iter().flatten().enumerate() {
        run_hook(hook, state_json)
            .map_err(|e| Error::msg(format!("error running hook #{i}: {e}")))?;
    }
    Ok(())
}

fn run_hook(hook: &Hook, state_json: &str) -> Result<()> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(argv0).args(rest);
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    // Files, not pipes: a hook that writes a lot cannot block on us, nor can one that never
    // reads its state keep us from timing it out.
    let mut input = tempfile()?;
    input
        .write_all(state_json.as_bytes())
        .and_then(|()| input.seek(std::io::SeekFrom::Start(0)))
        .ctx("write state for hook")?;
    let mut out = tempfile()?;
    let mut err = tempfile()?;
    cmd.stdin(Stdio::from(input))
        .stdout(Stdio::from(out.try_clone().ctx("dup hook stdout")?))
        .stderr(Stdio::from(err.try_clone().ctx("dup hook stderr")?));
    let mut child = cmd
        .spawn()
        .with_ctx(|| format!("fork/exec {}", path.display()))?;
    let status = match hook.timeout() {
        Some(t) if t > 0 => {
            let pidfd = pidfd_open(child.id() as i32)?;
            let deadline = Instant::now() + Duration::from_secs(t as u64);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, ms) {
                    Ok(0) => {
                        // Kill failing means it already exited; wait() reaps it either way.
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(Error::msg(format!(
                            "hook ran past specified timeout of {t}.0s"
                        )));
                    }
                    Ok(_) => break child.wait().ctx("wait for hook")?,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e).ctx("poll hook"),
                }
            }
        }
        _ => child.wait().ctx("wait for hook")?,
    };
    if status.success() {
        return Ok(());
    }
    let why = match status.signal() {
        Some(sig) => format!("signal: {}", signal_name(sig)),
        None => format!("exit status {}", status.code().unwrap_or(-1)),
    };
    Err(Error::msg(format!(
        "{why}, stdout: {}, stderr: {}",
        read_all(&mut out).escape_debug(),
        read_all(&mut err).escape_debug()
    )))
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().trim_start_matches("SIG").to_lowercase())
        .unwrap_or_else(|_| sig.to_string())
}

/// An anonymous file for a hook's output.
fn tempfile() -> Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(c"husk-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .ctx("memfd_create")?;
    Ok(std::fs::File::from(fd))
}

fn read_all(f: &mut std::fs::File) -> String {
    let mut s = String::new();
    // What the hook printed only decorates the error; unreadable output is left out.
    if f.seek(std::io::SeekFrom::Start(0)).is_ok() {
        let _ = f.read_to_string(&mut s);
    }
    s
}

pub fn pidfd_open(pid: i32) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last()).with_ctx(|| format!("pidfd_open {pid}"));
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}
