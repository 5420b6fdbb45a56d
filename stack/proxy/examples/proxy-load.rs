//! Load for bench/proxy.sh: starts a proxy binary the way the manager will (status on fd 3),
//! with a server of its own on loopback standing in for the container, pushes traffic through
//! it and prints one JSON line: wall time and the proxy's CPU time (user + system, from
//! /proc/PID/stat, which counts its finished threads too).
//!
//!   proxy-load tcp PROXY BYTES [CONNS]   BYTES from clients to the server, over CONNS
//!                                        connections at once (default 1)
//!   proxy-load udp PROXY COUNT     COUNT 64-byte request/response round trips
//!
//! PROXY "direct" skips the proxy: the floor.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 && !(a.len() == 5 && a[1] == "tcp") {
        eprintln!("usage: proxy-load tcp|udp PROXY|direct BYTES|COUNT [CONNS]");
        std::process::exit(2);
    }
    let n: u64 = a[3].parse().expect("BYTES|COUNT");
    match a[1].as_str() {
        "tcp" => tcp(&a[2], n, a.get(4).map_or(1, |c| c.parse().expect("CONNS"))),
        "udp" => udp(&a[2], n),
        m => panic!("unknown mode {m}"),
    }
}

struct Proxy {
    child: Option<std::process::Child>,
    port: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SIGKILL ends it; the wait is bounded by that.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Proxy {
    /// The proxy's peak resident set so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let Some(c) = &self.child else { return 0 };
        let status = std::fs::read_to_string(format!("/proc/{}/status", c.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// User + system CPU time of the proxy so far, in seconds.
    fn cpu(&self) -> f64 {
        let Some(c) = &self.child else { return 0.0 };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.id())).unwrap();
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

fn start(bin: &str, proto: &str, container: SocketAddr) -> Proxy {
    if bin == "direct" {
        return Proxy {
            child: None,
            port: container.port(),
        };
    }
    for _ in 0..10 {
        let port = if proto == "udp" {
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let w_raw = w.as_raw_fd();
        let mut cmd = Command::new(bin);
        cmd.args([
            "-proto",
            proto,
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            &port.to_string(),
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            &container.port().to_string(),
        ])
        .stdin(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // The proxy ends with this tool, even when a timeout kills it.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let rc = if w_raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(w_raw, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{bin}: {e}"));
        drop(w);
        // The proxy writes its status and closes fd 3 at once; it is killed at the end if not.
        let mut status = String::new();
        std::fs::File::from(r).read_to_string(&mut status).unwrap();
        let p = Proxy {
            child: Some(child),
            port,
        };
        if status == "0\n" {
            return p;
        }
        assert!(
            status.contains("address already in use"),
            "{bin}: {status:?}"
        );
    }
    panic!("{bin}: no free port in 10 tries");
}

fn tcp(bin: &str, bytes: u64, conns: u64) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    // std listens with a backlog of 128: hundreds of connections at once overflow it, and the
    // kernel drops the connections it cannot queue. As many as the system allows, as the
    // proxies' own listeners.
    assert_eq!(
        unsafe { libc::listen(server.as_raw_fd(), libc::SOMAXCONN) },
        0
    );
    let addr = server.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let readers: Vec<_> = (0..conns)
            .map(|_| {
                let (mut c, _) = server.accept().unwrap();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 20];
                    let mut total = 0u64;
                    loop {
                        match c.read(&mut buf).unwrap() {
                            0 => return total,
                            n => total += n as u64,
                        }
                    }
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).sum::<u64>()
    });
    let p = start(bin, "tcp", addr);
    let clients: Vec<TcpStream> = (0..conns)
        .map(|_| TcpStream::connect(("127.0.0.1", p.port)).unwrap())
        .collect();
    let cpu0 = p.cpu();
    let t0 = Instant::now();
    let writers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            // The first connections take the remainder.
            let mut left = bytes / conns + u64::from((i as u64) < bytes % conns);
            std::thread::spawn(move || {
                let buf = vec![0x5au8; 1 << 20];
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    c.write_all(&buf[..n]).unwrap();
                    left -= n as u64;
                }
                c.shutdown(std::net::Shutdown::Write).unwrap();
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let got = sink.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = p.cpu() - cpu0;
    assert_eq!(got, bytes, "bytes lost");
    let gb = bytes as f64 / 1e9;
    println!(
        "{{\"proto\":\"tcp\",\"proxy\":\"{bin}\",\"conns\":{conns},\"bytes\":{bytes},\"secs\":{secs:.4},\"mb_per_s\":{:.1},\"cpu_secs\":{cpu:.3},\"cpu_secs_per_gb\":{:.4},\"peak_rss_kib\":{}}}",
        bytes as f64 / 1e6 / secs,
        cpu / gb,
        p.peak_rss_kib()
    );
}

fn udp(bin: &str, count: u64) {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let p = start(bin, "udp", addr);
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.connect(("127.0.0.1", p.port)).unwrap();
    let req = [0x5au8; 64];
    let mut buf = [0u8; 2048];
    // The first exchange opens the flow (a socket and a thread); not what is measured.
    c.send(&req).unwrap();
    c.recv(&mut buf).unwrap();
    let mut rtt = Vec::with_capacity(count as usize);
    let cpu0 = p.cpu();
    let t0 = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        c.send(&req).unwrap();
        let n = c.recv(&mut buf).expect("reply within 5 s");
        assert_eq!(n, req.len());
        rtt.push(t.elapsed().as_nanos() as f64 / 1e3);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = p.cpu() - cpu0;
    rtt.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |q: f64| rtt[((rtt.len() as f64 - 1.0) * q) as usize];
    println!(
        "{{\"proto\":\"udp\",\"proxy\":\"{bin}\",\"count\":{count},\"secs\":{secs:.4},\"rtt_us_p50\":{:.1},\"rtt_us_p99\":{:.1},\"rtt_us_mean\":{:.1},\"cpu_us_per_rtt\":{:.2},\"peak_rss_kib\":{}}}",
        pct(0.5),
        pct(0.99),
        rtt.iter().sum::<f64>() / rtt.len() as f64,
        cpu * 1e6 / count as f64,
        p.peak_rss_kib()
    );
}
