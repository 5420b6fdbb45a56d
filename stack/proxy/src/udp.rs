//! UDP: a flow per client address. Each flow has its own socket connected to the container, so
//! that the container sees one peer per client and its replies can be told apart; a thread per
//! flow sends the replies back to that client from the host socket. A flow with no datagram
//! either way for `IDLE` ends.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{bind, SockType, SockaddrStorage};

/// docker-proxy's UDPConnTrackTimeout.
const IDLE: Duration = Duration::from_secs(90);

/// The largest UDP payload (IPv6 without jumbograms); datagrams are never cut.
const BUF: usize = 65535;

pub fn listen(addr: SocketAddr) -> Result<UdpSocket, (&'static str, io::Error)> {
    let fd = crate::socket_for(addr, SockType::Datagram).map_err(|e| ("socket", e))?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|e| ("bind", e.into()))?;
    Ok(UdpSocket::from(fd))
}

struct Flow {
    to_container: UdpSocket,
    /// Milliseconds since `Table::epoch` of the flow's last datagram, either way.
    last: AtomicU64,
}

struct Table {
    epoch: Instant,
    flows: Mutex<HashMap<SocketAddr, Arc<Flow>>>,
}

impl Table {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

pub fn serve(host: UdpSocket, container: SocketAddr) -> ! {
    let host = Arc::new(host);
    let table = Arc::new(Table {
        epoch: Instant::now(),
        flows: Mutex::new(HashMap::new()),
    });
    let mut buf = vec![0u8; BUF];
    loop {
        let (n, client) = match host.recv_from(&mut buf) {
            Ok(r) => r,
            // An ICMP error for an earlier reply to a client; the next datagram may be fine.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionRefused
                ) =>
            {
                continue
            }
            Err(e) => {
                eprintln!("husk-proxy: receiving: {}", crate::errno_text(e));
                std::process::exit(1);
            }
        };
        // Held while sending, so that an expiring flow cannot be dropped between its lookup
        // and the datagram that keeps it alive.
        let mut flows = table.flows.lock().unwrap_or_else(|p| p.into_inner());
        let flow = match flows.get(&client) {
            Some(f) => f.clone(),
            None => match open_flow(&host, &table, client, container) {
                Ok(f) => {
                    flows.insert(client, f.clone());
                    f
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
        flow.last.store(table.now(), Ordering::Relaxed);
        if let Err(e) = flow.to_container.send(&buf[..n]) {
            // Refused: an earlier datagram found no one listening in the container. Lost, as
            // a datagram may be; the flow stays.
            if e.kind() != ErrorKind::ConnectionRefused {
                eprintln!(
                    "husk-proxy: can't proxy a datagram to udp/{container}: {}",
                    crate::errno_text(e)
                );
            }
        }
    }
}

fn open_flow(
    host: &Arc<UdpSocket>,
    table: &Arc<Table>,
    client: SocketAddr,
    container: SocketAddr,
) -> io::Result<Arc<Flow>> {
    let any: SocketAddr = if container.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(any)?;
    sock.connect(container)?;
    let flow = Arc::new(Flow {
        to_container: sock,
        last: AtomicU64::new(table.now()),
    });
    let (host, table, f) = (host.clone(), table.clone(), flow.clone());
    std::thread::Builder::new()
        .stack_size(crate::STACK)
        .spawn(move || replies(&host, &table, &f, client))?;
    Ok(flow)
}

/// Sends the container's replies on `flow` back to `client`, until the flow is idle for `IDLE`.
fn replies(host: &UdpSocket, table: &Table, flow: &Flow, client: SocketAddr) {
    let mut buf = vec![0u8; BUF];
    loop {
        let idle = table.now() - flow.last.load(Ordering::Relaxed);
        let left = IDLE.as_millis() as u64 - idle.min(IDLE.as_millis() as u64);
        if left == 0 {
            let mut flows = table.flows.lock().unwrap_or_else(|p| p.into_inner());
            // Checked again under the lock: the receiver touches `last` while holding it.
            if table.now() - flow.last.load(Ordering::Relaxed) >= IDLE.as_millis() as u64 {
                flows.remove(&client);
                return;
            }
            continue;
        }
        // A zero timeout would mean none; `left` is at least 1 ms here.
        if flow
            .to_container
            .set_read_timeout(Some(Duration::from_millis(left)))
            .is_err()
        {
            return;
        }
        match flow.to_container.recv(&mut buf) {
            Ok(n) => {
                flow.last.store(table.now(), Ordering::Relaxed);
                // A reply the client's side refuses is lost, as any datagram may be.
                let _ = host.send_to(&buf[..n], client);
            }
            Err(e) => match e.kind() {
                // The container had no one on the port for an earlier datagram.
                ErrorKind::ConnectionRefused
                | ErrorKind::WouldBlock
                | ErrorKind::TimedOut
                | ErrorKind::Interrupted => {}
                _ => {
                    eprintln!("husk-proxy: flow of udp/{client}: {}", crate::errno_text(e));
                    let mut flows = table.flows.lock().unwrap_or_else(|p| p.into_inner());
                    flows.remove(&client);
                    return;
                }
            },
        }
    }
}
