//! Cgroups behind one trait, `CgroupManager`: create, apply, set, freeze, stats, the OOM watch,
//! the container's view of its cgroups, destroy. v1 (per-controller hierarchies) and v2
//! (unified) and systemd (a v2 scope made through systemd) implement it; `for_container` and
//! `from_paths` are the only places that choose.
//! `cgroupsPath` follows runc's fs driver: absolute paths are taken from the hierarchy's root,
//! relative ones from husk's own cgroup, and an empty one means the container's id under husk's
//! own cgroup.

pub mod bpf;
pub mod devices;
pub mod oom;
pub mod stats;
pub mod systemd;
pub mod systemd_dbus;
pub mod v1;
pub mod v2;

use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxHugepageLimit, LinuxRdma, LinuxResources};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

pub trait CgroupManager {
    /// Makes the cgroup directories.
    fn create(&self) -> Result<()>;
    /// Moves a process into the cgroup.
    fn apply(&self, pid: i32) -> Result<()>;
    /// Writes resource limits.
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    /// The processes in the cgroup, nested cgroups included.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Removes the cgroup directories, nested ones first.
    fn destroy(&self) -> Result<()>;
    /// The directories this manager owns, to be remembered in the container's state.
    fn paths(&self) -> Vec<PathBuf>;
    /// Freezes (pause) or thaws (resume) every process in the cgroup, and waits until done.
    fn freeze(&self, frozen: bool) -> Result<()>;
    /// Resource usage, as `events` reports it.
    fn stats(&self) -> Result<stats::Stats>;
    /// One descriptor to poll for OOM kills and the end of the cgroup.
    fn oom_watch(&self) -> Result<oom::Watch>;
    /// What the container's own cgroup mount shows.
    fn mount_layout(&self) -> MountLayout;
    /// Thaws each of the cgroup's directories that is frozen itself, so that killed processes
    /// can die; returns an ancestor frozen above them (not ours to thaw), if there is one.
    fn thaw_own(&self) -> Result<Option<PathBuf>> {
        let mut held = None;
        for d in self.paths() {
            match frozen(&d) {
                Frozen::Itself(d) => thaw(&d)?,
                Frozen::By(p) => held = Some(p),
                Frozen::No => {}
            }
        }
        Ok(held)
    }
    /// The directories with a freezer, whose state a process in the cgroup obeys (all of
    /// them when that is not known).
    fn freezer_paths(&self) -> Vec<PathBuf> {
        self.paths()
    }
    /// The cgroup, opened, for a new process to start in (clone3's CLONE_INTO_CGROUP) rather
    /// than be moved in by `apply`; None where it must be moved (v1, systemd's scope, none).
    fn clone_target(&self) -> Option<OwnedFd> {
        None
    }
    /// The directories exist only once `apply` has run (systemd makes a v1 scope's then, and
    /// may remove any made before): the init waits for it before it binds them.
    fn made_by_apply(&self) -> bool {
        false
    }
    /// Whether the cgroup is frozen (or would be, once made), and by whom.
    fn frozen(&self) -> Frozen {
        self.paths()
            .iter()
            .map(|d| frozen(d))
            .find(|f| *f != Frozen::No)
            .unwrap_or(Frozen::No)
    }
}

/// What a container's cgroup mount (/sys/fs/cgroup) shows of its cgroups.
pub enum MountLayout {
    /// v2: the unified hierarchy at the mount point itself; the container's directory.
    Unified(PathBuf),
    /// v1: a tmpfs with one directory per hierarchy, named as under /sys/fs/cgroup
    /// ("cpu,cpuacct"), each with the container's directory in that hierarchy.
    Hierarchies(Vec<(PathBuf, PathBuf)>),
}

/// A cgroup's freezer, as a process joining it would meet it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frozen {
    No,
    /// Frozen at this directory, one of the cgroup's own.
    Itself(PathBuf),
    /// Frozen because this ancestor is: a new cgroup below it starts frozen.
    By(PathBuf),
}

impl Frozen {
    /// runc's words for a frozen cgroup, naming the ancestor that froze it if one did.
    pub fn refusal(&self) -> Option<String> {
        const MSG: &str = "container's cgroup unexpectedly frozen";
        match self {
            Frozen::No => None,
            Frozen::Itself(_) => Some(MSG.into()),
            Frozen::By(p) => Some(format!("{MSG}: {} is frozen", p.display())),
        }
    }
}

/// The freezer of `dir`, which need not exist yet: the first of it and its ancestors that is
/// set to freeze (v2's cgroup.freeze, or v1's freezer.self_freezing, which a FREEZING cgroup
/// has set too). A hierarchy's root has neither file, nor has a v1 hierarchy without the
/// freezer, and the walk ends there.
pub fn frozen(dir: &Path) -> Frozen {
    for d in dir.ancestors() {
        let flag = ["cgroup.freeze", "freezer.self_freezing"]
            .iter()
            .find_map(|f| read_text(&d.join(f)).ok());
        match flag.as_deref().map(str::trim) {
            Some("1") if d == dir => return Frozen::Itself(d.to_path_buf()),
            Some("1") => return Frozen::By(d.to_path_buf()),
            Some(_) => {}
            None if d.exists() => break,
            None => {}
        }
    }
    Frozen::No
}

/// Whether the processes in the existing cgroup `dir` are frozen, by it or by an ancestor, in
/// one read: v1's freezer.state (FROZEN, or FREEZING on the way there), or cgroup2's
/// cgroup.events. For `state`, which must stay cheap.
pub fn frozen_now(dir: &Path) -> bool {
    if let Ok(s) = read_text(&dir.join("freezer.state")) {
        return s.trim() != "THAWED";
    }
    read_text(&dir.join("cgroup.events")).is_ok_and(|e| e.lines().any(|l| l == "frozen 1"))
}

/// Thaws the cgroup directory `dir` itself, without waiting: a killed process then dies.
pub fn thaw(dir: &Path) -> Result<()> {
    let v2 = dir.join("cgroup.freeze");
    if v2.exists() {
        write_file(&v2, "0")
    } else {
        write_file(&dir.join("freezer.state"), "THAWED")
    }
}

/// Polls a cgroup file until it holds `want`. The kernel finishes freezing asynchronously and
/// offers no wakeup for v1; the bound is generous (a few seconds).
pub fn wait_for(file: &Path, want: &str) -> Result<()> {
    let mut delay = std::time::Duration::from_micros(100);
    for _ in 0..20 {
        let now = read_file(file)?;
        if now.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(500));
    }
    Err(Error::msg(format!(
        "{} did not reach {want:?}",
        file.display()
    )))
}

pub fn is_v2() -> bool {
    nix::sys::statfs::statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// The manager for a new container.
pub fn for_container(cgroups_path: Option<&Path>, id: &str) -> Result<Box<dyn CgroupManager>> {
    if systemd::enabled() {
        return Ok(Box::new(systemd::Systemd::for_container(cgroups_path, id)?));
    }
    let rel = cgroups_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(id));
    if is_v2() {
        Ok(Box::new(v2::V2::new(
            CGROUP_ROOT,
            &rel,
            &read_own_cgroups()?,
        )?))
    } else {
        Ok(Box::new(v1::V1::new(&rel, &read_own_cgroups()?)?))
    }
}

/// The manager for an existing container, from the paths saved in its state.
pub fn from_paths(paths: Vec<PathBuf>) -> Box<dyn CgroupManager> {
    let v2 = paths.len() == 1 && is_v2();
    if let Some(s) = systemd::Systemd::of_dirs(&paths, v2) {
        return Box::new(s);
    }
    if v2 {
        Box::new(v2::V2 {
            path: paths.into_iter().next().unwrap_or_default(),
        })
    } else {
        Box::new(v1::V1::from_dirs(paths))
    }
}

/// /proc/self/cgroup as (controllers, path) pairs; v2's line has empty controllers.
pub fn read_own_cgroups() -> Result<Vec<(String, String)>> {
    let f = std::fs::File::open("/proc/self/cgroup").ctx("open /proc/self/cgroup")?;
    parse_proc_cgroup(f).ctx("read /proc/self/cgroup")
}

fn parse_proc_cgroup(r: impl std::io::Read) -> procfs::ProcResult<Vec<(String, String)>> {
    use procfs::FromRead;
    Ok(procfs::ProcessCGroups::from_read(r)?
        .into_iter()
        .map(|c| (c.controllers.join(","), c.pathname))
        .collect())
}

/// Joins a container's cgroupsPath onto a hierarchy, runc-style.
pub fn resolve(mount: &Path, own: &str, rel: &Path) -> PathBuf {
    let inner = if rel.is_absolute() {
        rel.to_path_buf()
    } else {
        Path::new(own).join(rel)
    };
    // ".." must not climb out of the hierarchy.
    mount.join(crate::util::path::below_root(&inner))
}

/// exec's `--cgroup` arguments: the existing sub-cgroup of the container's cgroup that the
/// process joins, `PATH` for every hierarchy or `CONTROLLER[,CONTROLLER]:PATH` for some (runc's
/// syntax and words).
pub struct SubCgroups<'a> {
    all: Option<&'a str>,
    some: Vec<(&'a str, &'a str)>,
}

impl<'a> SubCgroups<'a> {
    pub fn parse(args: &'a [String]) -> Result<Self> {
        let mut all = None;
        let mut some = Vec::new();
        for a in args {
            match a.splitn(3, ':').collect::<Vec<_>>()[..] {
                [path] if args.len() == 1 => all = Some(path),
                [_] => {
                    return Err(Error::msg(format!(
                        "invalid --cgroup argument: {a} (missing <controller>: prefix)"
                    )))
                }
                [ctrls, path] => some.extend(ctrls.split(',').map(|c| (c, path))),
                _ => return Err(Error::msg(format!("invalid --cgroup argument: {a}"))),
            }
        }
        // runc keeps these in a map keyed by controller, "" meaning all of them.
        if let Some(i) = some.iter().rposition(|(c, _)| c.is_empty()) {
            all = Some(some.remove(i).1);
        }
        Ok(SubCgroups { all, some })
    }

    /// The container's cgroup `dirs`, moved to the sub-cgroups; each must stay below its own.
    pub fn apply(&self, dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if let Some(path) = self.all {
            return dirs.iter().map(|d| below(d, path)).collect();
        }
        let hierarchies = if self.some.is_empty() || is_v2() {
            vec![]
        } else {
            v1::hierarchies()?
        };
        let mut out = dirs.to_vec();
        for &(ctrl, path) in &self.some {
            let mut known = false;
            for (i, d) in dirs.iter().enumerate() {
                let carries = hierarchies
                    .iter()
                    .filter(|h| d.starts_with(&h.mount))
                    .max_by_key(|h| h.mount.as_os_str().len())
                    .is_some_and(|h| h.controllers.iter().any(|c| c == ctrl));
                if carries {
                    out[i] = below(d, path)?;
                    known = true;
                }
            }
            if !known {
                return Err(Error::msg(format!(
                    "unknown controller {ctrl} in SubCgroupPaths"
                )));
            }
        }
        Ok(out)
    }
}

/// `base` joined with `path`, which must not climb above it.
fn below(base: &Path, path: &str) -> Result<PathBuf> {
    let mut out = base.to_path_buf();
    for c in Path::new(path).components() {
        match c {
            std::path::Component::Normal(p) => out.push(p),
            std::path::Component::ParentDir if out != base => {
                out.pop();
            }
            std::path::Component::ParentDir => {
                return Err(Error::msg(format!("{path} is not a sub cgroup path")))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Removes a cgroup directory and its descendants, deepest first. A cgroup whose last process
/// is still exiting reports EBUSY for a moment; that is retried a bounded number of times.
pub fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_ctx(|| format!("read {}", dir.display())),
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    let mut delay = std::time::Duration::from_millis(1);
    for _ in 0..12 {
        match rmdir(dir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e).with_ctx(|| format!("rmdir {}", dir.display())),
        }
    }
    rmdir(dir).with_ctx(|| format!("rmdir {}", dir.display()))
}

fn rmdir(dir: &Path) -> nix::Result<()> {
    std::fs::remove_dir(dir)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Writes one value to a control file, as `echo value >> file` would: never creating the file
/// (a missing one means the kernel lacks the knob), and appending, so that a file taking one
/// rule per write (io.max, devices.allow) reads in a fake tree as the list of what was written.
/// Non-blocking, as `read_text`: a fifo in its place (ENXIO) is not waited on.
pub fn write_file(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()))
        .with_ctx(|| format!("write {value:?} to {}", path.display()))
}

/// A control file's content. Cgroup paths come from the state directory: whatever stands in
/// for a control file there is read without waiting (see util::read_regular).
fn read_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(crate::util::read_regular(path)?).map_err(std::io::Error::other)
}

/// A control file's content, trimmed.
pub fn read_file(path: &Path) -> Result<String> {
    read_text(path)
        .map(|s| s.trim().to_string())
        .with_ctx(|| format!("read {}", path.display()))
}

/// A control file's content, trimmed; None if it does not exist (a knob the kernel lacks, a
/// controller not enabled, a cgroup gone).
pub fn read_file_opt(path: &Path) -> Result<Option<String>> {
    match read_file(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A number, as runc reads one from a cgroup file (see stats::parse_u64).
pub fn read_u64(path: &Path) -> Result<u64> {
    stats::parse_u64(&read_file(path)?, path)
}

/// A pids limit as pids.max takes it: a positive number, or "max" for any negative one.
pub fn max_or(v: i64) -> String {
    if v > 0 {
        v.to_string()
    } else {
        "max".into()
    }
}

/// Says what of `r` no cgroup file takes, rather than dropping it silently: kernel memory
/// limits (runc's warning), hierarchy turned off (memory cgroups are always hierarchical since
/// Linux 5.16, and husk never writes memory.use_hierarchy), and on v2 the knobs only v1 has
/// (runc ignores them there without a word).
pub fn warn_unapplied(r: &LinuxResources, v2: bool) {
    let mut v1_only = Vec::new();
    if let Some(m) = r.memory() {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            log::warn!("Kernel memory settings are ignored and will be removed");
        }
        if m.use_hierarchy() == Some(false) {
            log::warn!(
                "linux.resources.memory.useHierarchy: false is ignored, memory cgroups are always hierarchical"
            );
        }
        // u64::MAX is Go's int64 -1 ("unset") read as unsigned.
        if m.swappiness().is_some_and(|s| s != u64::MAX) {
            v1_only.push("memory.swappiness");
        }
        if m.disable_oom_killer() == Some(true) {
            v1_only.push("memory.disableOOMKiller");
        }
    }
    if let Some(b) = r.block_io() {
        let devices = b.weight_device().iter().flatten();
        if b.leaf_weight().is_some() || devices.clone().any(|d| d.leaf_weight().is_some()) {
            v1_only.push("blockIO.leafWeight");
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some_and(|id| id != 0) || n.priorities().iter().flatten().count() > 0 {
            v1_only.push("network");
        }
    }
    if v2 {
        for f in v1_only {
            log::warn!("linux.resources.{f}: cgroup v1 only, ignored on this cgroup v2 host");
        }
    }
}

/// Writes hugetlb.<size><suffix> and the same limit on reservations (hugetlb.<size>.rsvd
/// <suffix>) where the kernel has them (since 5.7), as runc does.
pub fn hugetlb(
    limits: &[LinuxHugepageLimit],
    suffix: &str,
    mut write: impl FnMut(&str, &str) -> Result<()>,
) -> Result<()> {
    let mut rsvd = true;
    for l in limits {
        let prefix = format!("hugetlb.{}", l.page_size());
        let v = l.limit().to_string();
        write(&format!("{prefix}{suffix}"), &v)?;
        if rsvd {
            match write(&format!("{prefix}.rsvd{suffix}"), &v) {
                Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => rsvd = false,
                r => r?,
            }
        }
    }
    Ok(())
}

/// One rdma.max line per device ("mlx5_1 hca_handle=3 hca_object=1000"), in name order.
pub fn rdma(
    limits: &HashMap<String, LinuxRdma>,
    mut write: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut devs: Vec<_> = limits.iter().collect();
    devs.sort_by_key(|(name, _)| *name);
    for (name, l) in devs {
        let mut line = name.clone();
        if let Some(h) = l.hca_handles() {
            line += &format!(" hca_handle={h}");
        }
        if let Some(o) = l.hca_objects() {
            line += &format!(" hca_object={o}");
        }
        write(&line)?;
    }
    Ok(())
}

pub fn read_pids(file: &Path) -> Result<Vec<i32>> {
    let text = read_file(file)?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_sub_cgroups_stay_below_the_container() {
        let dirs = vec![PathBuf::from("/cg/a/c1"), PathBuf::from("/cg/b/c1")];
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let apply = |a: &[&str]| SubCgroups::parse(&args(a)).and_then(|s| s.apply(&dirs));
        let ok = |a: &[&str]| apply(a).unwrap();
        let err = |a: &[&str]| apply(a).unwrap_err().to_string();
        assert_eq!(ok(&[]), dirs);
        assert_eq!(ok(&["/"]), dirs);
        assert_eq!(ok(&["a/.."]), dirs);
        assert_eq!(ok(&[":s/t"]), [dirs[0].join("s/t"), dirs[1].join("s/t")]);
        for bad in ["..", "../x", "a/../../x", "/.."] {
            assert_eq!(err(&[bad]), format!("{bad} is not a sub cgroup path"));
        }
        assert_eq!(err(&["a:b:c"]), "invalid --cgroup argument: a:b:c");
        assert_eq!(
            err(&["x", "y"]),
            "invalid --cgroup argument: x (missing <controller>: prefix)"
        );
    }

    #[test]
    fn cgroups_path_semantics() {
        let m = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            resolve(m, "/user/1", Path::new("/abs/c1")),
            m.join("abs/c1")
        );
        assert_eq!(
            resolve(m, "/user/1", Path::new("rel/c1")),
            m.join("user/1/rel/c1")
        );
        assert_eq!(resolve(m, "/", Path::new("c1")), m.join("c1"));
        assert_eq!(resolve(m, "/", Path::new("/../../etc")), m.join("etc"));
    }

    /// A fake hierarchy: `root` has no freezer file, as a real root has none.
    #[test]
    fn frozen_on_a_fake_tree() {
        let root = std::env::temp_dir().join(format!("husk-frozen-{}", std::process::id()));
        for (file, on, off) in [
            ("cgroup.freeze", "1\n", "0\n"),
            ("freezer.self_freezing", "1\n", "0\n"),
        ] {
            let (a, b) = (root.join("a"), root.join("a/b"));
            std::fs::create_dir_all(&b).unwrap();
            let set = |d: &Path, v: &str| std::fs::write(d.join(file), v).unwrap();
            set(&a, off);
            set(&b, off);
            assert_eq!(frozen(&b), Frozen::No);
            assert_eq!(frozen(&b.join("new/c")), Frozen::No);
            set(&b, on);
            assert_eq!(frozen(&b), Frozen::Itself(b.clone()));
            assert_eq!(frozen(&b.join("new")), Frozen::By(b.clone()));
            set(&b, off);
            set(&a, on);
            assert_eq!(frozen(&b), Frozen::By(a.clone()));
            assert_eq!(frozen(&b.join("new")), Frozen::By(a.clone()));
            // A directory without the file (a root, another v1 controller) ends the walk.
            std::fs::remove_file(b.join(file)).unwrap();
            assert_eq!(frozen(&b), Frozen::No);
            // Nor is a fifo in its place waited on.
            nix::unistd::mkfifo(
                &b.join(file),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
            assert_eq!(frozen(&b), Frozen::No);
            std::fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn frozen_now_reads_the_effective_state() {
        let d = std::env::temp_dir().join(format!("husk-frozen-now-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let set = |f: &str, v: &str| std::fs::write(d.join(f), v).unwrap();
        assert!(!frozen_now(&d));
        set("cgroup.events", "populated 1\nfrozen 1\n");
        assert!(frozen_now(&d));
        for (v, want) in [
            ("THAWED\n", false),
            ("FREEZING\n", true),
            ("FROZEN\n", true),
        ] {
            set("freezer.state", v);
            assert_eq!(frozen_now(&d), want, "{v}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The same on a real cgroup2 (the hybrid host's unified hierarchy, or a v2 host's).
    #[test]
    fn frozen_on_a_real_cgroup2() {
        let mount = if is_v2() {
            Path::new(CGROUP_ROOT).to_path_buf()
        } else {
            Path::new(CGROUP_ROOT).join("unified")
        };
        let is_cgroup2 = nix::sys::statfs::statfs(&mount)
            .is_ok_and(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC);
        if !is_cgroup2 || !nix::unistd::Uid::effective().is_root() {
            eprintln!(
                "skipped: no cgroup2 at {} that we may change",
                mount.display()
            );
            return;
        }
        let a = mount.join(format!("husk-frozen-test-{}", std::process::id()));
        let b = a.join("b");
        std::fs::create_dir_all(&b).unwrap();
        let result = std::panic::catch_unwind(|| {
            assert_eq!(frozen(&b), Frozen::No);
            assert!(!frozen_now(&b));
            write_file(&a.join("cgroup.freeze"), "1").unwrap();
            assert_eq!(frozen(&b), Frozen::By(a.clone()));
            // Empty cgroups freeze at once.
            assert!(frozen_now(&b));
            assert_eq!(frozen(&b.join("new")), Frozen::By(a.clone()));
            thaw(&a).unwrap();
            write_file(&b.join("cgroup.freeze"), "1").unwrap();
            assert_eq!(frozen(&b), Frozen::Itself(b.clone()));
            thaw(&b).unwrap();
            assert_eq!(frozen(&b), Frozen::No);
            assert!(!frozen_now(&b));
        });
        std::fs::remove_dir(&b).unwrap();
        std::fs::remove_dir(&a).unwrap();
        result.unwrap();
    }

    #[test]
    fn parses_proc_cgroup() {
        let p = parse_proc_cgroup(&b"4:memory:/a/b\n1:cpu,cpuacct:/\n0::/x\n"[..]).unwrap();
        assert_eq!(p[0], ("memory".into(), "/a/b".into()));
        assert_eq!(p[1], ("cpu,cpuacct".into(), "/".into()));
        assert_eq!(p[2], ("".into(), "/x".into()));
    }
}
