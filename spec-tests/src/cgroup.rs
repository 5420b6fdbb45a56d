//! Finding a container's cgroup directories on the host (v1, v2 or hybrid).

use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy of the host.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// Path inside the hierarchy that is mounted at `mount_point` ("/" on the host).
    pub root: String,
    /// v1 controllers and `name=` options; empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// The cgroup hierarchies mounted in our mount namespace.
pub fn hierarchies() -> Vec<Hierarchy> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut out = Vec::new();
    for line in text.lines() {
        let (pre, post) = line.split_once(" - ").expect("mountinfo line has ' - '");
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let v2 = match post[0] {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            post[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("release_agent"))
                .map(str::to_owned)
                .collect()
        };
        out.push(Hierarchy {
            mount_point: PathBuf::from(pre[4]),
            root: pre[3].to_owned(),
            controllers,
            v2,
        });
    }
    out
}

/// Host directory of cgroup `path` in hierarchy `h`.
fn dir_in(h: &Hierarchy, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(h.root.trim_end_matches('/'))
        .unwrap_or(path)
        .trim_start_matches('/');
    h.mount_point.join(rel)
}

/// The hierarchy that a "N:controllers:path" line of /proc/<pid>/cgroup refers to.
fn hierarchy_of<'a>(hs: &'a [Hierarchy], controllers: &str) -> Option<&'a Hierarchy> {
    if controllers.is_empty() {
        return hs.iter().find(|h| h.v2);
    }
    hs.iter().find(|h| {
        !h.v2
            && controllers
                .split(',')
                .all(|c| h.controllers.iter().any(|hc| hc == c))
    })
}

/// Parses /proc/<pid>/cgroup into (controllers, path) pairs; "" controllers is cgroup2.
pub fn memberships(pid: i32) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/cgroup: {e}"));
    text.lines()
        .map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next();
            let c = it.next().expect("controllers field").to_owned();
            let p = it.next().expect("path field").to_owned();
            (c, p)
        })
        .collect()
}

/// Host directories of every cgroup `pid` is in, one per mounted hierarchy.
pub fn dirs_of_pid(pid: i32) -> Vec<PathBuf> {
    let hs = hierarchies();
    memberships(pid)
        .into_iter()
        .filter_map(|(c, p)| hierarchy_of(&hs, &c).map(|h| dir_in(h, &p)))
        .collect()
}

/// True when the host's cgroups are pure v2 (one cgroup2 hierarchy at /sys/fs/cgroup), false
/// on a v1 or hybrid layout.
pub fn is_v2() -> bool {
    // SAFETY: an all-zero statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and st is writable.
    let rc = unsafe { libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) };
    assert_eq!(
        rc,
        0,
        "statfs /sys/fs/cgroup: {}",
        std::io::Error::last_os_error()
    );
    st.f_type == libc::CGROUP2_SUPER_MAGIC
}

/// On a pure v2 host, says why the test is skipped and returns true: it checks what only
/// cgroup v1 has (`what`).
pub fn skip_unless_v1(what: &str) -> bool {
    if is_v2() {
        eprintln!("skipped: needs cgroup v1 ({what}); this host's cgroups are pure v2");
    }
    is_v2()
}

/// On a v1 or hybrid host, says why the test is skipped and returns true: it checks what only
/// a pure cgroup v2 host has (`what`).
pub fn skip_unless_v2(what: &str) -> bool {
    if !is_v2() {
        eprintln!("skipped: needs pure cgroup v2 ({what}); this host's cgroups are v1");
    }
    !is_v2()
}

/// The host directory of `pid`'s cgroup in the hierarchy holding `controller` ("memory",
/// "pids", ...; "" for cgroup2). On a pure v2 host every controller is in the one hierarchy.
pub fn dir_of_pid(pid: i32, controller: &str) -> PathBuf {
    let hs = hierarchies();
    let v2 = is_v2();
    for (c, p) in memberships(pid) {
        let matches = if controller.is_empty() || v2 {
            c.is_empty()
        } else {
            c.split(',').any(|x| x == controller)
        };
        if matches {
            let h = hierarchy_of(&hs, &c).expect("hierarchy is mounted");
            return dir_in(h, &p);
        }
    }
    panic!("pid {pid} is in no {controller:?} cgroup")
}

/// Where runc puts a container's cgroups for `cgroups_path` (`linux.cgroupsPath`, None when
/// absent, then the container id is used): an absolute path is taken from each hierarchy's
/// root, a relative one below our own cgroup in that hierarchy (on pure v2, below its parent). Used to check that nothing is
/// left behind by a container that never ran (so no pid to ask).
pub fn expected_dirs(cgroups_path: Option<&str>, id: &str) -> Vec<PathBuf> {
    let hs = hierarchies();
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let own = memberships(me);
    let mut out = Vec::new();
    for h in &hs {
        let p = match cgroups_path {
            Some(p) if p.starts_with('/') => p.to_owned(),
            other => {
                let rel = other.unwrap_or(id);
                let mine = own
                    .iter()
                    .find(|(c, _)| {
                        hierarchy_of(&hs, c).map(|x| &x.mount_point) == Some(&h.mount_point)
                    })
                    .map(|(_, p)| p.clone())
                    .unwrap_or_else(|| "/".to_owned());
                // runc's fs2 driver takes the parent of our own cgroup, which has processes.
                let base = if is_v2() {
                    Path::new(&mine)
                        .parent()
                        .map_or(mine.clone(), |p| p.to_string_lossy().into_owned())
                } else {
                    mine
                };
                format!("{}/{rel}", base.trim_end_matches('/'))
            }
        };
        out.push(dir_in(h, &p));
    }
    out
}

/// Reads a cgroup control file, trimmed.
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

/// How many eBPF device programs (BPF_CGROUP_DEVICE) are attached to the cgroup2 directory
/// `dir`: cgroup v2's device rules, which have no file to read back.
pub fn device_programs(dir: &Path) -> u32 {
    use std::os::fd::AsRawFd;
    // The BPF_PROG_QUERY member of union bpf_attr; prog_ids 0 asks for the count alone.
    #[repr(C, align(8))]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        pad: u32,
    }
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_CGROUP_DEVICE: u32 = 6;
    let f = std::fs::File::open(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let mut q = Query {
        target_fd: f.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: 0,
        prog_cnt: 0,
        pad: 0,
    };
    // SAFETY: q is a valid, zero-padded bpf_attr prefix of the size given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut q as *mut Query,
            std::mem::size_of::<Query>(),
        )
    };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_QUERY on {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
    q.prog_cnt
}
