//! SCMP_ACT_NOTIFY: the way of the filter's listener fd from the container's process, which
//! loads the filter, to the seccomp agent at `linux.seccomp.listenerPath`. As in runc, the
//! process only writes the fd's number to its parent and waits; the parent takes the fd with
//! pidfd_getfd(2) and sends it to the agent with the container process state. Until the agent
//! has it, a notified syscall in the process would wait forever: write(2) is the one syscall the
//! process makes in between, and [`check`] refuses NOTIFY for it.

use crate::error::{Context, Error, Result};
use crate::oci_state::OciState;
use crate::sync::{Channel, Msg};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use serde::Serialize;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// runc's rules for NOTIFY, checked before anything is set up. A listenerPath without NOTIFY
/// rules is ignored (runtime-spec; runc too).
pub fn check(s: &LinuxSeccomp) -> Result<()> {
    let notify = LinuxSeccompAction::ScmpActNotify;
    if s.default_action() == notify {
        return Err(Error::msg(
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action",
        ));
    }
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        if call.action() == notify && call.names().iter().any(|n| n == "write") {
            return Err(Error::msg(format!(
                "linux.seccomp.syscalls[{i}].names: SCMP_ACT_NOTIFY cannot be used for the write \
                 syscall"
            )));
        }
    }
    if used(s)
        && s.listener_path()
            .as_ref()
            .is_none_or(|p| p.as_os_str().is_empty())
    {
        return Err(Error::msg("linux.seccomp: listenerPath is not set"));
    }
    Ok(())
}

/// Whether a rule has the NOTIFY action.
pub fn used(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify)
}

/// In the container's process: loads the filter and, if it has a listener, hands that to the
/// parent and closes it once the parent holds a copy.
pub fn load(s: &LinuxSeccomp, chan: &Channel) -> Result<()> {
    if let Some(fd) = crate::init::seccomp::load(s)? {
        chan.send(&Msg::Seccomp(fd.as_raw_fd()))?;
        chan.wait_go()?;
    }
    Ok(())
}

/// runtime-spec's "container process state", sent to the agent with the listener fd.
#[derive(Serialize)]
struct ProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: OciState<'a>,
}

/// In the parent: takes fd number `fd` of process `pid` (which the filter applies to) and sends
/// it to the agent with `state`. A relative listenerPath is taken from `dir` (create: the
/// bundle, where runc runs; exec: our working directory).
pub fn deliver(s: &LinuxSeccomp, dir: &Path, pid: i32, fd: i32, state: OciState) -> Result<()> {
    let path = s
        .listener_path()
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Error::msg("linux.seccomp: listenerPath is not set"))?;
    let listener = take(pid, fd)?;
    let msg = ProcessState {
        oci_version: state.oci_version,
        fds: ["seccompFd"],
        pid,
        metadata: s.listener_metadata().as_deref().unwrap_or(""),
        state,
    };
    let payload = serde_json::to_vec(&msg)
        .map_err(|e| Error::msg(format!("cannot marshal seccomp state: {e}")))?;
    send(path, dir, &listener, &payload)
}

/// Our copy of another process's fd, which keeps its own until we say go.
fn take(pid: i32, fd: i32) -> Result<OwnedFd> {
    let pidfd = crate::util::pidfd::pidfd_open(pid)?;
    // SAFETY: pidfd_getfd takes a pidfd, an fd number and flags; it returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(nix::errno::Errno::last())
            .with_ctx(|| format!("pidfd_getfd: fd {fd} of process {pid}"));
    }
    // SAFETY: the kernel just made this fd (close-on-exec) for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// One connection, one message with the fd attached, closed after (runtime-spec).
fn send(path: &Path, dir: &Path, listener: &OwnedFd, payload: &[u8]) -> Result<()> {
    // As in Go (runc): a leading '@' names a socket in the abstract namespace.
    let addr = match path.as_os_str().as_bytes().strip_prefix(b"@") {
        Some(name) => UnixAddr::new_abstract(name),
        None => UnixAddr::new(&dir.join(path)),
    }
    .with_ctx(|| format!("linux.seccomp.listenerPath: {}", path.display()))?;
    let sock = crate::util::connect_unix(&addr).with_ctx(|| {
        format!(
            "failed to connect with seccomp agent specified in the seccomp profile: dial unix \
             {}: connect",
            path.display()
        )
    })?;
    let fds = [listener.as_raw_fd()];
    let sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .with_ctx(|| format!("cannot send seccomp fd to {}", path.display()))?;
    if sent != payload.len() {
        return Err(Error::msg(format!(
            "cannot send seccomp fd to {}: short write",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        let s: LinuxSeccomp = serde_json::from_str(json).expect("valid LinuxSeccomp");
        check(&s).unwrap_err().to_string()
    }

    #[test]
    fn runc_rules() {
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}"#),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action"
        );
        assert_eq!(
            err(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}"#
            ),
            "linux.seccomp.syscalls[1].names: SCMP_ACT_NOTIFY cannot be used for the write \
             syscall"
        );
        for path in [r#""#, r#","listenerPath": """#] {
            assert_eq!(
                err(&format!(
                    r#"{{"defaultAction": "SCMP_ACT_ALLOW"{path}, "syscalls": [
                    {{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}}]}}"#
                )),
                "linux.seccomp: listenerPath is not set"
            );
        }
        let ok: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a", "syscalls": [
                {"names": ["write"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        check(&ok).expect("a listenerPath without NOTIFY rules is ignored");
    }

    #[test]
    fn process_state_has_runc_shape() {
        let msg = ProcessState {
            oci_version: "1.0.2-dev",
            fds: ["seccompFd"],
            pid: 7,
            metadata: "",
            state: OciState {
                oci_version: "1.0.2-dev",
                id: "c",
                status: crate::oci_state::Status::Creating,
                pid: Some(7),
                bundle: Path::new("/b"),
                annotations: Default::default(),
            },
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"ociVersion":"1.0.2-dev","fds":["seccompFd"],"pid":7,"state":{"ociVersion":"1.0.2-dev","id":"c","status":"creating","pid":7,"bundle":"/b"}}"#
        );
    }
}
