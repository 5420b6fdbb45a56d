//! `run` in the foreground with `process.terminal` and no --console-socket: like runc, husk
//! takes the pty master itself and relays it to its own stdio, with its terminal in raw mode
//! and window size changes passed on.

use crate::error::{Context, Error, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Where a process's terminal goes: the caller's --console-socket (connected here, where the
/// path still means the host's), or, in the foreground without one, a pair whose other end
/// husk keeps to relay the pty. Returns (the process's end, husk's end).
pub fn console_ends(
    socket: Option<&std::path::Path>,
    terminal: bool,
    foreground: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match socket {
        Some(_) if !terminal => Err(Error::msg(
            "cannot use console socket if runc will not detach or allocate tty",
        )),
        Some(p) => {
            let s = nix::sys::socket::UnixAddr::new(p)
                .and_then(|a| crate::util::connect_unix(&a))
                .with_ctx(|| format!("--console-socket: connect {}", p.display()))?;
            Ok((Some(s), None))
        }
        None if terminal && foreground => {
            let (ours, theirs) = crate::sync::pair()?;
            Ok((Some(theirs.fd), Some(ours.fd)))
        }
        None if terminal => Err(Error::msg(
            "cannot allocate tty if runc will detach without setting console socket",
        )),
        None => Ok((None, None)),
    }
}

/// Receives the pty master the init sends over the console socket.
pub fn recv_master(sock: &OwnedFd) -> Result<OwnedFd> {
    let mut name = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx("receive console")?;
    for c in msg.cmsgs().ctx("receive console")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::msg("console: no pty master received"))
}

/// Our terminal in raw mode until dropped; nothing happens when stdin is not a terminal.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // Restoring is best effort: the terminal may be gone.
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Copies our terminal's window size to the pty.
pub fn copy_winsize(master: BorrowedFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write one winsize struct; a failure (stdin is not
    // a terminal) leaves the pty's size as it is.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Moves what is readable on `from` to `to`; false once `from` has closed (EOF or EIO, which
/// a pty master reports when the last slave is closed).
pub fn pump(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(nix::errno::Errno::EIO) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => true,
        Err(_) => false,
    }
}
