//! Checks, from the host, that a container left nothing behind.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::cgroup;
use crate::proc;
use crate::runtime::Runtime;

/// What was seen of a container while it existed.
#[derive(Debug)]
pub struct Seen {
    pub pid: i32,
    pub starttime: u64,
    /// e.g. "pid:[4026532200]"; None when the container shares our pid namespace.
    pub pid_ns: Option<String>,
    /// Keeps that pid namespace alive, so that its inode number (which identifies it) cannot
    /// be reused by another container on this machine before the leftover check.
    _pid_ns_ref: Option<File>,
    pub cgroup_dirs: Vec<PathBuf>,
}

impl Seen {
    /// Records `pid` (the container's init, running or created) as seen from the host.
    pub fn of(pid: i32) -> Seen {
        let st = proc::stat(pid).unwrap_or_else(|| panic!("container pid {pid} does not exist"));
        let ns_path = format!("/proc/{pid}/ns/pid");
        let ns_ref = File::open(&ns_path).unwrap_or_else(|e| panic!("open {ns_path}: {e}"));
        let ns = proc::ns_link(&pid.to_string(), "pid");
        let own = proc::ns_link("self", "pid");
        let nested = ns != own;
        Seen {
            pid,
            starttime: st.starttime,
            pid_ns: nested.then_some(ns),
            _pid_ns_ref: nested.then_some(ns_ref),
            cgroup_dirs: cgroup::dirs_of_pid(pid),
        }
    }
}

/// Everything to check about container `id` after it was deleted (or failed to be created).
pub struct Check<'a> {
    pub rt: &'a Runtime,
    pub id: &'a str,
    pub bundle: &'a Path,
    /// `linux.cgroupsPath` of its config, for the default-location cgroup check.
    pub cgroups_path: Option<&'a str>,
    pub seen: Option<&'a Seen>,
    /// Processes that are expected to be alive (e.g. a namespace holder).
    pub allowed_children: &'a [i32],
}

impl Check<'_> {
    /// Panics with a list of everything left behind.
    #[track_caller]
    pub fn assert_clean(&self) {
        let mut problems = Vec::new();

        // The runtime must not know the id any more, and its state dir must be gone.
        let st = self.rt.state(self.id);
        if st.success() {
            problems.push(format!("`state {}` still succeeds:\n{st}", self.id));
        }
        let state_dir = self.rt.root().join(self.id);
        if state_dir.exists() {
            problems.push(format!("state dir {} exists", state_dir.display()));
        }

        // Cgroups: those the process was seen in, and where runc would have put them.
        let mut dirs = cgroup::expected_dirs(self.cgroups_path, self.id);
        if let Some(s) = self.seen {
            dirs.extend(s.cgroup_dirs.iter().cloned());
        }
        for d in dirs {
            // Our own cgroups (a container placed in ours) are not leftovers.
            if d.exists() && !is_own_cgroup(&d) {
                problems.push(format!("cgroup dir {} exists", d.display()));
            }
        }

        // As a subreaper we inherit the runtime's orphans: reap its zombies (as a containerd
        // shim does) before looking for processes, or a dead init whose parent died first (a
        // restore killed half-way) would count as left behind. Only when this process runs a
        // single test: under `cargo test` another test may be about to wait for its own child.
        if one_test_per_process() {
            for p in proc::children_of_self() {
                if !proc::alive(p) && !self.allowed_children.contains(&p) {
                    proc::reap(p, std::time::Duration::from_secs(1));
                }
            }
        }

        // Processes: the init, and anything else in its pid namespace.
        if let Some(s) = self.seen {
            if let Some(now) = proc::stat(s.pid) {
                if now.starttime == s.starttime {
                    problems.push(format!("container init {} still exists: {now:?}", s.pid));
                }
            }
            if let Some(ns) = &s.pid_ns {
                let pids = proc::pids_in_pid_ns(ns);
                if !pids.is_empty() {
                    let desc: Vec<String> = pids.iter().map(|&p| describe(p)).collect();
                    problems.push(format!("processes left in {ns}: {desc:?}"));
                }
            }
        }
        // Anything else the runtime started, wherever it ended up: its forks, an init that
        // never reached execve, a hook's children. Every test's runtime marks its own, so this
        // holds whether tests share this process (`cargo test`) or not (nextest).
        let live: Vec<i32> = marked(&self.rt.root())
            .into_iter()
            .filter(|p| !self.allowed_children.contains(p))
            .collect();
        if !live.is_empty() {
            let desc: Vec<String> = live.iter().map(|&p| describe(p)).collect();
            problems.push(format!("live processes the runtime started: {desc:?}"));
        }
        let mounts = proc::mounts_mentioning(self.bundle);
        if !mounts.is_empty() {
            problems.push(format!("mounts left: {mounts:#?}"));
        }

        assert!(
            problems.is_empty(),
            "container {} left things behind:\n{}",
            self.id,
            problems.join("\n")
        );
    }
}

/// The environment variable that marks the processes of one [`Runtime`]: its value is the
/// runtime's `--root`, which no other test shares.
pub const MARK: &str = "SPEC_TESTS_RUNTIME_ROOT";

/// Live processes carrying the mark of the runtime with state root `root` (a zombie has no
/// environment left to read, and is no leftover).
pub fn marked(root: &Path) -> Vec<i32> {
    let mut want = format!("{MARK}=").into_bytes();
    want.extend_from_slice(root.as_os_str().as_encoded_bytes());
    want.push(0);
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if env.windows(want.len()).any(|w| w == want) && proc::alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// True under cargo-nextest's default process-per-test mode.
pub fn one_test_per_process() -> bool {
    std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test")
}

fn is_own_cgroup(dir: &Path) -> bool {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    cgroup::dirs_of_pid(me).iter().any(|d| d == dir)
}

/// "pid state ppid cmdline" of a process, for error messages.
fn describe(pid: i32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    format!(
        "{pid} {:?} {:?}",
        proc::stat(pid),
        String::from_utf8_lossy(&cmd).replace('\0', " ")
    )
}
