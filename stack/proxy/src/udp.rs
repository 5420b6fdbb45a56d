//! UDP: a flow per client address. Each flow has its own socket connected to the container, so
//! that the container sees one peer per client and its replies can be told apart; its replies
//! go back to that client from the host socket. A flow with no datagram either way for `IDLE`
//! ends. One thread and an epoll set serve the host socket and every flow: a request and its
//! reply are handled on one CPU, which cost less than waking a thread per flow (notes/proxy.md).

use std::collections::hash_map::{Entry, HashMap};
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{bind, SockType, SockaddrStorage};

/// docker-proxy's UDPConnTrackTimeout.
const IDLE: Duration = Duration::from_secs(90);
/// How often idle flows are looked for: a flow ends between `IDLE` and `IDLE + SWEEP` idle.
const SWEEP: Duration = Duration::from_secs(5);

/// The largest UDP payload (IPv6 without jumbograms); datagrams are never cut.
const BUF: usize = 65535;

pub fn listen(addr: SocketAddr) -> Result<UdpSocket, (&'static str, io::Error)> {
    let fd = crate::socket_for(addr, SockType::Datagram).map_err(|e| ("socket", e))?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|e| ("bind", e.into()))?;
    Ok(UdpSocket::from(fd))
}

struct Flow {
    to_container: UdpSocket,
    last: Instant,
}

pub fn serve(host: UdpSocket, container: SocketAddr) -> ! {
    if let Err(e) = run(host, container) {
        eprintln!("husk-proxy: udp: {}", crate::errno_text(e));
        std::process::exit(1);
    }
    unreachable!("the loop ends only with an error")
}

fn run(host: UdpSocket, container: SocketAddr) -> io::Result<()> {
    // Non-blocking: a full send buffer drops the datagram, as the network may, and does not
    // hold up every other flow.
    host.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let host_fd = host.as_raw_fd();
    epoll.add(
        host.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, host_fd as u64),
    )?;
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    // Flow sockets by descriptor, the epoll token.
    let mut clients: HashMap<RawFd, SocketAddr> = HashMap::new();
    let mut buf = vec![0u8; BUF];
    let mut events = [EpollEvent::empty(); 64];
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        // Without flows there is nothing to expire: no wake-ups.
        let timeout = if flows.is_empty() {
            EpollTimeout::NONE
        } else {
            let ms = next_sweep
                .saturating_duration_since(Instant::now())
                .as_millis();
            EpollTimeout::try_from(ms as u32 + 1).unwrap_or(EpollTimeout::NONE)
        };
        let n = match epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        for ev in &events[..n] {
            let fd = ev.data() as RawFd;
            if fd == host_fd {
                let (len, client) = match host.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if transient(&e) => continue,
                    Err(e) => return Err(e),
                };
                let flow = match flows.entry(client) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => match open_flow(&epoll, container) {
                        Ok(sock) => {
                            clients.insert(sock.as_raw_fd(), client);
                            v.insert(Flow {
                                to_container: sock,
                                last: now,
                            })
                        }
                        Err(e) => {
                            eprintln!(
                                "husk-proxy: can't proxy a datagram to udp/{container}: {}",
                                crate::errno_text(e)
                            );
                            continue;
                        }
                    },
                };
                flow.last = now;
                if let Err(e) = flow.to_container.send(&buf[..len]) {
                    // Refused: an earlier datagram found no one on the port in the container;
                    // full: the datagram is lost, as the network may lose it. The flow stays.
                    if !transient(&e) {
                        eprintln!(
                            "husk-proxy: can't proxy a datagram to udp/{container}: {}",
                            crate::errno_text(e)
                        );
                    }
                }
            } else if let Some(client) = clients.get(&fd).copied() {
                let flow = flows.get_mut(&client).expect("flows and clients agree");
                match flow.to_container.recv(&mut buf) {
                    Ok(len) => {
                        flow.last = now;
                        // A reply the client's side cannot take is lost, as any datagram may be.
                        let _ = host.send_to(&buf[..len], client);
                    }
                    Err(e) if transient(&e) => {}
                    Err(e) => {
                        eprintln!("husk-proxy: flow of udp/{client}: {}", crate::errno_text(e));
                        close_flow(&epoll, &mut flows, &mut clients, client);
                    }
                }
            }
        }
        if now >= next_sweep {
            let idle: Vec<SocketAddr> = flows
                .iter()
                .filter(|(_, f)| now.duration_since(f.last) >= IDLE)
                .map(|(c, _)| *c)
                .collect();
            for client in idle {
                close_flow(&epoll, &mut flows, &mut clients, client);
            }
            next_sweep = now + SWEEP;
        }
    }
}

/// Errors after which the socket still works: a signal, a full buffer, or a refusal (ICMP port
/// unreachable for an earlier datagram).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::ConnectionRefused
    )
}

fn open_flow(epoll: &Epoll, container: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = if container.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(any)?;
    sock.connect(container)?;
    sock.set_nonblocking(true)?;
    epoll.add(
        sock.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, sock.as_raw_fd() as u64),
    )?;
    Ok(sock)
}

fn close_flow(
    epoll: &Epoll,
    flows: &mut HashMap<SocketAddr, Flow>,
    clients: &mut HashMap<RawFd, SocketAddr>,
    client: SocketAddr,
) {
    if let Some(flow) = flows.remove(&client) {
        // Closing the socket takes it out of the set anyway; this only says so first.
        let _ = epoll.delete(flow.to_container.as_fd());
        clients.remove(&flow.to_container.as_raw_fd());
    }
}
