//! `--pidfd-socket` (runc 1.2): the caller receives a pidfd of the container's init or of an
//! exec'd process over a unix socket, with SCM_RIGHTS, as a console socket receives the pty
//! master. The message names the kind of process, as runc's does: "standard" or "setns".

use crate::error::{Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub const INIT: &str = "standard";
pub const EXEC: &str = "setns";

/// Connects before anything is set up, so that a socket nobody listens on fails early.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let p = path.display();
    UnixStream::connect(path)
        .map(OwnedFd::from)
        // runc's wording, typo included.
        .with_ctx(|| format!("failed to dail {p}: dial unix {p}: connect"))
}

pub fn send(sock: &OwnedFd, pid: i32, kind: &str) -> Result<()> {
    let pidfd = crate::util::pidfd::pidfd_open(pid)?;
    let fds = [pidfd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(kind.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx("failed to send pidfd on socket")?;
    Ok(())
}
