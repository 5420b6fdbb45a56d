//! The parent/child channel during container setup: a SOCK_SEQPACKET pair, so each message is
//! one datagram. The child reports its progress or the error that stopped it; the parent
//! answers when it has done its part (uid maps, cgroups, hooks).

use crate::cgroups;
use crate::error::{Context, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// The most fds one SCM_RIGHTS message carries (the kernel's SCM_MAX_FD).
const FDS_PER_MESSAGE: usize = 253;

pub struct Channel {
    pub fd: OwnedFd,
    /// The process at the other end and the cgroup it is in, once known: see [`Channel::watch`].
    peer: Option<(i32, Vec<PathBuf>)>,
}

/// How long (ms) `recv` waits for a watched peer before it looks whether the peer can still
/// answer.
const CHECK_AFTER_MS: u8 = 100;

/// Why process `pid` cannot go on: stopped by a signal (SIGSTOP and the like; a ptrace stop,
/// as under strace, is not one), or frozen with one of `cgroup_paths`. None when it can.
pub fn stuck(pid: i32, cgroup_paths: &[PathBuf]) -> Option<String> {
    if process_state(pid) == Some('T') {
        return Some(format!("process {pid} is stopped"));
    }
    cgroup_paths
        .iter()
        .find_map(|d| cgroups::frozen(d).refusal())
}

/// The state letter of the process (R, S, D, T, Z, ...), or None when it is gone.
fn process_state(pid: i32) -> Option<char> {
    use procfs::FromRead;
    Some(
        procfs::process::Stat::from_file(format!("/proc/{pid}/stat"))
            .ok()?
            .state,
    )
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
    Ok((Channel { fd: a, peer: None }, Channel { fd: b, peer: None }))
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

    /// From now on, `recv` fails instead of waiting for process `pid` when it is stuck (see
    /// [`stuck`]), frozen with `cgroup_paths` included: a message from it would never come.
    pub fn watch(&mut self, pid: i32, cgroup_paths: Vec<PathBuf>) {
        self.peer = Some((pid, cgroup_paths));
    }

    /// The next message, or None when the other side has closed (exited or exec'd).
    pub fn recv(&self) -> Result<Option<Msg>> {
        if let Some((pid, paths)) = &self.peer {
            loop {
                let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(CHECK_AFTER_MS)) {
                    Ok(0) => {
                        if let Some(why) = stuck(*pid, paths) {
                            return Err(Error::msg(why));
                        }
                    }
                    Ok(_) => break,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e).ctx("sync poll"),
                }
            }
        }
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

    /// Parent to child: hands over fds (the mount sources), in as many messages as it takes.
    pub fn send_fds(&self, fds: &[OwnedFd]) -> Result<()> {
        for chunk in fds.chunks(FDS_PER_MESSAGE) {
            let raw: Vec<RawFd> = chunk.iter().map(AsRawFd::as_raw_fd).collect();
            sendmsg::<()>(
                self.fd.as_raw_fd(),
                &[IoSlice::new(b"D")],
                &[ControlMessage::ScmRights(&raw)],
                MsgFlags::empty(),
                None,
            )
            .ctx("sync sendmsg")?;
        }
        Ok(())
    }

    /// Receives `count` fds sent with [`Channel::send_fds`], close-on-exec.
    pub fn recv_fds(&self, count: usize) -> Result<Vec<OwnedFd>> {
        let mut fds = Vec::with_capacity(count);
        while fds.len() < count {
            let mut buf = [0u8; 1];
            let mut space = nix::cmsg_space!([RawFd; FDS_PER_MESSAGE]);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    r => break r.ctx("sync recvmsg")?,
                }
            };
            let (bytes, truncated) = (msg.bytes, msg.flags.contains(MsgFlags::MSG_CTRUNC));
            for c in msg.cmsgs().ctx("sync recvmsg")? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: the kernel just installed these fds for us; nothing else owns them.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            if bytes == 0 {
                return Err(Error::msg("sync: parent exited"));
            }
            if truncated || buf[0] != b'D' {
                return Err(Error::msg("sync: expected fds"));
            }
        }
        if fds.len() != count {
            return Err(Error::msg(format!(
                "sync: expected {count} fds, got {}",
                fds.len()
            )));
        }
        Ok(fds)
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

    #[test]
    fn fds_cross_in_chunks() {
        let (a, b) = pair().unwrap();
        let fds: Vec<OwnedFd> = (0..300)
            .map(|_| {
                nix::fcntl::open(
                    "/",
                    nix::fcntl::OFlag::O_PATH,
                    nix::sys::stat::Mode::empty(),
                )
                .unwrap()
            })
            .collect();
        a.send_fds(&fds).unwrap();
        let got = b.recv_fds(300).unwrap();
        assert_eq!(got.len(), 300);
        let flags = nix::fcntl::fcntl(&got[299], nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(
            flags & libc::FD_CLOEXEC,
            0,
            "received fds are close-on-exec"
        );
    }

    #[test]
    fn a_stopped_peer_is_not_waited_for() {
        use nix::sys::wait::{waitpid, WaitPidFlag};
        let (mut a, _b) = pair().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        waitpid(pid, Some(WaitPidFlag::WUNTRACED)).unwrap();
        a.watch(pid.as_raw(), vec![]);
        let e = a.recv().unwrap_err().to_string();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(e, format!("process {pid} is stopped"));
    }
}
