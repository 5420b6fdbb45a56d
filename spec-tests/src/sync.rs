//! Synchronising with code inside a container without sleeping: fifos in a shared directory.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::proc::poll_readable;

/// Default bound for waiting on something a container does.
pub const WAIT: Duration = Duration::from_secs(20);

/// Makes a fifo (mode 0666) at `path`.
pub fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o666) };
    assert_eq!(
        r,
        0,
        "mkfifo {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
    // mkfifo applies our umask; the container may run as another user.
    // SAFETY: valid path.
    let r = unsafe { libc::chmod(c.as_ptr(), 0o666) };
    assert_eq!(
        r,
        0,
        "chmod {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
}

/// A fifo that the container writes lines into (e.g. `echo ready > /shared/fifo`) and the
/// test reads with a deadline. The host side is opened O_RDWR so that neither side blocks on
/// open and the reader never sees EOF between writers.
pub struct Fifo {
    path: PathBuf,
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Fifo {
    pub fn new(path: &Path) -> Fifo {
        mkfifo(path);
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path; flags are plain ints.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0, "open fifo: {}", io::Error::last_os_error());
        Fifo {
            path: path.to_owned(),
            // SAFETY: fresh fd we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            buf: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next line written into the fifo (without the newline); panics after `timeout`.
    #[track_caller]
    pub fn read_line(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                poll_readable(&self.fd, left),
                "no line on {} within {timeout:?} (have {:?})",
                self.path.display(),
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 4096];
            // SAFETY: reading into a local buffer of the given size.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "read fifo: {e}");
                continue;
            }
            self.buf.extend_from_slice(&chunk[..n as usize]);
        }
    }

    /// Writes `line` and a newline for the container to read (`read x < /shared/go`). Never
    /// blocks: a short line fits the empty pipe, and it waits there, held by our open end,
    /// until the container reads it. Not for a fifo the test also reads lines from.
    #[track_caller]
    pub fn write_line(&self, line: &str) {
        let data = format!("{line}\n");
        // SAFETY: writing from a live buffer of the given size.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        assert_eq!(
            n,
            data.len() as isize,
            "write {}: {}",
            self.path.display(),
            io::Error::last_os_error()
        );
    }

    /// Reads a line and asserts it equals `want`.
    #[track_caller]
    pub fn expect_line(&mut self, want: &str) {
        let got = self.read_line(WAIT);
        assert_eq!(got, want, "line read from {}", self.path.display());
    }
}

/// Waits (bounded, polling every 10 ms: a file has no readiness to wait on) until the stdout
/// file of a detached container's `create` holds exactly `want`.
#[track_caller]
pub fn wait_for_output(out: &crate::runtime::Output, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = out.stdout_now();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline && want.starts_with(&got),
            "container stdout is {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
