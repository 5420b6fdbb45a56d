//! husk-proxy: publishes one container port on the host, docker-proxy's counterpart, one process
//! per port. The parent learns the outcome of the start through fd 3, as docker-proxy's does:
//! "0\n" once the host port is bound, or "1\n<error>" and a non-zero exit.
//!
//! TCP: two threads per connection, one per direction, each a blocking splice loop through a
//! pipe (the bytes stay in the kernel). UDP: one thread, an epoll loop over the host socket and
//! every flow's. A third thread waits for SIGTERM/SIGINT. Why, with the numbers against an
//! epoll loop for TCP and against docker-proxy: notes/proxy.md.

mod flags;
mod tcp;
mod udp;

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::process::exit;

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{SigSet, Signal};

/// The status pipe docker's portmapper hands its proxy.
const STATUS_FD: RawFd = 3;

/// Small stacks: the threads only loop over a few syscalls; buffers live on the heap.
pub const STACK: usize = 64 * 1024;

fn main() {
    // Taken before anything else opens a descriptor that could land on 3.
    let status = status_pipe();
    // Not UTF-8 is no reason to panic: such a value is refused like any other bad one.
    let args = std::env::args_os().skip(1);
    let config = match flags::parse(args.map(|a| a.to_string_lossy().into_owned())) {
        Ok(c) => c,
        Err(flags::Error::Help) => {
            eprint!("{}", flags::USAGE);
            exit(0)
        }
        Err(e @ flags::Error::Usage(_)) => fail(status, &e.to_string(), 2),
        Err(e) => fail(status, &e.to_string(), 1),
    };
    // Go raises the soft limit to the hard one at startup; docker-proxy's connections count on it.
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        // Best effort: the soft limit only bounds how many connections are served at once.
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    // Blocked before any thread starts, so that only the waiter below receives them.
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGTERM);
    stop.add(Signal::SIGINT);
    if let Err(e) = stop.thread_block() {
        fail(status, &format!("blocking SIGTERM: {e}"), 1);
    }

    let proxy = match config.proto {
        flags::Proto::Tcp => tcp::listen(config.host).map(Proxy::Tcp),
        flags::Proto::Udp => udp::listen(config.host).map(Proxy::Udp),
    };
    let proxy = match proxy {
        Ok(p) => p,
        Err((op, e)) => {
            let proto = match config.proto {
                flags::Proto::Tcp => "tcp",
                flags::Proto::Udp => "udp",
            };
            let family = if config.host.is_ipv4() { 4 } else { 6 };
            fail(
                status,
                &format!(
                    "listen {proto}{family} {} (-host-ip {} -host-port {}): {op}: {}",
                    config.host,
                    config.host.ip(),
                    config.host.port(),
                    errno_text(e)
                ),
                1,
            )
        }
    };

    if let Err(e) = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            // Either signal ends the proxy with status 0, as docker-proxy's; the kernel closes
            // the listener and every connection.
            let _ = stop.wait();
            exit(0)
        })
    {
        fail(status, &format!("starting the signal thread: {e}"), 1);
    }
    if let Some(mut f) = status {
        // The parent may have gone; the proxy serves all the same, as docker-proxy's does.
        let _ = f.write_all(b"0\n");
    }
    match proxy {
        Proxy::Tcp(l) => tcp::serve(l, config.container),
        Proxy::Udp(s) => udp::serve(s, config.container),
    }
}

enum Proxy {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

fn status_pipe() -> Option<File> {
    fcntl(
        unsafe { std::os::fd::BorrowedFd::borrow_raw(STATUS_FD) },
        FcntlArg::F_GETFD,
    )
    .ok()?;
    // SAFETY: fd 3 is open and nothing else in this process owns it.
    let f = unsafe { File::from_raw_fd(STATUS_FD) };
    // Not passed on: nothing is executed, but a descriptor left open would keep the parent waiting.
    let _ = fcntl(&f, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    Some(f)
}

/// Reports a failed start on stderr and on the status pipe, then exits.
fn fail(status: Option<File>, msg: &str, code: i32) -> ! {
    eprintln!("husk-proxy: {msg}");
    if let Some(mut f) = status {
        // Nothing more can be done if the parent closed its end.
        let _ = write!(f, "1\n{msg}");
    }
    exit(code)
}

/// An OS error as Go words it: the lower-case strerror text, without "(os error N)".
pub fn errno_text(e: std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let s = nix::errno::Errno::from_raw(n).desc();
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_lowercase().chain(c).collect())
                .unwrap_or_default()
        }
        None => e.to_string(),
    }
}

/// A socket of `addr`'s family; IPv6 ones only IPv6, as Go binds a "tcp6"/"udp6" address.
pub fn socket_for(
    addr: SocketAddr,
    ty: nix::sys::socket::SockType,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{setsockopt, socket, sockopt, AddressFamily, SockFlag};
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)?;
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    Ok(fd)
}
