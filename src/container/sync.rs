//! The parent/child channel during container setup: a SOCK_SEQPACKET pair, so each message is
//! one datagram. The child reports its progress or the error that stopped it; the parent
//! answers when it has done its part (uid maps, cgroups, hooks).

use crate::error::{Context, Error, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::os::fd::OwnedFd;

pub struct Channel {
    pub fd: OwnedFd,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent to child: carry on.
    Go,
    /// Child (intermediate) to parent: this is the container's init.
    Pid(i32),
    /// Child to parent: the new user namespace is made; write its id maps for this pid.
    Maps(i32),
    /// Child to parent: mounts are made; run prestart and createRuntime hooks now.
    Hooks,
    /// Child to parent: take (pidfd_getfd) our seccomp listener fd, this number, for the agent.
    Seccomp(i32),
    /// Child to parent: ready to exec the user process.
    Ready,
    /// Child to parent: setup failed with this message.
    Fail(String),
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx("socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let mut buf = Vec::with_capacity(16);
        match msg {
            Msg::Go => buf.push(b'G'),
            Msg::Pid(p) => {
                buf.push(b'P');
                buf.extend_from_slice(&p.to_ne_bytes());
            }
            Msg::Maps(p) => {
                buf.push(b'M');
                buf.extend_from_slice(&p.to_ne_bytes());
            }
            Msg::Hooks => buf.push(b'H'),
            Msg::Seccomp(fd) => {
                buf.push(b'S');
                buf.extend_from_slice(&fd.to_ne_bytes());
            }
            Msg::Ready => buf.push(b'R'),
            Msg::Fail(m) => {
                buf.push(b'F');
                buf.extend_from_slice(m.as_bytes());
            }
        }
        nix::unistd::write(&self.fd, &buf).ctx("sync write")?;
        Ok(())
    }

    /// The next message, or None when the other side has closed (exited or exec'd).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = [0u8; 4096];
        let n = loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                // The peer exited with our message unread: the kernel reports that once, and
                // what it sent before exiting is still queued behind it.
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::ECONNRESET) => continue,
                r => break r.ctx("sync read")?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let int = || -> Result<i32> {
            let b: [u8; 4] = buf
                .get(1..5)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| Error::msg("sync: short message"))?;
            Ok(i32::from_ne_bytes(b))
        };
        let msg = match buf[0] {
            b'G' => Msg::Go,
            b'P' => Msg::Pid(int()?),
            b'M' => Msg::Maps(int()?),
            b'H' => Msg::Hooks,
            b'S' => Msg::Seccomp(int()?),
            b'R' => Msg::Ready,
            b'F' => Msg::Fail(String::from_utf8_lossy(&buf[1..n]).into_owned()),
            other => return Err(Error::msg(format!("sync: unknown message {other}"))),
        };
        Ok(Some(msg))
    }

    /// Waits for `Go`; anything else (or the parent's exit) is an error.
    pub fn wait_go(&self) -> Result<()> {
        match self.recv()? {
            Some(Msg::Go) => Ok(()),
            other => Err(Error::msg(format!("sync: expected go, got {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = pair().unwrap();
        for m in [
            Msg::Go,
            Msg::Pid(42),
            Msg::Maps(7),
            Msg::Hooks,
            Msg::Seccomp(5),
            Msg::Ready,
            Msg::Fail("boom: x".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
