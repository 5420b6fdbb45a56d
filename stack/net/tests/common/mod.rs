//! What the tests share: network namespaces held by a descriptor (no process, no mount),
//! commands run inside them, and guards that remove every bridge and process a test made,
//! whether it passes or not.

#![allow(dead_code)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use husk_net::{Bridge, Ipv4Net, Net};
use nix::sched::{setns, unshare, CloneFlags};

pub const BUSYBOX: &str = "/usr/bin/busybox";

/// Root and busybox, or a visible skip.
pub fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped {test}: needs root");
        return false;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipped {test}: needs {BUSYBOX} (Debian's busybox-static)");
        return false;
    }
    true
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A name and a /24 of 10.217.0.0/16 for this test in this process: tests run in parallel.
pub fn unique(tag: u8) -> (String, Ipv4Net) {
    let name = format!("hkt{}x{tag}", std::process::id() % 100_000);
    let subnet = Ipv4Net::new(Ipv4Addr::new(10, 217, tag, 0), 24).unwrap();
    (name, subnet)
}

/// A new network namespace, alive while this holds its descriptor (and while a process
/// started in it runs).
pub struct Netns {
    file: File,
}

impl Netns {
    pub fn new() -> Netns {
        let file = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
            File::open("/proc/thread-self/ns/net").expect("open the new netns")
        })
        .join()
        .unwrap();
        Netns { file }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// busybox APPLET ARGS... inside the namespace.
    pub fn busybox(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BUSYBOX);
        cmd.args(args);
        let fd = self.file.as_raw_fd();
        // SAFETY: only setns, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Runs `f` on a thread that has joined the namespace.
    pub fn thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let ns = self.file.try_clone().unwrap();
        std::thread::spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    /// The namespace pings `addr`.
    pub fn pings(&self, addr: impl ToString, secs: u32) -> bool {
        answered(self.busybox(&["ping"]), addr, secs)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.busybox(args).output().unwrap()
    }
}

/// Runs busybox on the host.
pub fn host(args: &[&str]) -> Output {
    Command::new(BUSYBOX).args(args).output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One ICMP echo, answered within `secs`.
fn answered(mut ping: Command, addr: impl ToString, secs: u32) -> bool {
    let out = ping
        .args(["-c", "1", "-W", &secs.to_string(), &addr.to_string()])
        .output()
        .unwrap();
    out.status.success() && text(&out).contains("1 packets received")
}

/// The host pings `addr`.
pub fn host_pings(addr: impl ToString, secs: u32) -> bool {
    let mut ping = Command::new(BUSYBOX);
    ping.arg("ping");
    answered(ping, addr, secs)
}

/// Deletes the bridge when dropped, from a thread and a runtime of its own so that it works
/// wherever the test stops, panicking or not.
pub struct BridgeGuard(pub String);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        let r = std::thread::spawn(move || {
            rt().block_on(async { Net::new()?.remove_bridge(&name).await })
        })
        .join()
        .unwrap();
        if let Err(e) = r {
            eprintln!("cleanup of bridge {}: {e}", self.0);
        }
    }
}

pub fn make_bridge(rt: &tokio::runtime::Runtime, net: &Net, tag: u8) -> (Bridge, BridgeGuard) {
    let (name, subnet) = unique(tag);
    let guard = BridgeGuard(name.clone());
    let bridge = rt.block_on(net.ensure_bridge(&name, subnet)).unwrap();
    (bridge, guard)
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A process killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // It may have exited already; wait() below reaps it either way.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns with no stdin and the output discarded.
pub fn spawn(mut cmd: Command) -> Proc {
    Proc(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

pub fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// A port of 127.0.0.1 free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `$HUSK_PROXY`, else the newer of the release and debug builds (a workspace test run builds
/// the debug one; a release one may be older).
pub fn proxy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HUSK_PROXY") {
        return PathBuf::from(p);
    }
    let target =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/x86_64-unknown-linux-gnu");
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("husk-proxy"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .expect("husk-proxy missing: cargo build --release -p husk-proxy, or set $HUSK_PROXY")
}
