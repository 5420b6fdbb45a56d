//! TCP: accept on the host address, connect to the container's, and copy each direction in its
//! own thread until its end: a direction that reaches end of file (or fails) shuts the write
//! side of the other socket, and the other direction carries on until it ends too, so that a
//! client that half-closes still gets the whole reply.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::sys::socket::{
    bind, listen as nix_listen, setsockopt, sockopt, Backlog, SockType, SockaddrStorage,
};

/// The pipe a connection starts with moves 64 KiB per splice (the kernel's default size); one
/// that fills it is a bulk transfer and gets a pipe of this size: fewer syscalls per byte, and
/// the small connections keep small pipes. 1 MiB cost less CPU still but moved less with 64
/// connections at once (notes/proxy.md).
const BULK: usize = 1 << 18;
const START: usize = 1 << 16;

pub fn listen(addr: SocketAddr) -> Result<TcpListener, (&'static str, io::Error)> {
    let fd = crate::socket_for(addr, SockType::Stream).map_err(|e| ("socket", e))?;
    // As Go's listeners: a port left in TIME_WAIT by a previous proxy can be bound again.
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| ("setsockopt", e.into()))?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )
    .map_err(|e| ("bind", e.into()))?;
    // The kernel caps the backlog at net.core.somaxconn, which is what Go asks for.
    nix_listen(&fd, Backlog::MAXALLOWABLE).map_err(|e| ("listen", e.into()))?;
    Ok(TcpListener::from(fd))
}

pub fn serve(listener: TcpListener, container: SocketAddr) -> ! {
    loop {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) => {
                match e.raw_os_error().map(Errno::from_raw) {
                    // The connection went away before it was accepted.
                    Some(Errno::ECONNABORTED | Errno::EINTR | Errno::EPROTO) => {}
                    // Out of descriptors or memory: connections wait in the backlog until some
                    // close. A short pause, or this loop would spin on the pending one.
                    Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                        eprintln!("husk-proxy: accept: {}", crate::errno_text(e));
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        eprintln!("husk-proxy: accept: {}", crate::errno_text(e));
                        std::process::exit(1);
                    }
                }
                continue;
            }
        };
        let spawned = std::thread::Builder::new()
            .stack_size(crate::STACK)
            .spawn(move || forward(client, container));
        if let Err(e) = spawned {
            // The client sees its connection closed; the proxy keeps serving the others.
            eprintln!("husk-proxy: starting a connection thread: {e}");
        }
    }
}

/// Go's defaults for its connections, which docker-proxy's peers see: no Nagle delay, and
/// keepalive probes after 15 s idle, every 15 s.
fn tune(s: &TcpStream) {
    // Best effort: each only changes timing, never what is delivered.
    let _ = s.set_nodelay(true);
    let _ = setsockopt(s, sockopt::KeepAlive, &true);
    let _ = setsockopt(s, sockopt::TcpKeepIdle, &15);
    let _ = setsockopt(s, sockopt::TcpKeepInterval, &15);
}

fn forward(client: TcpStream, container: SocketAddr) {
    let backend = match TcpStream::connect(container) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "husk-proxy: can't forward traffic to backend tcp/{container}: {}",
                crate::errno_text(e)
            );
            return;
        }
    };
    tune(&client);
    tune(&backend);
    // Scoped: both directions borrow the two sockets, which close when both have ended.
    std::thread::scope(|scope| {
        let back = std::thread::Builder::new()
            .stack_size(crate::STACK)
            .spawn_scoped(scope, || copy(&backend, &client));
        match back {
            Ok(_) => copy(&client, &backend),
            Err(e) => eprintln!("husk-proxy: starting a connection thread: {e}"),
        }
    });
}

/// Copies `from` to `to` until `from` ends, through a pipe (splice: the bytes stay in the
/// kernel), then passes the end on.
fn copy(from: &TcpStream, to: &TcpStream) {
    if let Err(e) = pump(from, to) {
        // A reset or a broken pipe is how many connections end; not worth a line each.
        if !matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::NotConnected
        ) {
            eprintln!("husk-proxy: {}", crate::errno_text(e));
        }
    }
    // Either may fail on a socket the peer already reset; the end is passed on all the same.
    let _ = from.shutdown(Shutdown::Read);
    let _ = to.shutdown(Shutdown::Write);
}

fn pump(from: &TcpStream, to: &TcpStream) -> io::Result<()> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let mut chunk = START;
    let mut grown = false;
    loop {
        let mut n = match splice(from, None, &w, None, chunk, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let full = n == chunk;
        while n > 0 {
            match splice(&r, None, to, None, n, SpliceFFlags::SPLICE_F_MOVE) {
                Ok(m) => n -= m,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if full && !grown {
            grown = true;
            // Refused past /proc/sys/fs/pipe-max-size or a user's pipe quota without
            // CAP_SYS_RESOURCE; the default pipe still works.
            if fcntl(w.as_fd(), FcntlArg::F_SETPIPE_SZ(BULK as i32)).is_ok() {
                chunk = BULK;
            }
        }
    }
}
