//! OCI hooks: each runs with the container's state JSON on stdin, its own args and env (or,
//! without env, husk's), and an optional timeout after which it is killed and fails. Its output
//! is collected and, when it fails, reported in the error on one line, as runc does.

use crate::error::{Context, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hooks` in order, each in `cwd` (or in ours): runc's hooks inherit its working
/// directory, which is the bundle in `create` and `run`, and the rootfs in the init.
pub fn run_hooks(hooks: Option<&Vec<Hook>>, state_json: &str, cwd: Option<&Path>) -> Result<()> {
    for (i, hook) in hooks.into_iter().flatten().enumerate() {
        run_hook(hook, state_json, cwd)
            .map_err(|e| Error::msg(format!("error running hook #{i}: {e}")))?;
    }
    Ok(())
}

fn run_hook(hook: &Hook, state_json: &str, cwd: Option<&Path>) -> Result<()> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
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
    let status = match (hook.timeout(), deadline(hook, Instant::now())) {
        (Some(t), Some(deadline)) => {
            let pidfd = crate::util::pidfd::pidfd_open(child.id() as i32)?;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, ms) {
                    // poll waits at most i32::MAX ms (24.8 days) at a time.
                    Ok(0) if Instant::now() < deadline => continue,
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

/// The longest hook timeout, in seconds. runc makes the seconds a Go Duration (int64
/// nanoseconds); past this the product wraps, mostly to a negative timeout that kills the hook
/// at once, sometimes to an arbitrary short one.
pub const MAX_TIMEOUT: i64 = i64::MAX / 1_000_000_000;

/// Refuses a timeout that is not positive (the spec says it MUST be) or that runc cannot
/// represent. runc starts such a hook and kills it at once, so failing `create` before anything
/// is set up refuses no config that could work, and names the field.
pub fn validate(hooks: &Hooks) -> Result<()> {
    let kinds = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            match hook.timeout() {
                Some(t) if !(1..=MAX_TIMEOUT).contains(&t) => {
                    return Err(Error::msg(format!(
                        "hooks.{kind}[{i}].timeout: {t} is not between 1 and {MAX_TIMEOUT} seconds"
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// When a hook started at `now` must have finished; None without a timeout (or, for a
/// timeout that [`validate`] refuses, one past the clock's range).
pub fn deadline(hook: &Hook, now: Instant) -> Option<Instant> {
    let secs = u64::try_from(hook.timeout()?).ok().filter(|t| *t > 0)?;
    now.checked_add(Duration::from_secs(secs))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(kind: &str, timeout: i64) -> Hooks {
        let v = serde_json::json!({kind: [{"path": "/bin/true"}, {"path": "/bin/true", "timeout": timeout}]});
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn timeouts_runc_cannot_represent_are_refused_by_name() {
        for t in [0, -1, i64::MIN, MAX_TIMEOUT + 1, i64::MAX] {
            let e = validate(&hooks("poststop", t)).unwrap_err().to_string();
            assert!(e.starts_with("hooks.poststop[1].timeout: "), "{t}: {e}");
        }
        for t in [1, MAX_TIMEOUT] {
            validate(&hooks("createRuntime", t)).unwrap();
        }
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        let h = hooks("prestart", 5);
        let [none, five] = h.prestart().as_deref().unwrap() else {
            panic!()
        };
        assert_eq!(deadline(none, now), None);
        assert_eq!(deadline(five, now), Some(now + Duration::from_secs(5)));
        let h = hooks("prestart", i64::MAX);
        assert_eq!(deadline(&h.prestart().as_ref().unwrap()[1], now), None);
        let h = hooks("prestart", MAX_TIMEOUT);
        assert!(deadline(&h.prestart().as_ref().unwrap()[1], now).is_some());
    }
}
