//! Cgroups behind one trait, with a v1 (per-controller hierarchies) and a v2 (unified)
//! implementation. `cgroupsPath` follows runc's fs driver: absolute paths are taken from the
//! hierarchy's root, relative ones from husk's own cgroup, and an empty one means the
//! container's id under husk's own cgroup.

pub mod bpf;
pub mod devices;
pub mod oom;
pub mod stats;
pub mod v1;
pub mod v2;

use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxHugepageLimit, LinuxRdma, LinuxResources};
use std::collections::HashMap;
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
}

/// Polls a cgroup file until it holds `want`. The kernel finishes freezing asynchronously and
/// offers no wakeup for v1; the bound is generous (a few seconds).
pub fn wait_for(file: &Path, want: &str) -> Result<()> {
    let mut delay = std::time::Duration::from_micros(100);
    for _ in 0..20 {
        let now = std::fs::read_to_string(file).with_ctx(|| format!("read {}", file.display()))?;
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
    if paths.len() == 1 && is_v2() {
        Box::new(v2::V2 {
            path: paths.into_iter().next().unwrap_or_default(),
        })
    } else {
        Box::new(v1::V1::from_dirs(paths))
    }
}

/// /proc/self/cgroup as (controllers, path) pairs; v2's line has empty controllers.
pub fn read_own_cgroups() -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ctx("read /proc/self/cgroup")?;
    Ok(parse_proc_cgroup(&text))
}

pub fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// Joins a container's cgroupsPath onto a hierarchy, runc-style.
pub fn resolve(mount: &Path, own: &str, rel: &Path) -> PathBuf {
    let inner = if rel.is_absolute() {
        rel.to_path_buf()
    } else {
        Path::new(own).join(rel)
    };
    let inner = inner.strip_prefix("/").unwrap_or(&inner);
    // ".." must not climb out of the hierarchy.
    let mut clean = PathBuf::new();
    for c in inner.components() {
        match c {
            std::path::Component::Normal(p) => clean.push(p),
            std::path::Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    mount.join(clean)
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
pub fn write_file(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()))
        .with_ctx(|| format!("write {value:?} to {}", path.display()))
}

/// A control file's content, trimmed.
pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .with_ctx(|| format!("read {}", path.display()))
}

pub fn read_u64(path: &Path) -> Result<u64> {
    let v = read_file(path)?;
    v.parse()
        .map_err(|_| Error::msg(format!("{}: not a number: {v:?}", path.display())))
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
    let text = std::fs::read_to_string(file).with_ctx(|| format!("read {}", file.display()))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn parses_proc_cgroup() {
        let p = parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/\n0::/x\n");
        assert_eq!(p[0], ("memory".into(), "/a/b".into()));
        assert_eq!(p[1], ("cpu,cpuacct".into(), "/".into()));
        assert_eq!(p[2], ("".into(), "/x".into()));
    }
}
