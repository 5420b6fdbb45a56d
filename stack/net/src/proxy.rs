//! Published ports: one husk-proxy process per port, as dockerd starts docker-proxy. Each
//! reports on its fd 3 (`0\n` once bound, `1\n<error>` on failure, see notes/proxy.md); a
//! container's proxies start together or not at all.

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::ports::PortSpec;

/// How long a proxy may take to bind and say so before it counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("-p {spec}: start {bin}: {source}")]
    Spawn {
        spec: PortSpec,
        bin: PathBuf,
        source: io::Error,
    },
    #[error("-p {spec}: {message}")]
    Refused { spec: PortSpec, message: String },
    #[error("proxy thread: {0}")]
    Thread(String),
}

/// The proxies of one container; dropping them stops them.
#[derive(Debug, Default)]
pub struct Proxies {
    running: Vec<(PortSpec, Child)>,
}

impl Proxies {
    /// Starts a proxy from `bin` for each spec, to `container`'s address, and waits until each
    /// has bound its host port. The first failure (a port in use, say) stops the ones started
    /// and is returned, naming the spec and the proxy's reason.
    pub fn start(bin: &Path, container: Ipv4Addr, specs: &[PortSpec]) -> Result<Self, Error> {
        let mut proxies = Proxies::default();
        for spec in specs {
            // On error `proxies` drops here, which stops the ones already running.
            let child = start_one(bin, container, spec)?;
            proxies.running.push((*spec, child));
        }
        Ok(proxies)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.running.iter().map(|(_, c)| c.id()).collect()
    }

    /// Lets the proxies go on without this handle, for a daemon that keeps their pids (they
    /// outlive it, as the containers outlive it) and later stops them with `stop_pids`.
    pub fn into_pids(mut self) -> Vec<u32> {
        // A dropped Child neither kills nor waits.
        self.running.drain(..).map(|(_, c)| c.id()).collect()
    }

    /// SIGTERM to each (husk-proxy exits at once, its ports free), then reaps it.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for (spec, mut child) in self.running.drain(..) {
            stop_child(&spec, &mut child, Signal::SIGTERM);
        }
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// SIGTERM for a proxy that works (it exits at once), SIGKILL for one that did not start
/// right and may not be listening to signals yet.
fn stop_child(spec: &PortSpec, child: &mut Child, signal: Signal) {
    // Not reaped yet, so the pid is still this child's (a zombie at worst).
    if let Err(e) = kill(Pid::from_raw(child.id() as i32), signal) {
        log::warn!("proxy for {spec}: {signal}: {e}");
    }
    match child.wait() {
        Ok(s) if !s.success() && signal == Signal::SIGTERM => {
            log::warn!("proxy for {spec}: {s}")
        }
        Ok(_) => {}
        Err(e) => log::warn!("proxy for {spec}: wait: {e}"),
    }
}

fn start_one(bin: &Path, container: Ipv4Addr, spec: &PortSpec) -> Result<Child, Error> {
    let spawn_err = |source| Error::Spawn {
        spec: *spec,
        bin: bin.to_path_buf(),
        source,
    };
    let (mut status, status_w) = io::pipe().map_err(spawn_err)?;
    let fd = status_w.as_raw_fd();
    let mut cmd = Command::new(bin);
    cmd.args(["-proto", spec.proto.as_str()])
        .args(["-host-ip", &spec.host_ip.to_string()])
        .args(["-host-port", &spec.host_port.to_string()])
        .args(["-container-ip", &container.to_string()])
        .args(["-container-port", &spec.container_port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // dup2 onto itself keeps close-on-exec: clear it by hand.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // The proxy holds the only write end now: EOF means it closed it or died.
    drop(status_w);
    match read_status(&mut status) {
        Ok(s) if s.starts_with("0\n") => Ok(child),
        result => {
            stop_child(spec, &mut child, Signal::SIGKILL);
            let message = match result {
                Ok(s) => match s.strip_prefix("1\n") {
                    Some(m) => m.to_string(),
                    None if s.is_empty() => "husk-proxy exited without binding".to_string(),
                    None => format!("husk-proxy: unexpected status {s:?}"),
                },
                Err(e) => format!("husk-proxy's status: {e}"),
            };
            Err(Error::Refused {
                spec: *spec,
                message,
            })
        }
    }
}

/// How long a proxy has to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Stops proxies known only by pid (from `into_pids`, perhaps of an earlier daemon): each one
/// that is still a husk-proxy for `container` gets SIGTERM, then SIGKILL after STOP_TIMEOUT,
/// and is waited for, so that its port is free on return. A pid that is gone, or that now
/// belongs to another process, is left alone. Through a pidfd: no signal can reach a process
/// that took over the pid after the check.
pub fn stop_pids(pids: &[u32], container: Ipv4Addr) {
    for &pid in pids {
        if let Err(e) = stop_pid(pid, container) {
            log::warn!("proxy {pid}: {e}");
        }
    }
}

fn stop_pid(pid: u32, container: Ipv4Addr) -> io::Result<()> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            _ => Err(e),
        };
    }
    // SAFETY: just returned by pidfd_open, owned by nothing else.
    let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    let mine = match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(c) => is_proxy_for(&c, container),
        // Gone between the two: nothing to stop.
        Err(_) => false,
    };
    if !mine {
        return Ok(());
    }
    let signal = |sig: libc::c_int| {
        // SAFETY: a pidfd we own, a valid signal, no siginfo, no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        match r {
            0 => Ok(()),
            _ => match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                e => Err(e),
            },
        }
    };
    let exited = |ms: u16| -> io::Result<bool> {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, PollTimeout::from(ms)) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(n) => return Ok(n > 0),
            }
        }
    };
    signal(libc::SIGTERM)?;
    if !exited(STOP_TIMEOUT.as_millis() as u16)? {
        signal(libc::SIGKILL)?;
        // SIGKILL cannot be held off for long; bounded all the same.
        if !exited(STOP_TIMEOUT.as_millis() as u16)? {
            return Err(io::Error::other("did not exit after SIGKILL"));
        }
    }
    // Reaped if it is our child; another daemon's orphan is its reaper's to reap (ECHILD).
    // SAFETY: a zeroed siginfo for waitid to fill, a pidfd we own.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ECHILD) {
            return Err(e);
        }
    }
    Ok(())
}

/// Whether a /proc/PID/cmdline is husk-proxy's, forwarding to `container`.
fn is_proxy_for(cmdline: &[u8], container: Ipv4Addr) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let ip = container.to_string();
    args.first()
        .is_some_and(|a0| a0.ends_with(b"husk-proxy") || a0.ends_with(b"docker-proxy"))
        && args
            .windows(2)
            .any(|w| w[0] == b"-container-ip" && w[1] == ip.as_bytes())
}

/// fd 3 to EOF, within READY_TIMEOUT.
fn read_status(pipe: &mut io::PipeReader) -> io::Result<String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .map_err(io::Error::other)?;
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing within {} s", READY_TIMEOUT.as_secs()),
                ))
            }
            Ok(_) => match pipe.read(&mut buf)? {
                0 => return Ok(String::from_utf8_lossy(&out).into_owned()),
                n => out.extend_from_slice(&buf[..n]),
            },
        }
    }
}
