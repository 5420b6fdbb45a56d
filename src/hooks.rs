//! OCI hooks: each runs with the container's state JSON on stdin, its own args and env, and an
//! optional timeout after which it is killed and the hook fails.

use crate::error::{Context, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run_hooks(kind: &str, hooks: Option<&Vec<Hook>>, state_json: &str) -> Result<()> {
    for (i, hook) in hooks.into_iter().flatten().enumerate() {
        run_hook(hook, state_json)
            .map_err(|e| Error::msg(format!("error running {kind} hook #{i}: {e}")))?;
    }
    Ok(())
}

fn run_hook(hook: &Hook, state_json: &str) -> Result<()> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().with_ctx(|| format!("{}", path.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is not an error (EPIPE).
        if let Err(e) = stdin.write_all(state_json.as_bytes()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).ctx("write state to hook");
            }
        }
    }
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
                        // Kill failing means it already exited; wait() below reaps it either way.
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(Error::msg(format!("timeout after {t} seconds")));
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
        Ok(())
    } else if let Some(sig) = status.signal() {
        Err(Error::msg(format!("signal: {sig}")))
    } else {
        Err(Error::msg(format!(
            "exit status {}",
            status.code().unwrap_or(-1)
        )))
    }
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
