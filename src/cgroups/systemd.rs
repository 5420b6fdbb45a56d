//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: the container's cgroup is a
//! transient scope that systemd makes (StartTransientUnit) with the container's init in it, its
//! limits given as unit properties; what systemd has no property for is then written into the
//! scope's directories, which are delegated to us (Delegate=yes), by the filesystem driver of
//! the host's cgroup version. Freezing, stats, the OOM watch and the process list are that
//! driver's. `cgroupsPath` is runc's `slice:prefix:name`, which names the scope
//! `prefix-name.scope` in the slice.
//!
//! On cgroup v1 (runc's legacy systemd manager) the scope has a directory in every hierarchy,
//! at the same path below each root; the init joins those systemd did not put it in (cpuset,
//! net_cls...), and the device rules go to systemd too (DevicePolicy, DeviceAllow): systemd
//! rewrites a delegated unit's devices cgroup whenever it applies the unit's settings again,
//! and with no rules of its own it would allow every device.

use super::devices::{self, Rules};
use super::stats::Stats;
use super::systemd_dbus::{self, Bus, BusError, Property, Value};
use super::v1::V1;
use super::v2::{self, V2};
use super::{oom, CgroupManager, MountLayout};
use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxCpu, LinuxDeviceCgroup, LinuxResources};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// `--systemd-cgroup`: new containers get a systemd scope.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The scope of a container, made when its init exists.
pub struct Systemd {
    unit: String,
    slice: String,
    name: String,
    /// The filesystem driver of the scope's directories: v2's, or v1's (one per hierarchy).
    fs: Box<dyn CgroupManager>,
    v1: bool,
    bus: RefCell<Option<Bus>>,
    /// The limits given before the scope exists; it is made with them.
    pending: RefCell<Option<LinuxResources>>,
    /// The scope exists (or did): destroy stops it.
    started: Cell<bool>,
}

/// runc's `slice:prefix:name` (an empty one: the runtime's name as prefix and the container's
/// id as name, in system.slice). Returns (slice, unit, name).
pub fn parse_path(cgroups_path: &str, id: &str) -> Result<(String, String, String)> {
    let (slice, prefix, name) = if cgroups_path.is_empty() {
        ("", "husk", id)
    } else {
        match cgroups_path.split(':').collect::<Vec<_>>()[..] {
            [s, p, n] => (s, p, n),
            _ => {
                return Err(Error::msg(format!(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {cgroups_path:?} instead"
                )))
            }
        }
    };
    if name.ends_with(".slice") {
        // runc makes a slice then, which takes no processes: its create fails later.
        return Err(Error::msg(format!(
            "cgroupsPath: {name:?}: a slice cannot hold the container's processes"
        )));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    Ok((
        slice.to_string(),
        format!("{prefix}-{name}.scope"),
        name.to_string(),
    ))
}

/// systemd's slice hierarchy: `a-b.slice` is `/a.slice/a-b.slice` (runc's ExpandSlice, and its
/// words).
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let bad = || Error::msg(format!("invalid slice name: {slice}"));
    let base = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if slice.contains('/') {
        return Err(bad());
    }
    if base == "-" {
        return Ok(PathBuf::from("/"));
    }
    let mut path = PathBuf::from("/");
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix += part;
        prefix.push('-');
    }
    Ok(path)
}

impl Systemd {
    pub fn for_container(cgroups_path: Option<&Path>, id: &str) -> Result<Systemd> {
        let raw = cgroups_path
            .map(|p| p.to_str().unwrap_or("\u{fffd}"))
            .unwrap_or("");
        let (slice, unit, name) = parse_path(raw, id)?;
        // runc's checks, in its order and words.
        if !Path::new("/run/systemd/system").is_dir() {
            return Err(Error::msg(
                "systemd not running on this host, cannot use systemd cgroups manager",
            ));
        }
        let rel = crate::util::path::below_root(&expand_slice(&slice)?).join(&unit);
        let v1 = !super::is_v2();
        let fs: Box<dyn CgroupManager> = if v1 {
            Box::new(V1::below_roots(&rel)?)
        } else {
            Box::new(V2 {
                path: Path::new(super::CGROUP_ROOT).join(rel),
            })
        };
        Ok(Systemd {
            unit,
            slice,
            name,
            fs,
            v1,
            bus: RefCell::new(None),
            pending: RefCell::new(None),
            started: Cell::new(false),
        })
    }

    /// The scope of an existing container, if its directories (as its state has them) are
    /// the cgroup of a scope that systemd made: it marks a delegated unit's cgroup (since
    /// v251), and any unit's with its invocation id once set (a scope made with its properties
    /// gets it only at its next change). On v1 the mark is on the directory of the hierarchy
    /// systemd tracks processes in (name=systemd, or the unified one of a hybrid host). A
    /// container whose scope is gone needs no systemd: its directories are gone too.
    pub fn of_dirs(dirs: &[PathBuf], v2: bool) -> Option<Systemd> {
        let marked = |d: &&PathBuf| {
            ["trusted.delegate", "trusted.invocation_id"]
                .iter()
                .any(|x| has_xattr(d, x))
        };
        let dir = dirs.iter().find(marked)?;
        let unit = dir.file_name()?.to_str()?;
        if !unit.ends_with(".scope") {
            return None;
        }
        let fs: Box<dyn CgroupManager> = if v2 {
            Box::new(V2 { path: dir.clone() })
        } else {
            Box::new(V1::from_dirs(dirs.to_vec()))
        };
        Some(Systemd {
            unit: unit.to_string(),
            slice: String::new(),
            name: String::new(),
            fs,
            v1: !v2,
            bus: RefCell::new(None),
            pending: RefCell::new(None),
            started: Cell::new(true),
        })
    }

    fn bus(&self) -> Result<std::cell::RefMut<'_, Bus>> {
        let mut b = self.bus.borrow_mut();
        if b.is_none() {
            *b = Some(
                Bus::system()
                    .map_err(|e| Error::msg(format!("cannot use systemd cgroups manager: {e}")))?,
            );
        }
        Ok(std::cell::RefMut::map(b, |b| {
            b.as_mut().expect("connected above")
        }))
    }

    /// The scope's own properties, as runc sets them.
    fn unit_props(&self, pid: i32) -> Vec<Property> {
        let b = |n: &str, v: bool| (n.to_string(), Value::Bool(v));
        vec![
            (
                "Description".into(),
                Value::Str(format!("husk container {}", self.name)),
            ),
            ("Slice".into(), Value::Str(self.slice.clone())),
            b("Delegate", true),
            ("PIDs".into(), Value::U32s(vec![pid as u32])),
            b("MemoryAccounting", true),
            b("CPUAccounting", true),
            // v1 has blkio, which systemd accounts under its older name.
            b(
                if self.v1 {
                    "BlockIOAccounting"
                } else {
                    "IOAccounting"
                },
                true,
            ),
            b("TasksAccounting", true),
            b("DefaultDependencies", false),
        ]
    }

    fn resource_props(&self, r: &LinuxResources) -> Result<Vec<Property>> {
        if self.v1 {
            v1_resource_props(r)
        } else {
            resource_props(r)
        }
    }

    /// The slice's directory is missing (v2): it is to be started.
    fn slice_missing(&self) -> bool {
        let paths = self.fs.paths();
        paths
            .first()
            .and_then(|d| d.parent())
            .is_some_and(|p| !p.is_dir())
    }

    fn start(&self, props: &[Property]) -> Result<()> {
        let unit = &self.unit;
        let mut bus = self.bus()?;
        let fail = |e: BusError| Error::msg(format!("unable to start unit {unit:?}: {e}"));
        let result = match bus.start_transient_unit(unit, props) {
            // A failed unit of that name may linger: reset it and try once more, as runc does.
            Err(e) if e.is(systemd_dbus::UNIT_EXISTS) => {
                if let Err(e) = bus.reset_failed_unit(unit) {
                    log::warn!("unable to reset failed unit: {e}");
                }
                bus.start_transient_unit(unit, props).map_err(fail)?
            }
            r => r.map_err(fail)?,
        };
        if result != "done" {
            self.started.set(true);
            return Err(Error::msg(format!(
                "error creating systemd unit `{unit}`: got `{result}`"
            )));
        }
        self.started.set(true);
        Ok(())
    }
}

fn has_xattr(dir: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(dir.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated; a zero size asks for the length only.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

impl CgroupManager for Systemd {
    /// The scope needs a process: systemd makes it in `apply`. But the init binds its cgroup
    /// into its rootfs without waiting for that, so the scope's directory is made now, in the
    /// slice (started first if new, which also has systemd check its name); systemd takes an
    /// existing directory as the unit's cgroup.
    fn create(&self) -> Result<()> {
        self.bus()?;
        if self.v1 {
            // As runc's: nothing before the scope. systemd removes directories it does not
            // know of where a slice's controllers are not its members' (a slice started alone,
            // or one realized again for another unit's sake), so the scope makes them, slice
            // and all, and the init binds them only after (made_by_apply).
            return Ok(());
        }
        if self.slice_missing() {
            let slice = &self.slice;
            let fail = |e: String| {
                Error::msg(format!(
                    "unable to start unit {:?}: slice {slice:?}: {e}",
                    self.unit
                ))
            };
            let result = self
                .bus()?
                .unit_job("StartUnit", slice)
                .map_err(|e| fail(e.to_string()))?;
            if result != "done" {
                return Err(fail(format!("got `{result}`")));
            }
        }
        let dir = &self.fs.paths()[0];
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                Err(e).with_ctx(|| format!("mkdir {}", dir.display()))
            }
            _ => Ok(()),
        }
    }

    fn apply(&self, pid: i32) -> Result<()> {
        let r = self.pending.borrow_mut().take().unwrap_or_default();
        let mut props = self.unit_props(pid);
        props.extend(self.resource_props(&r)?);
        self.start(&props)?;
        // What systemd has no property for (devices on v2, io, hugetlb...), and the
        // controllers of the ancestors, as runc's fs drivers do after starting the unit. On v1
        // the init also joins the hierarchies systemd did not put it in (runc's joinCgroups).
        self.fs.create()?;
        if self.v1 {
            self.fs.apply(pid)?;
        }
        self.fs.set(&r)
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        if !self.started.get() {
            // Checked now, so that a bad value fails before anything exists.
            self.resource_props(r)?;
            *self.pending.borrow_mut() = Some(r.clone());
            return Ok(());
        }
        let props = self.resource_props(r)?;
        // systemd rewrites a v1 devices cgroup from "deny all": the container is frozen
        // meanwhile, unless it is already, so that no access fails in between (runc's
        // freezeBeforeSet).
        let freeze = self.v1
            && r.devices().is_some()
            && !self.fs.freezer_paths().iter().any(|d| super::frozen_now(d));
        if freeze {
            self.fs.freeze(true)?;
        }
        let set = self
            .bus()?
            .set_unit_properties(&self.unit, &props)
            .map_err(|e| Error::msg(format!("unable to set unit properties: {e}")));
        if freeze {
            self.fs.freeze(false)?;
        }
        set?;
        self.fs.set(r)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.fs.pids()
    }

    /// Stops the scope (systemd kills what is left and removes the cgroup), then removes what
    /// remains of the directory, as runc does.
    fn destroy(&self) -> Result<()> {
        if self.started.get() {
            let unit = &self.unit;
            let mut bus = self.bus()?;
            match bus.unit_job("StopUnit", unit) {
                Ok(r) if r != "done" => {
                    log::warn!("error removing unit `{unit}`: got `{r}`. Continuing...")
                }
                Ok(_) => {}
                // Gone already: a scope ends with its last process.
                Err(e) if e.is(systemd_dbus::NO_SUCH_UNIT) => {}
                Err(e) => return Err(Error::msg(format!("unable to stop unit {unit:?}: {e}"))),
            }
            // A failed scope stays loaded until reset; one that is not failed or gone answers
            // with an error that changes nothing.
            if let Err(e) = bus.reset_failed_unit(unit) {
                log::debug!("reset-failed {unit}: {e}");
            }
        }
        self.fs.destroy()
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.fs.paths()
    }

    fn freezer_paths(&self) -> Vec<PathBuf> {
        self.fs.freezer_paths()
    }

    fn made_by_apply(&self) -> bool {
        self.v1
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        self.fs.freeze(frozen)
    }

    fn stats(&self) -> Result<Stats> {
        self.fs.stats()
    }

    fn oom_watch(&self) -> Result<oom::Watch> {
        self.fs.oom_watch()
    }

    fn mount_layout(&self) -> MountLayout {
        self.fs.mount_layout()
    }
}

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

/// The limits systemd has properties for, converted as runc's genV2ResourcesProperties does.
/// Device rules are left to the v2 driver's eBPF program (runc gives systemd both).
pub fn resource_props(r: &LinuxResources) -> Result<Vec<Property>> {
    let mut p = Vec::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if limit != 0 {
            p.push(prop("MemoryMax", Value::U64(limit as u64)));
        }
        if let Some(low) = m.reservation().filter(|v| *v != 0) {
            p.push(prop("MemoryLow", Value::U64(low as u64)));
        }
        let swap = v2::swap_value(m.swap().unwrap_or(0), limit)?;
        if swap != 0 {
            p.push(prop("MemorySwapMax", Value::U64(swap as u64)));
        }
    }
    if let Some(c) = r.cpu() {
        cpu_props(c, &mut p)?;
    }
    if let Some(l) = r.pids().map(|p| p.limit()).filter(|l| *l > 0 || *l == -1) {
        p.push(prop("TasksMax", Value::U64(l as u64)));
    }
    if let Some(c) = r.cpu() {
        cpuset_props(c, &mut p)?;
    }
    if let Some(u) = r.unified() {
        unified_props(u, &mut p)?;
    }
    Ok(p)
}

/// AllowedCPUs and AllowedMemoryNodes, as runc's addCpuset gives them.
fn cpuset_props(c: &LinuxCpu, p: &mut Vec<Property>) -> Result<()> {
    for (name, v, what) in [
        ("AllowedCPUs", c.cpus(), "Cpus"),
        ("AllowedMemoryNodes", c.mems(), "Mems"),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            let bits = range_to_bits(v).map_err(|e| {
                Error::msg(format!("resources.CPU.{what}={v:?} conversion error: {e}"))
            })?;
            p.push(prop(name, Value::Bytes(bits)));
        }
    }
    Ok(())
}

fn cpu_props(c: &LinuxCpu, p: &mut Vec<Property>) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if !(2..=262_144).contains(&s) {
            let bound = if s < 2 { "minimum" } else { "maximum" };
            let v = if s < 2 { 2 } else { 262_144 };
            return Err(Error::msg(format!("the {bound} allowed cpu-shares is {v}")));
        }
        p.push(prop("CPUWeight", Value::U64(v2::shares_to_weight(s))));
    }
    add_cpu_quota(p, c.quota().unwrap_or(0), c.period().unwrap_or(0));
    Ok(())
}

/// CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec) from a quota and period, rounded up to 10 ms per
/// second as runc does: systemd keeps the quota as a whole percentage.
fn add_cpu_quota(p: &mut Vec<Property>, quota: i64, period: u64) {
    if period != 0 {
        p.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota == 0 && period == 0 {
        return;
    }
    let mut per_sec = u64::MAX;
    if quota > 0 {
        let period = if period == 0 { 100_000 } else { period };
        per_sec = u64::try_from(quota as u128 * 1_000_000 / u128::from(period)).unwrap_or(u64::MAX);
        if per_sec % 10_000 != 0 {
            per_sec = (per_sec / 10_000 + 1).saturating_mul(10_000);
        }
    }
    p.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// A cpu or memory-node list ("0-3,6") as systemd's bitmask: byte i holds cpus 8i..8i+7.
pub fn range_to_bits(list: &str) -> std::result::Result<Vec<u8>, String> {
    // systemd's own limit on a cpu set is far below this; it bounds what we allocate.
    const MAX: u64 = 1 << 16;
    let mut bits = Vec::new();
    for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let num = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|n| *n < MAX)
                .ok_or_else(|| format!("invalid range: {r}"))
        };
        let (start, end) = match r.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(r)?, num(r)?),
        };
        if start > end {
            return Err(format!("invalid range: {r}"));
        }
        for i in start..=end {
            let byte = (i / 8) as usize;
            if bits.len() <= byte {
                bits.resize(byte + 1, 0u8);
            }
            bits[byte] |= 1 << (i % 8);
        }
    }
    if bits.is_empty() {
        return Err("empty value".into());
    }
    Ok(bits)
}

/// The `unified` keys that systemd has properties for (runc's unifiedResToSystemdProps); the
/// v2 driver writes every key into the files afterwards anyway.
fn unified_props(u: &HashMap<String, String>, p: &mut Vec<Property>) -> Result<()> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let v = v.trim();
        let bad = |what: &str| Error::msg(format!("unified resource {k:?} {what}"));
        let max_or_num = |v: &str| match v {
            "max" => Ok(u64::MAX),
            v => v
                .parse::<u64>()
                .map_err(|e| bad(&format!("value conversion error: {e}"))),
        };
        match k.as_str() {
            "cpu.max" => {
                let f: Vec<_> = v.split_whitespace().collect();
                if f.is_empty() || f.len() > 2 {
                    return Err(bad(&format!("value invalid: {v:?}")));
                }
                let quota = match f[0] {
                    "max" => 0,
                    q => q
                        .parse()
                        .map_err(|e| bad(&format!("quota value conversion error: {e}")))?,
                };
                let period = match f.get(1) {
                    Some(p) => p
                        .parse()
                        .map_err(|e| bad(&format!("period value conversion error: {e}")))?,
                    None => 100_000,
                };
                add_cpu_quota(p, quota, period);
            }
            "cpu.weight" => {
                let w = v
                    .parse::<u64>()
                    .map_err(|e| bad(&format!("value conversion error: {e}")))?;
                p.push(prop("CPUWeight", Value::U64(w)));
            }
            "cpuset.cpus" | "cpuset.mems" => {
                let bits = range_to_bits(v).map_err(|e| bad(&format!("conversion error: {e}")))?;
                let name = if k == "cpuset.cpus" {
                    "AllowedCPUs"
                } else {
                    "AllowedMemoryNodes"
                };
                p.push(prop(name, Value::Bytes(bits)));
            }
            "memory.high" | "memory.low" | "memory.min" | "memory.max" | "memory.swap.max" => {
                let name = match k.as_str() {
                    "memory.high" => "MemoryHigh",
                    "memory.low" => "MemoryLow",
                    "memory.min" => "MemoryMin",
                    "memory.max" => "MemoryMax",
                    _ => "MemorySwapMax",
                };
                p.push(prop(name, Value::U64(max_or_num(v)?)));
            }
            "pids.max" => p.push(prop("TasksMax", Value::U64(max_or_num(v)?))),
            _ => log::debug!("unified resource {k:?}: no systemd property, written to the file"),
        }
    }
    Ok(())
}

/// The limits systemd has v1 properties for, as runc's genV1ResourcesProperties gives them.
pub fn v1_resource_props(r: &LinuxResources) -> Result<Vec<Property>> {
    let mut p = match r.devices() {
        Some(rules) => device_props(rules)?,
        None => Vec::new(),
    };
    if let Some(l) = r.memory().and_then(|m| m.limit()).filter(|l| *l != 0) {
        p.push(prop("MemoryLimit", Value::U64(l as u64)));
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            p.push(prop("CPUShares", Value::U64(s)));
        }
        add_cpu_quota(&mut p, c.quota().unwrap_or(0), c.period().unwrap_or(0));
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        p.push(prop("BlockIOWeight", Value::U64(u64::from(w))));
    }
    if let Some(l) = r.pids().map(|p| p.limit()).filter(|l| *l > 0 || *l == -1) {
        p.push(prop("TasksMax", Value::U64(l as u64)));
    }
    if let Some(c) = r.cpu() {
        cpuset_props(c, &mut p)?;
    }
    Ok(p)
}

/// The container's device rules as systemd's DevicePolicy and DeviceAllow, as runc's
/// generateDeviceProperties converts them: strict policy with an allow list; a device by its
/// /dev/{char,block}/M:m path, all of a major by its group in /proc/devices, all of a type as
/// `char-*`. What systemd cannot say (a deny list, `*:n`, a major with no group) is left to
/// the devices cgroup's own rules, as runc leaves it, with runc's warnings.
fn device_props(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Property>> {
    let r = Rules::for_container(rules)?;
    let mut p = vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        // Empties the list before it is filled.
        prop("DeviceAllow", Value::Devices(Vec::new())),
    ];
    if r.default_allow {
        if r.exceptions.values().all(|bits| *bits == 0) {
            return Ok(vec![
                prop("DevicePolicy", Value::Str("auto".into())),
                prop("DeviceAllow", Value::Devices(Vec::new())),
            ]);
        }
        log::warn!(
            "systemd doesn't support blacklist device rules -- applying temporary deny-all rule"
        );
        return Ok(p);
    }
    let groups = std::fs::read_to_string("/proc/devices").ctx("read /proc/devices")?;
    let mut allow = Vec::new();
    for (dev, bits) in &r.exceptions {
        if *bits == 0 {
            continue;
        }
        let (kind, prefix) = match dev.kind {
            'b' => ("block", "block-"),
            _ => ("char", "char-"),
        };
        let path = match (dev.major, dev.minor) {
            (-1, -1) => format!("{prefix}*"),
            (-1, _) => {
                log::warn!(
                    "systemd doesn't support '*:n' device rules -- temporarily ignoring rule: {}",
                    devices::line(dev, *bits)
                );
                continue;
            }
            (major, -1) => match device_group(&groups, dev.kind, major) {
                Some(name) => format!("{prefix}{name}"),
                None => {
                    log::warn!("could not find device group for '{}/{major}' in /proc/devices -- temporarily ignoring rule: {}", dev.kind, devices::line(dev, *bits));
                    continue;
                }
            },
            (major, minor) => {
                // systemd ignores a path to a device the kernel does not have; runc leaves it
                // out first, saying so, and so does husk.
                let path = format!("/dev/{kind}/{major}:{minor}");
                let sys = format!("/sys{path}");
                if let Err(e) = std::fs::metadata(&sys) {
                    let e = crate::error::io_text(&e);
                    log::warn!("skipping device {path} for systemd: stat {sys}: {e}");
                    continue;
                }
                path
            }
        };
        allow.push((path, devices::access_text(*bits)));
    }
    p.push(prop("DeviceAllow", Value::Devices(allow)));
    Ok(p)
}

/// The name /proc/devices gives `major` among its character ('c') or block ('b') devices.
fn device_group(proc_devices: &str, kind: char, major: i64) -> Option<String> {
    let section = if kind == 'b' {
        "Block devices:"
    } else {
        "Character devices:"
    };
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != section)
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.ends_with(':'))
        .find_map(|l| {
            let (n, name) = l.trim().split_once(' ')?;
            (n.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_path_rules_are_runcs() {
        let ok = |p: &str| parse_path(p, "id1").unwrap();
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(ok(""), s("system.slice", "husk-id1.scope", "id1"));
        assert_eq!(
            ok("system.slice:husk:c1"),
            s("system.slice", "husk-c1.scope", "c1")
        );
        assert_eq!(ok(":pre:c3"), s("system.slice", "pre-c3.scope", "c3"));
        assert_eq!(ok("a-b.slice:p:c"), s("a-b.slice", "p-c.scope", "c"));
        for bad in ["bad", "a:b", "a:b:c:d"] {
            assert_eq!(
                parse_path(bad, "x").unwrap_err().to_string(),
                format!("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {bad:?} instead")
            );
        }
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("/system.slice")
        );
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            Path::new("/a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new("/"));
        for bad in ["foo", "a--b.slice", "-a.slice", "a/b.slice", ".slice"] {
            assert_eq!(
                expand_slice(bad).unwrap_err().to_string(),
                format!("invalid slice name: {bad}")
            );
        }
    }

    #[test]
    fn properties_convert_like_runc() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 33554432, "reservation": 1048576, "swap": 67108864},
            "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0-1,3"},
            "pids": {"limit": 20}
        }))
        .unwrap();
        let p = resource_props(&r).unwrap();
        let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        assert_eq!(get("MemoryMax"), Some(&Value::U64(33554432)));
        assert_eq!(get("MemoryLow"), Some(&Value::U64(1048576)));
        assert_eq!(get("MemorySwapMax"), Some(&Value::U64(33554432)));
        assert_eq!(get("CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(&Value::U64(100000)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(&Value::U64(250000)));
        assert_eq!(get("TasksMax"), Some(&Value::U64(20)));
        assert_eq!(get("AllowedCPUs"), Some(&Value::Bytes(vec![0b1011])));
        // Unlimited is u64::MAX, as systemd's "infinity".
        let r: LinuxResources = serde_json::from_value(
            serde_json::json!({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": 33333}}),
        )
        .unwrap();
        let p = resource_props(&r).unwrap();
        assert!(p.contains(&prop("MemoryMax", Value::U64(u64::MAX))));
        assert!(p.contains(&prop("TasksMax", Value::U64(u64::MAX))));
        assert!(p.contains(&prop("CPUQuotaPerSecUSec", Value::U64(340000))));
    }

    #[test]
    fn v1_properties_and_device_rules_convert_like_runc() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 33554432},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "blockIO": {"weight": 500},
            "pids": {"limit": 20},
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}
            ]
        }))
        .unwrap();
        let p = v1_resource_props(&r).unwrap();
        let get = |n: &str| {
            p.iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        assert_eq!(get("MemoryLimit"), [&Value::U64(33554432)]);
        assert_eq!(get("CPUShares"), [&Value::U64(1024)]);
        assert_eq!(get("CPUQuotaPerSecUSec"), [&Value::U64(500000)]);
        assert_eq!(get("BlockIOWeight"), [&Value::U64(500)]);
        assert_eq!(get("TasksMax"), [&Value::U64(20)]);
        assert_eq!(get("DevicePolicy"), [&Value::Str("strict".into())]);
        let allow = get("DeviceAllow");
        assert_eq!(allow[0], &Value::Devices(vec![]));
        let Value::Devices(list) = allow[1] else {
            panic!("{allow:?}")
        };
        let has = |path: &str, perms: &str| {
            assert!(
                list.contains(&(path.to_string(), perms.to_string())),
                "{path} {perms} not in {list:?}"
            )
        };
        // The spec's rules and runc's defaults (c 1:3 rwm among them, merged with the spec's).
        has("/dev/char/1:3", "rwm");
        has("char-*", "m");
        has("block-*", "m");
        // A device the kernel does not have is left out, as runc leaves it out.
        for (path, perms) in [("/dev/block/8:0", "r"), ("/dev/char/10:200", "rwm")] {
            if Path::new(&format!("/sys{path}")).exists() {
                has(path, perms);
            } else {
                assert!(!list.iter().any(|(p, _)| p == path), "{path} in {list:?}");
            }
        }
        // 136 is pts on every Linux: its group comes from /proc/devices.
        has("char-pts", "rwm");

        // Allow-all: systemd's own "auto" policy with no list.
        let all: Vec<LinuxDeviceCgroup> =
            serde_json::from_value(serde_json::json!([{"allow": true, "access": "rwm"}])).unwrap();
        assert_eq!(
            device_props(&all).unwrap(),
            vec![
                prop("DevicePolicy", Value::Str("auto".into())),
                prop("DeviceAllow", Value::Devices(vec![]))
            ]
        );
    }

    #[test]
    fn device_groups_come_from_proc_devices() {
        let text = "Character devices:\n  1 mem\n136 pts\n254 gpiochip\n\nBlock devices:\n  8 sd\n254 virtblk\n";
        assert_eq!(device_group(text, 'c', 136).as_deref(), Some("pts"));
        assert_eq!(device_group(text, 'c', 254).as_deref(), Some("gpiochip"));
        assert_eq!(device_group(text, 'b', 254).as_deref(), Some("virtblk"));
        assert_eq!(device_group(text, 'b', 1), None);
    }

    #[test]
    fn cpu_lists_become_bitmasks() {
        assert_eq!(range_to_bits("0").unwrap(), vec![1]);
        assert_eq!(range_to_bits("8-9, 0").unwrap(), vec![1, 3]);
        assert_eq!(range_to_bits("").unwrap_err(), "empty value");
        assert_eq!(range_to_bits("3-1").unwrap_err(), "invalid range: 3-1");
        assert_eq!(range_to_bits("x").unwrap_err(), "invalid range: x");
        assert_eq!(
            range_to_bits("99999999").unwrap_err(),
            "invalid range: 99999999"
        );
    }
}
