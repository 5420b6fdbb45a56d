//! cgroup v1: one directory per mounted hierarchy (cpu, memory, pids, name=systemd, ...).

use super::devices::Rules;
use super::oom::Watch;
use super::stats::Stats;
use super::{
    read_file, read_pids, read_u64, remove_tree, resolve, write_file, CgroupManager, MountLayout,
};
use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxResources};
use std::path::{Path, PathBuf};

pub struct V1 {
    pub dirs: Vec<PathBuf>,
    /// The mounted hierarchies, when already read (create); `set` reads them otherwise.
    hierarchies: Option<Vec<Hierarchy>>,
}

/// A v1 hierarchy: where it is mounted and which controllers it carries.
pub(super) struct Hierarchy {
    pub(super) mount: PathBuf,
    pub(super) controllers: Vec<String>,
}

pub(super) fn hierarchies() -> Result<Vec<Hierarchy>> {
    Ok(hierarchies_of(crate::util::mountinfo::read()?))
}

/// The hierarchies mounted side by side where the first one is (/sys/fs/cgroup), the first
/// mount of each. A hierarchy mounted elsewhere too is the same one again: CRIU mounts them all
/// under a temporary yard while it dumps, and a directory made there is gone with it. runc
/// likewise looks only beside its cpu hierarchy.
fn hierarchies_of(mounts: Vec<procfs::process::MountInfo>) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    let mut root: Option<PathBuf> = None;
    for m in mounts {
        // A hybrid host also has the unified hierarchy (no controllers); runc joins it too.
        let mut controllers: Vec<String> = match m.fs_type.as_str() {
            "cgroup" => m
                .super_options
                .into_iter()
                .filter(|(o, _)| {
                    !matches!(
                        o.as_str(),
                        "rw" | "ro" | "release_agent" | "clone_children" | "noprefix" | "xattr"
                    )
                })
                // name=systemd is named so in /proc/self/cgroup too.
                .map(|(o, v)| v.map_or_else(|| o.clone(), |v| format!("{o}={v}")))
                .collect(),
            "cgroup2" => Vec::new(),
            _ => continue,
        };
        // Mount options come unordered.
        controllers.sort();
        let parent = m.mount_point.parent().map(Path::to_path_buf);
        if *root.get_or_insert_with(|| parent.clone().unwrap_or_default())
            != parent.unwrap_or_default()
            || out.iter().any(|h| h.controllers == controllers)
        {
            continue;
        }
        out.push(Hierarchy {
            mount: m.mount_point,
            controllers,
        });
    }
    out
}

impl V1 {
    /// A manager for the directories a container was given, as its state remembers them.
    pub fn from_dirs(dirs: Vec<PathBuf>) -> Self {
        V1 {
            dirs,
            hierarchies: None,
        }
    }

    /// The same path below every hierarchy's root, as systemd names a unit's cgroup in each.
    pub fn below_roots(rel: &Path) -> Result<Self> {
        let hs = hierarchies()?;
        if hs.is_empty() {
            return Err(Error::msg("no cgroup v1 hierarchies are mounted"));
        }
        Ok(V1 {
            dirs: hs.iter().map(|h| h.mount.join(rel)).collect(),
            hierarchies: Some(hs),
        })
    }

    pub fn new(rel: &Path, own: &[(String, String)]) -> Result<Self> {
        let mut dirs = Vec::new();
        let hs = hierarchies()?;
        for h in &hs {
            // Our own cgroup in this hierarchy, matched by its controller list.
            let own_path = own
                .iter()
                .find(|(ctrls, _)| {
                    if h.controllers.is_empty() {
                        return ctrls.is_empty();
                    }
                    !ctrls.is_empty()
                        && ctrls
                            .split(',')
                            .all(|c| h.controllers.iter().any(|x| x == c))
                })
                .map(|(_, p)| p.as_str())
                .unwrap_or("/");
            dirs.push(resolve(&h.mount, own_path, rel));
        }
        if dirs.is_empty() {
            return Err(Error::msg("no cgroup v1 hierarchies are mounted"));
        }
        Ok(V1 {
            dirs,
            hierarchies: Some(hs),
        })
    }

    fn dir_with(&self, file: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .map(PathBuf::as_path)
            .find(|d| d.join(file).exists())
    }

    /// A new cpuset cgroup has no cpus or mems, and nothing can join it until they are copied
    /// from its parent (all the way up from the first ancestor that has them).
    fn init_cpuset(dir: &Path) -> Result<()> {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mut chain = vec![dir.to_path_buf()];
            let mut cur = dir.parent();
            while let Some(p) = cur {
                let v = std::fs::read_to_string(p.join(file))
                    .with_ctx(|| format!("read {}", p.join(file).display()))?;
                if !v.trim().is_empty() {
                    for d in chain.iter().rev() {
                        let mine = std::fs::read_to_string(d.join(file)).unwrap_or_default();
                        if mine.trim().is_empty() {
                            write_file(&d.join(file), v.trim())?;
                        }
                    }
                    break;
                }
                chain.push(p.to_path_buf());
                cur = p.parent();
            }
        }
        Ok(())
    }
}

impl CgroupManager for V1 {
    fn create(&self) -> Result<()> {
        for d in &self.dirs {
            std::fs::create_dir_all(d).with_ctx(|| format!("mkdir {}", d.display()))?;
            if d.join("cpuset.cpus").exists() {
                Self::init_cpuset(d)?;
            }
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for d in &self.dirs {
            write_file(&d.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(Error::msg(
                "invalid configuration: cannot use unified on cgroup v1",
            ));
        }
        super::warn_unapplied(r, false);
        let read;
        let hs = match &self.hierarchies {
            Some(hs) => hs,
            None => {
                read = hierarchies()?;
                &read
            }
        };
        let ctl = |name: &'static str| Ctl {
            name,
            dir: hs
                .iter()
                .filter(|h| h.controllers.iter().any(|c| c == name))
                .find_map(|h| self.dirs.iter().find(|d| d.starts_with(&h.mount)))
                .map(PathBuf::as_path),
        };
        // runc's order of controllers.
        if let Some(c) = r.cpu() {
            cpuset(&ctl("cpuset"), c)?;
        }
        // Only when given: `update` leaves a live container's device rules alone otherwise.
        if let Some(rules) = r.devices() {
            devices(&ctl("devices"), rules)?;
        }
        if let Some(m) = r.memory() {
            memory(&ctl("memory"), m)?;
        }
        if let Some(c) = r.cpu() {
            cpu(&ctl("cpu"), c)?;
        }
        if let Some(p) = r.pids().filter(|p| p.limit() != 0) {
            ctl("pids").write("pids.max", &super::max_or(p.limit()))?;
        }
        if let Some(b) = r.block_io() {
            blkio(&ctl("blkio"), b)?;
        }
        if let Some(h) = r.hugepage_limits() {
            let c = ctl("hugetlb");
            super::hugetlb(h, ".limit_in_bytes", |f, v| c.write(f, v))?;
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id().filter(|id| *id != 0) {
                ctl("net_cls").write("net_cls.classid", &id.to_string())?;
            }
            for p in n.priorities().iter().flatten() {
                ctl("net_prio").write(
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        if let Some(rdma) = r.rdma() {
            let c = ctl("rdma");
            super::rdma(rdma, |v| c.write("rdma.max", v))?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        // Every process is in each hierarchy; the first one tells them all.
        let Some(d) = self.dirs.first() else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        collect_pids(d, &mut out)?;
        Ok(out)
    }

    fn destroy(&self) -> Result<()> {
        for d in &self.dirs {
            remove_tree(d)?;
        }
        Ok(())
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.clone()
    }

    /// The freezer hierarchy's directory, then the unified hierarchy's (whose cgroup.freeze
    /// works without controllers).
    fn freezer_paths(&self) -> Vec<PathBuf> {
        let Some(hs) = &self.hierarchies else {
            return self.dirs.clone();
        };
        // `new` made one directory per hierarchy, in order.
        let with = |v1: bool| {
            self.dirs.iter().zip(hs).filter(move |(_, h)| match v1 {
                true => h.controllers.iter().any(|c| c == "freezer"),
                false => h.controllers.is_empty(),
            })
        };
        with(true)
            .chain(with(false))
            .map(|(d, _)| d.clone())
            .collect()
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let d = self
            .dir_with("freezer.state")
            .ok_or_else(|| Error::msg("no freezer cgroup is mounted"))?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        write_file(&d.join("freezer.state"), want)?;
        super::wait_for(&d.join("freezer.state"), want)
    }

    fn stats(&self) -> Result<Stats> {
        super::stats::v1(&self.dirs)
    }

    fn oom_watch(&self) -> Result<Watch> {
        // The cgroup2 directory of a hybrid host has no memory.oom_control, but be sure.
        let dir = self
            .dirs
            .iter()
            .find(|d| {
                d.join("memory.oom_control").exists() && !d.join("cgroup.controllers").exists()
            })
            .ok_or_else(|| Error::msg("memory controller missing"))?;
        Watch::v1(dir)
    }

    fn mount_layout(&self) -> MountLayout {
        // The hierarchy's mount point is the first component below /sys/fs/cgroup.
        let list = self
            .dirs
            .iter()
            .filter_map(|dir| {
                let rel = dir.strip_prefix(super::CGROUP_ROOT).ok()?;
                let name = rel.components().next()?;
                Some((PathBuf::from(name.as_os_str()), dir.clone()))
            })
            .collect();
        MountLayout::Hierarchies(list)
    }
}

pub(crate) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    match read_pids(&dir.join("cgroup.procs")) {
        Ok(p) => out.extend(p),
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    }
    for e in std::fs::read_dir(dir)
        .with_ctx(|| format!("read {}", dir.display()))?
        .flatten()
    {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// One controller's directory, or none when its hierarchy is not mounted. As in runc, that is
/// an error only when there is something to write.
struct Ctl<'a> {
    name: &'static str,
    dir: Option<&'a Path>,
}

impl Ctl<'_> {
    fn file(&self, file: &str) -> Result<PathBuf> {
        self.dir.map(|d| d.join(file)).ok_or_else(|| {
            Error::msg(format!(
                "cannot set {} limit: container could not join or create cgroup",
                self.name
            ))
        })
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        write_file(&self.file(file)?, value)
    }

    fn has(&self, file: &str) -> bool {
        self.dir.is_some_and(|d| d.join(file).exists())
    }
}

fn cpuset(c: &Ctl, cpu: &LinuxCpu) -> Result<()> {
    for (file, v) in [("cpuset.cpus", cpu.cpus()), ("cpuset.mems", cpu.mems())] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            c.write(file, v)?;
        }
    }
    Ok(())
}

/// Moves the cgroup's device rules to the container's with the fewest writes.
fn devices(c: &Ctl, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let target = Rules::for_container(rules)?;
    let list = c.file("devices.list")?;
    let now = Rules::from_list(&read_file(&list)?)?;
    for (allow, rule) in now.transition(&target) {
        c.write(
            if allow {
                "devices.allow"
            } else {
                "devices.deny"
            },
            &rule,
        )?;
    }
    Ok(())
}

fn memory(c: &Ctl, m: &LinuxMemory) -> Result<()> {
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    // 0 means "leave as is", -1 "no limit".
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    if limit == -1 && swap == 0 && c.has(MEMSW) {
        // No memory limit means no memory+swap limit either.
        swap = -1;
    }
    // memsw may never be below the memory limit: when raising both, swap goes first.
    let swap_first = limit != 0
        && swap != 0
        && (swap == -1 || read_u64(&c.file("memory.limit_in_bytes")?)? < swap as u64);
    let set_swap = || -> Result<()> {
        if swap == 0 {
            return Ok(());
        }
        if !c.has(MEMSW) && c.dir.is_some() {
            if swap > 0 && swap != limit {
                return Err(Error::msg(
                    "linux.resources.memory.swap: swap accounting is not enabled on this host",
                ));
            }
            return Ok(());
        }
        c.write(MEMSW, &swap.to_string())
    };
    if swap_first {
        set_swap()?;
        memory_limit(c, limit)?;
    } else {
        memory_limit(c, limit)?;
        set_swap()?;
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        c.write("memory.soft_limit_in_bytes", &v.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        c.write("memory.oom_control", "1")?;
    }
    match m.swappiness() {
        // u64::MAX is Go's int64 -1 ("unset") read as unsigned.
        None | Some(u64::MAX) => {}
        Some(s) if s <= 100 => c.write("memory.swappiness", &s.to_string())?,
        Some(s) => {
            return Err(Error::msg(format!(
                "invalid memory swappiness value: {s} (valid range is 0-100)"
            )))
        }
    }
    // useHierarchy is left alone, as runc does: kernels since 5.16 are always hierarchical and
    // refuse 0 (warn_unapplied says so). checkBeforeUpdate needs no check here: v1 itself refuses a limit below the
    // usage it cannot reclaim (EBUSY, reported below).
    Ok(())
}

fn memory_limit(c: &Ctl, limit: i64) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    match c.write("memory.limit_in_bytes", &limit.to_string()) {
        Err(e) if e.errno() == Some(nix::errno::Errno::EBUSY) => Err(Error::msg(format!(
            "unable to set memory limit to {limit} (current usage: {}, peak usage: {})",
            read_u64(&c.file("memory.usage_in_bytes")?)?,
            read_u64(&c.file("memory.max_usage_in_bytes")?)?
        ))),
        r => r,
    }
}

fn cpu(c: &Ctl, cpu: &LinuxCpu) -> Result<()> {
    if let Some(s) = cpu.shares().filter(|s| *s != 0) {
        c.write("cpu.shares", &s.to_string())?;
        // The kernel clamps out-of-range shares; runc reports the bound instead.
        let got = read_u64(&c.file("cpu.shares")?)?;
        if s > got {
            return Err(Error::msg(format!(
                "the maximum allowed cpu-shares is {got}"
            )));
        }
        if s < got {
            return Err(Error::msg(format!(
                "the minimum allowed cpu-shares is {got}"
            )));
        }
    }
    let quota = cpu.quota().unwrap_or(0);
    // A new period (or burst) can be refused (EINVAL) until the quota that goes with it is
    // written; then it is written again after the quota.
    let retry = |file: &str, v: Option<u64>| -> Result<Option<String>> {
        let Some(v) = v else { return Ok(None) };
        match c.write(file, &v.to_string()) {
            Err(e) if e.errno() == Some(nix::errno::Errno::EINVAL) && quota != 0 => {
                Ok(Some(v.to_string()))
            }
            r => r.map(|()| None),
        }
    };
    let period = retry("cpu.cfs_period_us", cpu.period().filter(|p| *p != 0))?;
    // Kernels before 5.14 have no burst; runc 1.2 then leaves it unset.
    let burst = match cpu.burst() {
        Some(b) if c.has("cpu.cfs_burst_us") => retry("cpu.cfs_burst_us", Some(b))?,
        _ => None,
    };
    if quota != 0 {
        c.write("cpu.cfs_quota_us", &quota.to_string())?;
        if let Some(p) = period {
            c.write("cpu.cfs_period_us", &p)?;
        }
        if let Some(b) = burst {
            c.write("cpu.cfs_burst_us", &b)?;
        }
    }
    // cpu.idle exists in v1 only on kernels since 5.15 (SCHED_IDLE for groups).
    if let Some(i) = cpu.idle() {
        if c.has("cpu.idle") {
            c.write("cpu.idle", &i.to_string())?;
        }
    }
    if let Some(p) = cpu.realtime_period().filter(|p| *p != 0) {
        c.write("cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = cpu.realtime_runtime().filter(|r| *r != 0) {
        c.write("cpu.rt_runtime_us", &r.to_string())?;
    }
    Ok(())
}

fn blkio(c: &Ctl, b: &LinuxBlockIo) -> Result<()> {
    // CFQ's files, or BFQ's where CFQ is gone (kernels since 5.0).
    let (weight, weight_device) = if c.has("blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        c.write(weight, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        c.write("blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            c.write(weight_device, &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            c.write(
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    for (file, devs) in [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ] {
        for d in devs.iter().flatten() {
            c.write(file, &format!("{}:{} {}", d.major(), d.minor(), d.rate()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_are_those_beside_the_first_once_each() {
        let text = "\
30 23 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n\
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n\
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
90 60 0:29 / /tmp/criu.cgyard.x/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
91 60 0:31 / /tmp/criu.cgyard.x/hugetlb rw - cgroup cgroup rw,hugetlb\n\
92 30 0:30 / /sys/fs/cgroup/memory2 rw - cgroup cgroup rw,memory\n";
        let hs = hierarchies_of(crate::util::mountinfo::parse(text.as_bytes()).unwrap());
        let got: Vec<(&str, String)> = hs
            .iter()
            .map(|h| (h.mount.to_str().unwrap(), h.controllers.join(",")))
            .collect();
        assert_eq!(
            got,
            [
                ("/sys/fs/cgroup/unified", String::new()),
                ("/sys/fs/cgroup/systemd", "name=systemd".to_string()),
                ("/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct".to_string()),
                ("/sys/fs/cgroup/memory", "memory".to_string()),
            ]
        );
    }
}
