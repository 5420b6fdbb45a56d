//! cgroup v2: one directory in the unified hierarchy.

use super::devices::Rules;
use super::oom::Watch;
use super::stats::Stats;
use super::{
    bpf, read_file, read_u64, remove_tree, resolve, write_file, CgroupManager, MountLayout,
};
use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub struct V2 {
    pub path: PathBuf,
}

impl V2 {
    /// A relative `rel` goes below the parent of our own cgroup, as runc's fs2 driver puts it:
    /// our own (a login's session scope, a delegated service's leaf) has processes, so no
    /// controller could be enabled for a cgroup below it.
    pub fn new(mount: &str, rel: &Path, own: &[(String, String)]) -> Result<Self> {
        let own_path = own
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| Path::new(p.as_str()))
            .unwrap_or(Path::new("/"));
        let base = own_path.parent().unwrap_or(own_path);
        Ok(V2 {
            path: resolve(Path::new(mount), &base.to_string_lossy(), rel),
        })
    }

    /// Enables the controllers a limit needs in every ancestor's cgroup.subtree_control.
    fn enable_controllers(&self, root: &Path) -> Result<()> {
        let available =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let want: Vec<String> = available
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect();
        if want.is_empty() {
            return Ok(());
        }
        let mut cur = root.to_path_buf();
        let rel = self
            .path
            .strip_prefix(root)
            .unwrap_or(&self.path)
            .to_path_buf();
        for comp in rel.components() {
            // Enabling in a cgroup that has processes of its own fails (no internal processes);
            // such a parent simply keeps its controllers as they are.
            let ctl = cur.join("cgroup.subtree_control");
            if std::fs::write(&ctl, want.join(" ")).is_err() {
                log::debug!("cannot enable controllers in {}", ctl.display());
            }
            cur.push(comp);
        }
        Ok(())
    }
}

impl CgroupManager for V2 {
    fn create(&self) -> Result<()> {
        let root = Path::new(super::CGROUP_ROOT);
        // The ancestors exist before their subtree_control is written: containerd's
        // "/NAMESPACE/ID" would otherwise get no controller in NAMESPACE, as runc's mkdir of
        // each level before enabling avoids.
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).with_ctx(|| format!("mkdir {}", parent.display()))?;
        }
        if self.path.starts_with(root) {
            self.enable_controllers(root)?;
        }
        std::fs::create_dir_all(&self.path).with_ctx(|| format!("mkdir {}", self.path.display()))
    }

    fn apply(&self, pid: i32) -> Result<()> {
        write_file(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// Moving a process in takes the kernel's cgroup_threadgroup_rwsem for writing, which waits
    /// for an RCU grace period; a process cloned into the cgroup waits for nothing.
    fn clone_target(&self) -> Option<OwnedFd> {
        use nix::fcntl::OFlag;
        nix::fcntl::open(
            &self.path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .inspect_err(|e| log::debug!("open {}: {e}", self.path.display()))
        .ok()
    }

    /// runc's fs2 driver, in its order. Net classes and priorities have no v2 controller and
    /// are ignored, as runc ignores them; so are swappiness, disableOOMKiller and leafWeight,
    /// with a warning each.
    fn set(&self, r: &LinuxResources) -> Result<()> {
        super::warn_unapplied(r, true);
        let p = &self.path;
        if let Some(pids) = r.pids().filter(|p| p.limit() != 0) {
            write_file(&p.join("pids.max"), &super::max_or(pids.limit()))?;
        }
        if let Some(m) = r.memory() {
            memory(p, m)?;
        }
        if let Some(b) = r.block_io() {
            io(p, b)?;
        }
        if let Some(c) = r.cpu() {
            cpu(p, c)?;
        }
        // Only when given: `update` leaves a live container's device rules alone otherwise.
        if let Some(rules) = r.devices() {
            let program = bpf::program(&Rules::for_container(rules)?);
            match bpf::attach(p, &program) {
                // runc's rule: a rootless container's device rules are not expected to load (a
                // BPF program needs privilege); its user namespace keeps mknod out anyway.
                Err(e) if crate::rootless::cgroups_optional() => {
                    log::debug!("rootless: device rules not applied: {e}")
                }
                r => r?,
            }
        }
        if let Some(c) = r.cpu() {
            for (file, v) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    write_file(&p.join(file), v)?;
                }
            }
        }
        if let Some(h) = r.hugepage_limits() {
            super::hugetlb(h, ".max", |f, v| write_file(&p.join(f), v))?;
        }
        if let Some(rdma) = r.rdma() {
            super::rdma(rdma, |v| write_file(&p.join("rdma.max"), v))?;
        }
        if let Some(u) = r.unified() {
            unified(p, u)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        super::v1::collect_pids(&self.path, &mut out)?;
        Ok(out)
    }

    fn destroy(&self) -> Result<()> {
        remove_tree(&self.path)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        write_file(
            &self.path.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        super::wait_for(
            &self.path.join("cgroup.events"),
            if frozen { "frozen 1" } else { "frozen 0" },
        )
    }

    fn stats(&self) -> Result<Stats> {
        super::stats::v2(&self.path)
    }

    fn oom_watch(&self) -> Result<Watch> {
        Watch::v2(&self.path)
    }

    fn mount_layout(&self) -> MountLayout {
        MountLayout::Unified(self.path.clone())
    }
}

/// A memory value as the v2 files take it: 0 is "leave as is" (None), -1 is "max".
fn mem_value(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

/// v1's memory+swap limit as v2's swap-only memory.swap.max (runc's conversion): -1 stays "no
/// limit", and an unlimited memory with swap unset is unlimited swap too.
pub fn swap_value(swap: i64, memory: i64) -> Result<i64> {
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err(Error::msg("unable to set swap limit without memory limit"));
    }
    if memory < 0 {
        return Err(Error::msg(format!("invalid memory value: {memory}")));
    }
    if swap < memory {
        return Err(Error::msg("memory+swap limit should be >= memory limit"));
    }
    Ok(swap - memory)
}

fn memory(p: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    let reservation = m.reservation().unwrap_or(0);
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    if m.check_before_update() == Some(true) && (limit > 0 || swap > 0) {
        // Best effort, as in runc: no usage to compare with is no reason to fail.
        if let Ok(usage) = read_u64(&p.join("memory.current")) {
            if swap > 0 && swap as u64 <= usage {
                return Err(Error::msg(format!(
                    "rejecting memory+swap limit {swap} <= usage {usage}"
                )));
            }
            if limit > 0 && limit as u64 <= usage {
                return Err(Error::msg(format!(
                    "rejecting memory limit {limit} <= usage {usage}"
                )));
            }
        }
    }
    let s = swap_value(swap, limit)?;
    // Equal memory and memory+swap limits mean no swap at all.
    let s = mem_value(s).or_else(|| (s == 0 && swap > 0).then(|| "0".into()));
    if let Some(s) = s {
        write_file(&p.join("memory.swap.max"), &s)?;
    }
    if let Some(v) = mem_value(limit) {
        write_file(&p.join("memory.max"), &v)?;
    }
    if let Some(v) = mem_value(reservation) {
        write_file(&p.join("memory.low"), &v)?;
    }
    Ok(())
}

/// runc's conversion of cpu shares [2, 262144] to cgroup v2 weight [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// runc's conversion of a blkio weight [10, 1000] to io.weight [1, 10000].
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

fn io(p: &Path, b: &LinuxBlockIo) -> Result<()> {
    // BFQ takes blkio's weights as they are; without it, io.weight gets a converted one.
    let bfq = p.join("io.bfq.weight");
    let has_bfq = bfq.exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if has_bfq {
            write_file(&bfq, &w.to_string())?;
        } else {
            write_file(&p.join("io.weight"), &blkio_to_io_weight(w).to_string())?;
        }
    }
    // Per-device weights need a BFQ that lists them ("default 100" and device lines; older
    // kernels show a bare number); elsewhere they are ignored, as runc ignores them.
    let per_device = has_bfq && read_file(&bfq)?.parse::<i64>().is_err();
    if per_device {
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                write_file(&bfq, &format!("{}:{} {w}", d.major(), d.minor()))?;
            }
        }
    }
    for (key, devs) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for d in devs.iter().flatten() {
            let line = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            write_file(&p.join("io.max"), &line)?;
        }
    }
    Ok(())
}

fn cpu(p: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(i) = c.idle() {
        write_file(&p.join("cpu.idle"), &i.to_string())?;
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        // runc's conversion underflows below 2 and overflows cpu.weight above 262144, so the
        // write fails there; the bound is named as on v1.
        if s < 2 {
            return Err(Error::msg("the minimum allowed cpu-shares is 2".to_owned()));
        }
        if s > 262_144 {
            return Err(Error::msg(
                "the maximum allowed cpu-shares is 262144".to_owned(),
            ));
        }
        write_file(&p.join("cpu.weight"), &shares_to_weight(s).to_string())?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    // A burst above the current quota is refused (EINVAL) until the new quota is in.
    let mut burst_later = None;
    if let Some(b) = c.burst() {
        match write_file(&p.join("cpu.max.burst"), &b.to_string()) {
            Err(e) if e.errno() == Some(nix::errno::Errno::EINVAL) && quota != 0 => {
                burst_later = Some(b)
            }
            r => r?,
        }
    }
    if quota != 0 || period != 0 {
        // One file holds both: the one not given keeps its current value (at create, no
        // quota and the kernel's default period).
        let now = read_file(&p.join("cpu.max")).unwrap_or_default();
        let mut now = now.lines().last().unwrap_or("").split_whitespace();
        let (now_quota, now_period) = (now.next(), now.next());
        let q = match quota {
            0 => now_quota.unwrap_or("max").to_string(),
            q if q > 0 => q.to_string(),
            _ => "max".into(),
        };
        let period = match period {
            0 => now_period.and_then(|p| p.parse().ok()).unwrap_or(100_000),
            p => p,
        };
        write_file(&p.join("cpu.max"), &format!("{q} {period}"))?;
        if let Some(b) = burst_later {
            write_file(&p.join("cpu.max.burst"), &b.to_string())?;
        }
    }
    Ok(())
}

/// The `unified` map: each key a file of the container's cgroup, written as is, after
/// everything else. Keys are taken in name order.
fn unified(p: &Path, u: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort();
    for (k, v) in keys {
        if k.contains('/') {
            return Err(Error::msg(format!(
                "unified resource {k:?} must be a file name (no slashes)"
            )));
        }
        let Err(e) = write_file(&p.join(k), v) else {
            continue;
        };
        use nix::errno::Errno;
        if matches!(e.errno(), Some(Errno::EPERM | Errno::ENOENT)) {
            // Name the missing controller if that is what is wrong.
            let Some((ctrl, _)) = k.split_once('.') else {
                return Err(Error::msg(format!(
                    "unified resource {k:?} must be in the form CONTROLLER.PARAMETER"
                )));
            };
            let available =
                std::fs::read_to_string(p.join("cgroup.controllers")).unwrap_or_default();
            if ctrl != "cgroup" && !available.split_whitespace().any(|c| c == ctrl) {
                return Err(Error::msg(format!(
                    "unified resource {k:?} can't be set: controller {ctrl:?} not available"
                )));
            }
        }
        return Err(e).ctx(format!("unable to set unified resource {k:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A fake cgroup v2 directory holding the given control files (with initial contents);
    /// writes to any other file fail with ENOENT, as they do where the kernel lacks the knob.
    struct Fake(PathBuf);

    impl Fake {
        fn new(files: &[(&str, &str)]) -> Fake {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "husk-v2-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&dir).unwrap();
            for (f, v) in files {
                std::fs::write(dir.join(f), v).unwrap();
            }
            Fake(dir)
        }

        fn set(&self, r: serde_json::Value) -> Result<()> {
            let r: LinuxResources = serde_json::from_value(r).unwrap();
            V2 {
                path: self.0.clone(),
            }
            .set(&r)
        }

        fn read(&self, f: &str) -> String {
            std::fs::read_to_string(self.0.join(f)).unwrap()
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).unwrap();
        }
    }

    const MEMORY: &[(&str, &str)] = &[
        ("memory.max", ""),
        ("memory.swap.max", ""),
        ("memory.low", ""),
        ("memory.current", "1000000\n"),
    ];

    #[test]
    fn relative_paths_go_below_the_parent_of_our_cgroup() {
        let own = |p: &str| vec![(String::new(), p.to_owned())];
        let at = |rel: &str, mine: &str| {
            V2::new("/sys/fs/cgroup", Path::new(rel), &own(mine))
                .unwrap()
                .path
        };
        let p = PathBuf::from;
        assert_eq!(
            at("c1", "/user.slice/user-0.slice/session-1.scope"),
            p("/sys/fs/cgroup/user.slice/user-0.slice/c1")
        );
        assert_eq!(at("a/c1", "/deleg/session"), p("/sys/fs/cgroup/deleg/a/c1"));
        assert_eq!(at("c1", "/"), p("/sys/fs/cgroup/c1"));
        assert_eq!(at("/abs/c1", "/deleg/session"), p("/sys/fs/cgroup/abs/c1"));
        assert_eq!(at("../../x", "/a/b"), p("/sys/fs/cgroup/x"));
    }

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10000);
    }

    #[test]
    fn blkio_weight_converts_like_runc() {
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }

    #[test]
    fn memory_swap_is_swap_alone() {
        let t = Fake::new(MEMORY);
        t.set(json!({"memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432}}))
            .unwrap();
        assert_eq!(t.read("memory.swap.max"), "67108864\n");
        assert_eq!(t.read("memory.max"), "67108864\n");
        assert_eq!(t.read("memory.low"), "33554432\n");

        // -1 is "max"; no memory limit and no swap given is no swap limit either.
        let t = Fake::new(MEMORY);
        t.set(json!({"memory": {"limit": -1}})).unwrap();
        assert_eq!(t.read("memory.swap.max"), "max\n");
        assert_eq!(t.read("memory.max"), "max\n");
        assert_eq!(t.read("memory.low"), "");

        // memory+swap equal to memory: no swap at all.
        let t = Fake::new(MEMORY);
        t.set(json!({"memory": {"limit": 4096000, "swap": 4096000}}))
            .unwrap();
        assert_eq!(t.read("memory.swap.max"), "0\n");
    }

    #[test]
    fn memory_swap_errors_like_runc() {
        for (m, want) in [
            (
                json!({"swap": 1000}),
                "unable to set swap limit without memory limit",
            ),
            (
                json!({"limit": 2000, "swap": 1000}),
                "memory+swap limit should be >= memory limit",
            ),
        ] {
            let t = Fake::new(MEMORY);
            let e = t.set(json!({ "memory": m })).unwrap_err();
            assert_eq!(e.to_string(), want);
            assert_eq!(t.read("memory.max"), "");
        }
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let t = Fake::new(MEMORY);
        let e = t
            .set(json!({"memory": {"limit": 500000, "checkBeforeUpdate": true}}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rejecting memory limit 500000 <= usage 1000000"
        );
        assert_eq!(t.read("memory.max"), "");
        let e = t
            .set(json!({"memory": {"limit": 2000000, "swap": 900000, "checkBeforeUpdate": true}}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rejecting memory+swap limit 900000 <= usage 1000000"
        );
        // Without the check, the kernel decides.
        t.set(json!({"memory": {"limit": 500000}})).unwrap();
        assert_eq!(t.read("memory.max"), "500000\n");
        t.set(json!({"memory": {"limit": 2000000, "checkBeforeUpdate": true}}))
            .unwrap();
        assert_eq!(t.read("memory.max"), "500000\n2000000\n");
    }

    #[test]
    fn shares_out_of_range_are_refused_naming_the_bound() {
        let t = Fake::new(&[("cpu.weight", "")]);
        let e = t.set(json!({"cpu": {"shares": 1}})).unwrap_err();
        assert_eq!(e.to_string(), "the minimum allowed cpu-shares is 2");
        let e = t.set(json!({"cpu": {"shares": 262_145}})).unwrap_err();
        assert_eq!(e.to_string(), "the maximum allowed cpu-shares is 262144");
        assert_eq!(t.read("cpu.weight"), "", "nothing written");
        t.set(json!({"cpu": {"shares": 262_144}})).unwrap();
        assert_eq!(t.read("cpu.weight"), "10000\n");
    }

    #[test]
    fn cpu_files() {
        let t = Fake::new(&[
            ("cpu.weight", ""),
            ("cpu.max", ""),
            ("cpu.max.burst", ""),
            ("cpu.idle", ""),
            ("cpuset.cpus", ""),
            ("cpuset.mems", ""),
        ]);
        t.set(
            json!({"cpu": {"shares": 1024, "quota": 50000, "period": 200000, "burst": 10000,
                             "idle": 0, "cpus": "0-1", "mems": ""}}),
        )
        .unwrap();
        assert_eq!(t.read("cpu.weight"), "39\n");
        assert_eq!(t.read("cpu.max"), "50000 200000\n");
        assert_eq!(t.read("cpu.max.burst"), "10000\n");
        assert_eq!(t.read("cpu.idle"), "0\n");
        assert_eq!(t.read("cpuset.cpus"), "0-1\n");
        assert_eq!(t.read("cpuset.mems"), "", "an empty list is left alone");
        // A period alone keeps the quota, a quota alone the period.
        t.set(json!({"cpu": {"period": 250000}})).unwrap();
        t.set(json!({"cpu": {"quota": 20000}})).unwrap();
        t.set(json!({"cpu": {"quota": -1}})).unwrap();
        assert_eq!(
            t.read("cpu.max"),
            "50000 200000\n50000 250000\n20000 250000\nmax 250000\n"
        );
        // A fresh cgroup's: no quota, and the kernel's default period.
        let t = Fake::new(&[("cpu.max", "max 100000\n")]);
        t.set(json!({"cpu": {"quota": 30000}})).unwrap();
        assert_eq!(t.read("cpu.max"), "max 100000\n30000 100000\n");
    }

    #[test]
    fn io_with_bfq() {
        let t = Fake::new(&[("io.bfq.weight", "default 100\n"), ("io.max", "")]);
        t.set(json!({"blockIO": {
            "weight": 300, "leafWeight": 10,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}]
        }}))
        .unwrap();
        assert_eq!(t.read("io.bfq.weight"), "default 100\n300\n8:0 500\n");
        assert_eq!(
            t.read("io.max"),
            "8:0 rbps=1048576\n8:0 wbps=2097152\n8:16 riops=100\n8:16 wiops=200\n"
        );
    }

    #[test]
    fn io_without_bfq() {
        // io.weight takes the converted weight; device weights need BFQ and are ignored.
        let t = Fake::new(&[("io.weight", "default 100\n")]);
        t.set(json!({"blockIO": {"weight": 500,
                                 "weightDevice": [{"major": 8, "minor": 0, "weight": 500}]}}))
            .unwrap();
        assert_eq!(t.read("io.weight"), "default 100\n4950\n");
        // An old BFQ shows a bare number and takes no device weights either.
        let t = Fake::new(&[("io.bfq.weight", "100\n")]);
        t.set(json!({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500}]}}))
            .unwrap();
        assert_eq!(t.read("io.bfq.weight"), "100\n");
    }

    #[test]
    fn pids_hugetlb_rdma() {
        let t = Fake::new(&[
            ("pids.max", ""),
            ("hugetlb.2MB.max", ""),
            ("hugetlb.2MB.rsvd.max", ""),
            ("hugetlb.1GB.max", ""),
            ("hugetlb.1GB.rsvd.max", ""),
            ("rdma.max", ""),
        ]);
        t.set(json!({
            "pids": {"limit": 0},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304},
                               {"pageSize": "1GB", "limit": 1073741824}],
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 1000}, "hfi1": {"hcaHandles": 2}}
        }))
        .unwrap();
        assert_eq!(t.read("pids.max"), "", "0 leaves the limit alone");
        assert_eq!(t.read("hugetlb.2MB.max"), "4194304\n");
        assert_eq!(t.read("hugetlb.2MB.rsvd.max"), "4194304\n");
        assert_eq!(t.read("hugetlb.1GB.rsvd.max"), "1073741824\n");
        assert_eq!(
            t.read("rdma.max"),
            "hfi1 hca_handle=2\nmlx5_1 hca_handle=3 hca_object=1000\n"
        );
        t.set(json!({"pids": {"limit": -1}})).unwrap();
        t.set(json!({"pids": {"limit": 42}})).unwrap();
        assert_eq!(t.read("pids.max"), "max\n42\n");

        // Kernels before 5.7 have no reservation limits.
        let t = Fake::new(&[("hugetlb.2MB.max", "")]);
        t.set(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}))
            .unwrap();
        assert_eq!(t.read("hugetlb.2MB.max"), "4194304\n");
    }

    #[test]
    fn unified_is_written_last_and_errors_name_the_key() {
        let t = Fake::new(&[
            ("cgroup.controllers", "cpu memory pids\n"),
            ("memory.high", ""),
            ("memory.max", ""),
            ("pids.max", ""),
        ]);
        t.set(json!({"memory": {"limit": 1000000},
                     "unified": {"memory.max": "2000000", "memory.high": "max"}}))
            .unwrap();
        assert_eq!(t.read("memory.max"), "1000000\n2000000\n");
        assert_eq!(t.read("memory.high"), "max\n");
        for (k, want) in [
            (
                "../x.max",
                "unified resource \"../x.max\" must be a file name (no slashes)",
            ),
            (
                "io.max",
                "unified resource \"io.max\" can't be set: controller \"io\" not available",
            ),
            (
                "nodot",
                "unified resource \"nodot\" must be in the form CONTROLLER.PARAMETER",
            ),
        ] {
            let e = t.set(json!({"unified": {k: "1"}})).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
        // A controller that is there but lacks the file: the write's own error.
        let e = t
            .set(json!({"unified": {"memory.nosuch": "1"}}))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unable to set unified resource \"memory.nosuch\": write \"1\" to "),
            "{e}"
        );
    }

    #[test]
    fn network_is_ignored_as_runc_does() {
        let t = Fake::new(&[]);
        t.set(json!({"network": {"classID": 1048577,
                                 "priorities": [{"name": "eth0", "priority": 5}]}}))
            .unwrap();
    }
}
