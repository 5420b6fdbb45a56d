//! Host-side process helpers: subreaper, waiting for exits without sleeping, reaping, and
//! reading /proc.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

/// Makes this test process a child subreaper, so that detached container inits (whose parent,
/// the runtime's `create`, exits) are reparented to us and not to this machine's pid 1, which
/// does not reap. Idempotent.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain prctl with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            r,
            0,
            "PR_SET_CHILD_SUBREAPER: {}",
            io::Error::last_os_error()
        );
    });
}

/// A pidfd for `pid`, or None if the process no longer exists (already reaped).
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::ESRCH),
            "pidfd_open({pid}): {e}"
        );
        return None;
    }
    // SAFETY: the syscall returned a fresh fd that we own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until `fd` is readable (POLLIN) or `timeout` passes; true if readable.
pub fn poll_readable(fd: &impl AsRawFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            assert_eq!(e.kind(), io::ErrorKind::Interrupted, "poll: {e}");
            continue;
        }
        return r > 0;
    }
}

/// Waits (bounded by `timeout`, no sleeping: a pidfd becomes readable when the process exits)
/// until `pid` has exited, i.e. is a zombie or gone. Does not reap it. True if it exited.
///
/// While waiting, reaps container processes orphaned to us (see [`reap_container_orphans`]):
/// a container's init cannot finish exiting while such a process is unreaped.
pub fn wait_exit(pid: i32, timeout: Duration) -> bool {
    let Some(fd) = pidfd_open(pid) else {
        return true;
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if poll_readable(&fd, left.min(ORPHAN_SCAN_INTERVAL)) {
            return true;
        }
        if left.is_zero() {
            return false;
        }
        reap_container_orphans();
    }
}

/// How often [`wait_exit`] looks for orphans to reap.
const ORPHAN_SCAN_INTERVAL: Duration = Duration::from_millis(10);

/// Reaps our zombie children that lived in a nested pid namespace. As a subreaper we inherit
/// e.g. processes started by `exec --detach`; the kernel does not let a pid namespace's init
/// finish exiting until every process of the namespace has been reaped, so leaving them
/// would make the container look running forever (like a containerd shim, we reap). Our own
/// children (runtime commands, helpers) live in our pid namespace and are left alone.
pub fn reap_container_orphans() {
    for pid in children_of_self() {
        let zombie = matches!(stat(pid), Some(s) if s.state == 'Z');
        if zombie && in_nested_pid_ns(pid) {
            let mut status = 0;
            // SAFETY: waitpid on a specific zombie child; WNOHANG.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        }
    }
}

/// True if `pid` lives in a pid namespace below ours (NSpid lists more than one pid).
fn in_nested_pid_ns(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map(|v| v.split_whitespace().count() > 1)
        })
        .unwrap_or(false)
}

/// Reaps `pid` if it is our child (it is, for a detached container init, because we are a
/// subreaper); waits at most `timeout` for it to exit first. Returns its wait status, or None
/// if it is not our child (another runtime may keep its init under a different parent).
pub fn reap(pid: i32, timeout: Duration) -> Option<i32> {
    assert!(
        wait_exit(pid, timeout),
        "process {pid} still running after {timeout:?}"
    );
    let mut status = 0;
    // SAFETY: waitpid on a specific pid; WNOHANG because it has exited already.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r == pid {
        Some(status)
    } else {
        let e = io::Error::last_os_error();
        assert!(
            r < 0 && e.raw_os_error() == Some(libc::ECHILD),
            "waitpid({pid}) = {r}: {e}"
        );
        None
    }
}

/// Fields of /proc/<pid>/stat that the tests use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub starttime: u64,
}

/// Parses /proc/<pid>/stat; None if the process does not exist.
pub fn stat(pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f[0].chars().next()?,
        ppid: f[1].parse().ok()?,
        starttime: f[19].parse().ok()?,
    })
}

/// True if `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some(s) if s.state != 'Z' && s.state != 'X')
}

/// Lines of our /proc/self/mountinfo that mention `path` (as mount point or root).
pub fn mounts_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Pids whose parent is this process (a subreaper inherits orphans, so leftovers show here).
pub fn children_of_self() -> Vec<i32> {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if matches!(stat(pid), Some(s) if s.ppid == me) {
            out.push(pid);
        }
    }
    out
}

/// The target of a /proc/<pid>/ns/<kind> link, e.g. "net:[4026531840]".
pub fn ns_link(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Pids of all processes whose pid namespace link equals `ns` (e.g. "pid:[4026532200]").
pub fn pids_in_pid_ns(ns: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(l) = std::fs::read_link(format!("/proc/{pid}/ns/pid")) {
            if l.to_string_lossy() == ns {
                out.push(pid);
            }
        }
    }
    out
}
