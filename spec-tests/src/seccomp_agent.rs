//! A seccomp agent for SCMP_ACT_NOTIFY tests: listens on the profile's `listenerPath`, takes
//! each container process state with its listener fd (SCM_RIGHTS), and answers the notified
//! syscalls with SECCOMP_IOCTL_NOTIF_RECV/SEND, as the runtime-spec's agents do.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

use serde_json::Value;

use crate::proc::poll_readable;
use crate::sync::WAIT;
use crate::tmp::TempDir;

/// How the agent answers the n-th notification (from 0) of one listener, for syscall `nr`.
pub type Policy = fn(n: usize, nr: i32) -> Reply;

/// How the agent answers one listener's notifications, given the n-th (from 0) in full (its
/// `pid` is the notifying thread's, in the agent's pid namespace). It may block: its listener's
/// notified process waits in the syscall until it returns.
pub type Handler = Box<dyn FnMut(usize, &libc::seccomp_notif) -> Reply + Send>;

#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// The syscall fails with this errno, without running.
    Errno(i32),
    /// The syscall returns 0, without running.
    Success,
    /// The syscall runs (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
}

/// What arrived on one connection.
pub struct Delivery {
    /// The container process state, parsed.
    pub state: Value,
    /// readlink of each fd received, e.g. "anon_inode:seccomp notify".
    pub fds: Vec<String>,
    /// The syscall numbers notified through this listener, as they are answered.
    pub notified: Receiver<i32>,
}

pub struct Agent {
    dir: TempDir,
    /// A second handle on the listening socket, to shut it down (which ends the accept loop).
    listener: UnixListener,
    deliveries: Receiver<Delivery>,
}

impl Agent {
    /// Listens at a fresh path; answers with `policy`, or (None) closes each listener fd at once.
    pub fn start(policy: Option<Policy>) -> Agent {
        Agent::start_with(move |_| {
            policy.map(|p| Box::new(move |n, req: &libc::seccomp_notif| p(n, req.data.nr)) as _)
        })
    }

    /// Listens at a fresh path; `handler` picks, from each container process state, the
    /// [`Handler`] of its listener, or (None) has the listener fd closed at once.
    pub fn start_with(
        mut handler: impl FnMut(&Value) -> Option<Handler> + Send + 'static,
    ) -> Agent {
        let dir = TempDir::new("agent");
        let listener = UnixListener::bind(dir.path().join("agent.sock")).expect("bind agent");
        let accepting = listener.try_clone().expect("dup agent socket");
        let (tx, deliveries) = mpsc::channel();
        std::thread::spawn(move || {
            // Ends when the Agent shuts the socket down, or when the test stops listening.
            for conn in accepting.incoming() {
                let Ok(conn) = conn else { return };
                if !take(&conn, &mut handler, &tx) {
                    return;
                }
            }
        });
        Agent {
            dir,
            listener,
            deliveries,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// The next delivery; panics if none comes within [`WAIT`].
    #[track_caller]
    pub fn next(&self) -> Delivery {
        self.deliveries
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no container process state at the agent: {e}"))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: shutdown on a socket we own; it wakes the thread blocked in accept.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

/// Reads one container process state and its fds from `conn`; serves the first fd with the
/// handler `pick` chooses, on a thread of its own. False once the test has gone.
fn take(
    conn: &UnixStream,
    pick: &mut impl FnMut(&Value) -> Option<Handler>,
    tx: &Sender<Delivery>,
) -> bool {
    let (bytes, fds) = recv_state(conn);
    let state: Value = serde_json::from_slice(&bytes).expect("container process state is JSON");
    let links = fds
        .iter()
        .map(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_else(|e| format!("readlink: {e}"))
        })
        .collect();
    let (ntx, notified) = mpsc::channel();
    let handler = pick(&state);
    let delivered = tx.send(Delivery {
        state,
        fds: links,
        notified,
    });
    if let (Some(handler), Some(fd)) = (handler, fds.into_iter().next()) {
        std::thread::spawn(move || serve(fd, handler, ntx));
    }
    delivered.is_ok()
}

/// The JSON message (one or more reads until it parses: a stream has no message boundaries,
/// and runc leaves the connection open) and the fds sent with it.
fn recv_state(conn: &UnixStream) -> (Vec<u8>, Vec<OwnedFd>) {
    let deadline = Instant::now() + WAIT;
    let mut bytes = Vec::new();
    let mut fds = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            poll_readable(conn, left),
            "incomplete container process state {:?}",
            String::from_utf8_lossy(&bytes)
        );
        let n = recvmsg(conn.as_raw_fd(), &mut bytes, &mut fds);
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(_) => return (bytes, fds),
            Err(e) if e.is_eof() && n > 0 => continue,
            Err(e) => panic!(
                "container process state {:?}: {e}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}

/// One recvmsg: appends data to `bytes` and SCM_RIGHTS fds to `fds`; returns the data length.
fn recvmsg(sock: RawFd, bytes: &mut Vec<u8>, fds: &mut Vec<OwnedFd>) -> usize {
    let mut buf = [0u8; 65536];
    // Room for a few fds: a runtime sending more than one would be a finding, not a crash.
    let mut cmsg = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: msg describes valid buffers.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", io::Error::last_os_error());
    bytes.extend_from_slice(&buf[..n as usize]);
    // SAFETY: walking the control buffer the kernel filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    n as usize
}

/// Answers notifications until no process uses the filter any more (the fd polls POLLHUP).
fn serve(fd: OwnedFd, mut handler: Handler, notified: Sender<i32>) {
    let mut n = 0;
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd; blocks until a notification or the filter's end.
        if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
            let e = io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EINTR), "poll: {e}");
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            return;
        }
        // SAFETY: the kernel requires a zeroed request; all-zero is a valid seccomp_notif.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV fills the seccomp_notif it is given.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
            match io::Error::last_os_error().raw_os_error() {
                // ENOENT: that notification went away (its syscall was interrupted by a signal,
                // as Go's preemption signals do in runc's init); others may follow.
                Some(libc::EINTR) | Some(libc::ENOENT) => continue,
                e => panic!("SECCOMP_IOCTL_NOTIF_RECV: {e:?}"),
            }
        }
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        let reply = handler(n, &req);
        n += 1;
        match reply {
            Reply::Errno(e) => resp.error = -e,
            Reply::Success => {}
            Reply::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        }
        // The test may have stopped listening; answering still matters.
        let _ = notified.send(req.data.nr);
        // SAFETY: NOTIF_SEND reads the response.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } < 0 {
            let e = io::Error::last_os_error();
            // ENOENT: the process died meanwhile (killed by the test); nothing to answer.
            assert_eq!(
                e.raw_os_error(),
                Some(libc::ENOENT),
                "SECCOMP_IOCTL_NOTIF_SEND: {e}"
            );
        }
    }
}

/// A socket at `path` that nobody accepts on: [`Listening::connected`] tells whether anyone
/// connected, without racing (a connection stays queued until accepted).
pub struct Listening(UnixListener);

impl Listening {
    pub fn at(path: &Path) -> Listening {
        let l = UnixListener::bind(path).expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        Listening(l)
    }

    pub fn connected(&self) -> bool {
        match self.0.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept: {e}"),
        }
    }
}
