//! The receiving end of `--console-socket` (and `--pidfd-socket`): the runtime connects to this
//! unix socket and sends the pty master (a pidfd) with SCM_RIGHTS.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::proc::poll_readable;
use crate::tmp::TempDir;

pub struct ConsoleSocket {
    dir: TempDir,
    listener: UnixListener,
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = TempDir::new("console");
        let listener =
            UnixListener::bind(dir.path().join("console.sock")).expect("bind console socket");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        ConsoleSocket { dir, listener }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("console.sock")
    }

    /// Accepts the runtime's connection and returns the fd it sent (the pty master), waiting
    /// at most `timeout`. The runtime may already have exited: its message waits in the queue.
    #[track_caller]
    pub fn receive(&self, timeout: Duration) -> OwnedFd {
        self.receive_named(timeout).1
    }

    /// Like [`ConsoleSocket::receive`], with the message that came with the fd (runc: the
    /// pty's name for a console, "standard" or "setns" for `--pidfd-socket`).
    #[track_caller]
    pub fn receive_named(&self, timeout: Duration) -> (String, OwnedFd) {
        assert!(
            poll_readable(&self.listener, timeout),
            "nobody connected to the console socket within {timeout:?}"
        );
        let (stream, _) = self.listener.accept().expect("accept console connection");
        assert!(
            poll_readable(&stream, timeout),
            "nothing sent on the console socket within {timeout:?}"
        );
        let mut data = [0u8; 4096];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // Room for one cmsg carrying one fd (u64s keep the buffer aligned for cmsghdr).
        let mut cbuf = [0u64; 8];
        // SAFETY: zeroed msghdr is a valid "empty" value; fields set below.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&cbuf);
        // SAFETY: msg points at live buffers of the stated sizes.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        assert!(n >= 0, "recvmsg: {}", io::Error::last_os_error());
        // SAFETY: walking the control buffer that recvmsg filled, with the libc macros.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            assert!(!cmsg.is_null(), "console socket message carried no fd");
            assert_eq!((*cmsg).cmsg_level, libc::SOL_SOCKET);
            assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32);
            let name = String::from_utf8_lossy(&data[..n as usize]).into_owned();
            (name, OwnedFd::from_raw_fd(fd))
        }
    }
}

/// Reads from a pty master until `needle` has been seen (returns everything read) or
/// `timeout` passes (panics). EIO means the container side closed: stop there.
#[track_caller]
pub fn read_until(master: &OwnedFd, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    loop {
        if String::from_utf8_lossy(&got).contains(needle) {
            return String::from_utf8_lossy(&got).into_owned();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            poll_readable(master, left),
            "{needle:?} not read from the pty within {timeout:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut chunk = [0u8; 4096];
        // SAFETY: reading into a local buffer of the given size.
        let n = unsafe { libc::read(master.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if n <= 0 {
            panic!(
                "pty closed before {needle:?} was read ({}); got {:?}",
                io::Error::last_os_error(),
                String::from_utf8_lossy(&got)
            );
        }
        got.extend_from_slice(&chunk[..n as usize]);
    }
}
