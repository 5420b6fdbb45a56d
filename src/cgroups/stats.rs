//! A container's resource usage, read from its cgroups as runc reads it and shaped like runc's
//! `types.Stats` (what `runc events` prints): the same key names and order, and the same zero
//! values left out (Go's `omitempty`: zero numbers, empty lists and maps; never a nested struct).

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// husk does not manage Intel RDT; runc prints `{}` when it is off.
    pub intel_rdt: IntelRdt,
    /// Always `null`: runc only fills it for networks it set up itself, which the CLI never does.
    pub network_interfaces: (),
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct IntelRdt {}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Serialize, Default, Debug, PartialEq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Default, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap, on v2 too (runc adds them up there for v1's sake).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat, as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Default, Debug, PartialEq, Clone, Copy)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Serialize, Default, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// runc's key is "ioQueueRecursive", not "ioQueued...".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_queue_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Default, Debug, PartialEq, Clone)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// cgroup v1: each controller in the directory of its own hierarchy. The cgroup2 directory of a
/// hybrid host is skipped (it has cpu.stat too, with other keys).
pub fn v1(dirs: &[PathBuf]) -> Result<Stats> {
    let find = |probe: &str| {
        dirs.iter()
            .map(PathBuf::as_path)
            .find(|d| d.join(probe).exists() && !d.join("cgroup.controllers").exists())
    };
    let mut s = Stats::default();
    if let Some(d) = find("cpuacct.usage") {
        s.cpu.usage = v1_cpuacct(d)?;
    }
    if let Some(d) = find("cpu.shares") {
        if let Some(text) = read_opt(d, "cpu.stat")? {
            let kv = key_values(&text, &d.join("cpu.stat"))?;
            let t = &mut s.cpu.throttling;
            t.periods = get(&kv, "nr_periods");
            t.throttled_periods = get(&kv, "nr_throttled");
            t.throttled_time = get(&kv, "throttled_time");
        }
    }
    if let Some(d) = find("cpuset.cpus") {
        s.cpuset = v1_cpuset(d)?;
    }
    if let Some(d) = find("memory.usage_in_bytes") {
        s.memory = v1_memory(d)?;
    }
    if let Some(d) = find("pids.current") {
        s.pids = pids(d)?;
    }
    if let Some(d) = find("blkio.reset_stats") {
        s.blkio = v1_blkio(d)?;
    }
    let sizes = huge_page_sizes();
    if let Some(d) = sizes
        .first()
        .and_then(|p| find(&format!("hugetlb.{p}.usage_in_bytes")))
    {
        for size in sizes {
            let f = |what: &str| read_u64(d, &format!("hugetlb.{size}.{what}"));
            let h = Hugetlb {
                usage: f("usage_in_bytes")?,
                max: f("max_usage_in_bytes")?,
                failcnt: f("failcnt")?,
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(s)
}

fn v1_cpuacct(d: &Path) -> Result<CpuUsage> {
    // cpuacct.stat counts USER_HZ ticks, which are 1/100 s on Linux.
    let path = d.join("cpuacct.stat");
    let kv = key_values(&read_text(d, "cpuacct.stat")?, &path)?;
    let tick_ns = 1_000_000_000 / 100;
    let mut u = CpuUsage {
        total: read_u64(d, "cpuacct.usage")?,
        percpu: parse_list(
            &read_text(d, "cpuacct.usage_percpu")?,
            &d.join("cpuacct.usage_percpu"),
        )?,
        user: get(&kv, "user") * tick_ns,
        kernel: get(&kv, "system") * tick_ns,
        ..Default::default()
    };
    // "cpu user system" then one row per cpu; missing on kernels before 4.7.
    if let Some(all) = read_opt(d, "cpuacct.usage_all")? {
        let path = d.join("cpuacct.usage_all");
        for line in all.lines().skip(1) {
            let cols: Vec<&str> = line.split(' ').collect();
            if let [_, user, system] = cols[..] {
                u.percpu_user.push(parse_u64(user, &path)?);
                u.percpu_kernel.push(parse_u64(system, &path)?);
            }
        }
    }
    Ok(u)
}

fn v1_cpuset(d: &Path) -> Result<CpuSet> {
    let n = |f: &str| read_u64_opt(d, f);
    Ok(CpuSet {
        cpus: cpu_list(&read_text(d, "cpuset.cpus")?, &d.join("cpuset.cpus"))?,
        mems: cpu_list(&read_text(d, "cpuset.mems")?, &d.join("cpuset.mems"))?,
        cpu_exclusive: n("cpuset.cpu_exclusive")?,
        mem_hardwall: n("cpuset.mem_hardwall")?,
        mem_exclusive: n("cpuset.mem_exclusive")?,
        memory_migrate: n("cpuset.memory_migrate")?,
        memory_spread_page: n("cpuset.memory_spread_page")?,
        memory_spread_slab: n("cpuset.memory_spread_slab")?,
        memory_pressure: n("cpuset.memory_pressure")?,
        sched_load_balance: n("cpuset.sched_load_balance")?,
        sched_relax_domain_level: match read_opt(d, "cpuset.sched_relax_domain_level")? {
            Some(t) => t
                .trim()
                .parse()
                .map_err(|_| invalid(&t, &d.join("cpuset.sched_relax_domain_level")))?,
            None => 0,
        },
    })
}

fn v1_memory(d: &Path) -> Result<Memory> {
    let raw = key_values(&read_text(d, "memory.stat")?, &d.join("memory.stat"))?;
    // memsw (swap accounting) and kmem are optional in the kernel: absent means zero.
    let entry = |prefix: &str, optional: bool| -> Result<MemoryEntry> {
        let usage = format!("{prefix}.usage_in_bytes");
        if optional && !d.join(&usage).exists() {
            return Ok(MemoryEntry::default());
        }
        // Newer kernels dropped some kmem files (limit_in_bytes first): those read as zero.
        let n = |what: &str| {
            let file = format!("{prefix}.{what}");
            if optional {
                read_u64_opt(d, &file)
            } else {
                read_u64(d, &file)
            }
        };
        Ok(MemoryEntry {
            usage: n("usage_in_bytes")?,
            max: n("max_usage_in_bytes")?,
            failcnt: n("failcnt")?,
            limit: n("limit_in_bytes")?,
        })
    };
    Ok(Memory {
        cache: get(&raw, "cache"),
        usage: entry("memory", false)?,
        swap: entry("memory.memsw", true)?,
        kernel: entry("memory.kmem", true)?,
        kernel_tcp: entry("memory.kmem.tcp", true)?,
        raw: raw.into_iter().collect(),
    })
}

/// runc's order of preference among the blkio files: BFQ's with debug counters, BFQ's, CFQ's,
/// the throttling layer's recursive ones, its plain ones. A group is used if its first file
/// has entries; a later file of the chosen group without entries ends the search (as in runc).
fn v1_blkio(d: &Path) -> Result<Blkio> {
    type Field = fn(&mut Blkio) -> &mut Vec<BlkioEntry>;
    let bytes: Field = |b| &mut b.io_service_bytes_recursive;
    let serviced: Field = |b| &mut b.io_serviced_recursive;
    let queued: Field = |b| &mut b.io_queue_recursive;
    let service_time: Field = |b| &mut b.io_service_time_recursive;
    let wait_time: Field = |b| &mut b.io_wait_time_recursive;
    let merged: Field = |b| &mut b.io_merged_recursive;
    let time: Field = |b| &mut b.io_time_recursive;
    let sectors: Field = |b| &mut b.sectors_recursive;
    let full = |p: &str| -> Vec<(String, Field)> {
        [
            ("sectors_recursive", sectors),
            ("io_service_time_recursive", service_time),
            ("io_wait_time_recursive", wait_time),
            ("io_merged_recursive", merged),
            ("io_queued_recursive", queued),
            ("time_recursive", time),
            ("io_serviced_recursive", serviced),
            ("io_service_bytes_recursive", bytes),
        ]
        .into_iter()
        .map(|(f, field)| (format!("blkio.{p}{f}"), field))
        .collect()
    };
    let pair = |suffix: &str| -> Vec<(String, Field)> {
        vec![
            (format!("blkio.{suffix}io_serviced"), serviced),
            (format!("blkio.{suffix}io_service_bytes"), bytes),
        ]
    };
    let groups = [
        full("bfq."),
        pair("bfq.")
            .into_iter()
            .map(|(f, x)| (f + "_recursive", x))
            .collect(),
        full(""),
        pair("throttle.")
            .into_iter()
            .map(|(f, x)| (f + "_recursive", x))
            .collect(),
        pair("throttle."),
    ];
    let mut b = Blkio::default();
    for group in groups {
        for (i, (file, field)) in group.iter().enumerate() {
            let entries = match read_opt(d, file)? {
                Some(text) => blkio_entries(&text, &d.join(file))?,
                None => Vec::new(),
            };
            if entries.is_empty() {
                if i == 0 {
                    break;
                }
                return Ok(b);
            }
            *field(&mut b) = entries;
            if i == group.len() - 1 {
                return Ok(b);
            }
        }
    }
    Ok(b)
}

/// "8:0 Read 1282048" lines (or "8:0 6792" without an op); the "Total N" line is skipped.
pub fn blkio_entries(text: &str, path: &Path) -> Result<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split([' ', ':']).filter(|s| !s.is_empty()).collect();
        let (major, minor, op, value) = match f[..] {
            [] | ["Total", _] => continue,
            [ma, mi, v] => (ma, mi, "", v),
            [ma, mi, op, v] => (ma, mi, op, v),
            _ => return Err(invalid(line, path)),
        };
        out.push(BlkioEntry {
            major: parse_u64(major, path)?,
            minor: parse_u64(minor, path)?,
            op: op.to_string(),
            value: parse_u64(value, path)?,
        });
    }
    Ok(out)
}

/// cgroup v2: everything in one directory. A controller that is not enabled there has no files
/// and reads as zeros (cpu.stat is always there).
pub fn v2(d: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(text) = read_opt(d, "cpu.stat")? {
        let kv = key_values(&text, &d.join("cpu.stat"))?;
        s.cpu.usage.total = get(&kv, "usage_usec") * 1000;
        s.cpu.usage.user = get(&kv, "user_usec") * 1000;
        s.cpu.usage.kernel = get(&kv, "system_usec") * 1000;
        s.cpu.throttling = Throttling {
            periods: get(&kv, "nr_periods"),
            throttled_periods: get(&kv, "nr_throttled"),
            throttled_time: get(&kv, "throttled_usec") * 1000,
        };
    }
    if let Some(text) = read_opt(d, "memory.stat")? {
        let raw = key_values(&text, &d.join("memory.stat"))?;
        let usage = MemoryEntry {
            usage: read_u64(d, "memory.current")?,
            limit: read_u64(d, "memory.max")?,
            max: read_u64_opt(d, "memory.peak")?,
            failcnt: 0,
        };
        // v1 reports swap as memory+swap; runc keeps that meaning on v2. A peak of the sum
        // cannot be derived from the two peaks, so there is none.
        let mut swap = MemoryEntry::default();
        if let Some(t) = read_opt(d, "memory.swap.current")? {
            swap.usage = parse_u64(&t, &d.join("memory.swap.current"))?;
            swap.limit = read_u64(d, "memory.swap.max")?;
        }
        swap.usage += usage.usage;
        if swap.limit != u64::MAX {
            swap.limit = swap.limit.wrapping_add(usage.limit);
        }
        s.memory = Memory {
            cache: get(&raw, "file"),
            usage,
            swap,
            raw: raw.into_iter().collect(),
            ..Default::default()
        };
    }
    s.pids = if d.join("pids.current").exists() {
        pids(d)?
    } else {
        // No pids controller here: count the members instead, as runc does.
        Pids {
            current: read_text(d, "cgroup.procs")?.lines().count() as u64,
            limit: 0,
        }
    };
    if let Some(text) = read_opt(d, "io.stat")? {
        s.blkio = io_stat(&text, &d.join("io.stat"))?;
    }
    for size in huge_page_sizes() {
        let Some(usage) = read_opt(d, &format!("hugetlb.{size}.current"))? else {
            continue;
        };
        let events_file = format!("hugetlb.{size}.events");
        let events = key_values(&read_text(d, &events_file)?, &d.join(&events_file))?;
        let h = Hugetlb {
            usage: parse_u64(&usage, &d.join(format!("hugetlb.{size}.current")))?,
            max: 0,
            failcnt: get(&events, "max"),
        };
        s.hugetlb.insert(size, h);
    }
    Ok(s)
}

/// io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0") in v1's terms: bytes and
/// operations, each as Read and Write entries; the other counters have no v1 equivalent.
pub fn io_stat(text: &str, path: &Path) -> Result<Blkio> {
    let mut b = Blkio::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (major, minor) = (parse_u64(major, path)?, parse_u64(minor, path)?);
        for item in f {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let (op, list) = match key {
                "rbytes" => ("Read", &mut b.io_service_bytes_recursive),
                "wbytes" => ("Write", &mut b.io_service_bytes_recursive),
                "rios" => ("Read", &mut b.io_serviced_recursive),
                "wios" => ("Write", &mut b.io_serviced_recursive),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: parse_u64(value, path)?,
            });
        }
    }
    Ok(b)
}

fn pids(d: &Path) -> Result<Pids> {
    let max = read_text(d, "pids.max")?;
    Ok(Pids {
        current: read_u64(d, "pids.current")?,
        limit: match max.trim() {
            "max" => 0,
            v => parse_u64(v, &d.join("pids.max"))?,
        },
    })
}

/// Huge page sizes of the host as runc names them ("2MB", "1GB"), from /sys/kernel/mm/hugepages.
fn huge_page_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let kb = name
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?;
            Some(page_size_name(kb.parse::<u64>().ok()? * 1024))
        })
        .collect();
    out.sort();
    out
}

/// Bytes in the largest binary unit that keeps the number at least 1, as Go's
/// `units.CustomSize("%g%s", size, 1024, ...)` prints them.
pub fn page_size_name(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{size}{}", UNITS[i])
}

/// "0-3,8,10-11" as a list of numbers.
pub fn cpu_list(text: &str, path: &Path) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |s: &str| s.parse::<u16>().map_err(|_| invalid(part, path));
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(invalid(part, path));
                }
                out.extend(lo..=hi);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// "key value" lines (memory.stat, cpu.stat, memory.events, ...).
pub fn key_values(text: &str, path: &Path) -> Result<Vec<(String, u64)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(' ').ok_or_else(|| invalid(l, path))?;
            Ok((k.to_string(), parse_u64(v, path)?))
        })
        .collect()
}

pub fn get(kv: &[(String, u64)], key: &str) -> u64 {
    kv.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

fn parse_list(text: &str, path: &Path) -> Result<Vec<u64>> {
    text.split_whitespace()
        .map(|v| parse_u64(v, path))
        .collect()
}

/// A cgroup number as runc reads one: "max" is the largest value, a negative one is 0.
pub fn parse_u64(text: &str, path: &Path) -> Result<u64> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().or_else(|_| match t.strip_prefix('-') {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok(0),
        _ => Err(invalid(t, path)),
    })
}

fn invalid(what: &str, path: &Path) -> Error {
    Error::msg(format!("parse {}: invalid value {what:?}", path.display()))
}

fn read_text(d: &Path, file: &str) -> Result<String> {
    super::read_file(&d.join(file))
}

fn read_opt(d: &Path, file: &str) -> Result<Option<String>> {
    super::read_file_opt(&d.join(file))
}

fn read_u64(d: &Path, file: &str) -> Result<u64> {
    super::read_u64(&d.join(file))
}

fn read_u64_opt(d: &Path, file: &str) -> Result<u64> {
    read_opt(d, file)?.map_or(Ok(0), |t| parse_u64(&t, &d.join(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup tree in a fresh temporary directory, removed on drop.
    struct Tree(PathBuf);

    impl Tree {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            // A leftover temporary directory is harmless; the test's verdict is what matters.
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree(files: &[(&str, &str)]) -> Tree {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let t = Tree(std::env::temp_dir().join(format!("husk-stats-{}-{n}", std::process::id())));
        for (name, body) in files {
            let p = t.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        t
    }

    #[test]
    fn v2_tree() {
        let t = tree(&[
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n\
                 nr_throttled 2\nthrottled_usec 30\nnr_bursts 0\nburst_usec 0\n",
            ),
            ("memory.stat", "anon 4096\nfile 8192\nkernel 100\n"),
            ("memory.current", "12288\n"),
            ("memory.max", "16777216\n"),
            ("memory.peak", "20000\n"),
            ("memory.swap.current", "4096\n"),
            ("memory.swap.max", "0\n"),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            (
                "io.stat",
                "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
            ),
            ("cgroup.procs", "1\n2\n3\n"),
        ]);
        let s = v2(t.path()).unwrap();
        assert_eq!(s.cpu.usage.total, 1_500_000);
        assert_eq!((s.cpu.usage.user, s.cpu.usage.kernel), (1_000_000, 500_000));
        assert_eq!(
            s.cpu.throttling,
            Throttling {
                periods: 7,
                throttled_periods: 2,
                throttled_time: 30_000
            }
        );
        assert_eq!(s.memory.cache, 8192);
        assert_eq!(
            s.memory.usage,
            MemoryEntry {
                limit: 16_777_216,
                usage: 12288,
                max: 20000,
                failcnt: 0
            }
        );
        assert_eq!(
            (s.memory.swap.usage, s.memory.swap.limit),
            (16384, 16_777_216)
        );
        assert_eq!(s.memory.raw.len(), 3);
        assert_eq!(
            s.pids,
            Pids {
                current: 3,
                limit: 0
            }
        );
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
    }

    #[test]
    fn v2_without_controllers() {
        // What a cgroup without enabled controllers holds: cpu.stat and the membership.
        let t = tree(&[
            ("cpu.stat", "usage_usec 10\nuser_usec 0\nsystem_usec 10\n"),
            ("cgroup.procs", "7\n8\n"),
        ]);
        let s = v2(t.path()).unwrap();
        assert_eq!(s.pids.current, 2);
        assert_eq!(s.memory, Memory::default());
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
    }

    #[test]
    fn v2_unlimited_swap_stays_unlimited() {
        let t = tree(&[
            ("memory.stat", "file 0\n"),
            ("memory.current", "100\n"),
            ("memory.max", "max\n"),
            ("memory.swap.current", "0\n"),
            ("memory.swap.max", "max\n"),
            ("cgroup.procs", ""),
        ]);
        let s = v2(t.path()).unwrap();
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!((s.memory.swap.usage, s.memory.swap.limit), (100, u64::MAX));
    }

    #[test]
    fn v1_tree() {
        let t = tree(&[
            ("cpuacct/cpuacct.usage", "3000\n"),
            ("cpuacct/cpuacct.usage_percpu", "1000 2000 \n"),
            ("cpuacct/cpuacct.stat", "user 2\nsystem 3\n"),
            (
                "cpuacct/cpuacct.usage_all",
                "cpu user system\n0 600 400\n1 1500 500\n",
            ),
            ("cpu/cpu.shares", "1024\n"),
            (
                "cpu/cpu.stat",
                "nr_periods 4\nnr_throttled 1\nthrottled_time 99\n",
            ),
            ("memory/memory.usage_in_bytes", "8192\n"),
            ("memory/memory.max_usage_in_bytes", "9000\n"),
            ("memory/memory.failcnt", "1\n"),
            ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory/memory.stat", "cache 4096\nrss 4096\n"),
            ("pids/pids.current", "2\n"),
            ("pids/pids.max", "50\n"),
            ("cpuset/cpuset.cpus", "0-1,3\n"),
            ("cpuset/cpuset.mems", "0\n"),
            ("cpuset/cpuset.sched_load_balance", "1\n"),
            ("cpuset/cpuset.sched_relax_domain_level", "-1\n"),
            ("blkio/blkio.reset_stats", ""),
            (
                "blkio/blkio.throttle.io_serviced_recursive",
                "8:0 Read 5\nTotal 5\n",
            ),
            (
                "blkio/blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\nTotal 4096\n",
            ),
            // The hybrid host's cgroup2 directory: never read for v1 stats.
            ("unified/cgroup.controllers", ""),
            ("unified/cpu.stat", "usage_usec 1\n"),
        ]);
        let dirs: Vec<PathBuf> = [
            "unified", "cpu", "cpuacct", "memory", "pids", "cpuset", "blkio",
        ]
        .iter()
        .map(|d| t.path().join(d))
        .collect();
        let s = v1(&dirs).unwrap();
        let u = &s.cpu.usage;
        assert_eq!((u.total, u.user, u.kernel), (3000, 20_000_000, 30_000_000));
        assert_eq!(u.percpu, [1000, 2000]);
        assert_eq!(
            (&u.percpu_user[..], &u.percpu_kernel[..]),
            (&[600, 1500][..], &[400, 500][..])
        );
        assert_eq!(s.cpu.throttling.throttled_time, 99);
        assert_eq!(s.memory.cache, 4096);
        assert_eq!(s.memory.usage.failcnt, 1);
        assert_eq!(s.memory.usage.limit, 9_223_372_036_854_771_712);
        assert_eq!(s.memory.swap, MemoryEntry::default(), "no memsw files");
        assert_eq!(
            s.pids,
            Pids {
                current: 2,
                limit: 50
            }
        );
        assert_eq!(s.cpuset.cpus, [0, 1, 3]);
        assert_eq!(s.cpuset.sched_relax_domain_level, -1);
        assert_eq!(s.blkio.io_serviced_recursive[0].value, 5);
        assert_eq!(s.blkio.io_service_bytes_recursive[0].op, "Read");
    }

    #[test]
    fn json_matches_runc_shape() {
        // Keys, order and omitted zeros as runc 1.1.5 printed them for an idle container.
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.cpu.usage.percpu = vec![2, 3];
        s.memory.usage = MemoryEntry {
            limit: 10,
            usage: 4,
            max: 6,
            failcnt: 0,
        };
        s.memory.raw.insert("cache".into(), 0);
        s.pids.current = 1;
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"cpu":{"usage":{"total":5,"percpu":[2,3],"kernel":0,"user":0},"throttling":{}},"#
                .to_owned()
                + r#""cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"#
                + r#""memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"#
                + r#""sched_load_balance":0,"sched_relax_domain_level":0},"#
                + r#""memory":{"usage":{"limit":10,"usage":4,"max":6,"failcnt":0},"#
                + r#""swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"#
                + r#""kernelTCP":{"limit":0,"failcnt":0},"raw":{"cache":0}},"#
                + r#""pids":{"current":1},"blkio":{},"hugetlb":{},"intel_rdt":{},"#
                + r#""network_interfaces":null}"#
        );
    }

    #[test]
    fn blkio_lines() {
        let p = Path::new("/x");
        let e = blkio_entries("8:16 Write 7\n8:0 6792\nTotal 7\n", p).unwrap();
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 16, "Write", 7)
        );
        assert_eq!((e[1].op.as_str(), e[1].value), ("", 6792));
        assert!(blkio_entries("garbage\n", p).is_err());
    }

    #[test]
    fn numbers_like_runc() {
        let p = Path::new("/x");
        assert_eq!(parse_u64("max\n", p).unwrap(), u64::MAX);
        assert_eq!(parse_u64("-1", p).unwrap(), 0);
        assert!(parse_u64("1x", p).is_err());
        assert_eq!(cpu_list("0-2,5\n", p).unwrap(), [0, 1, 2, 5]);
        assert!(cpu_list("3-1", p).is_err());
        assert_eq!(page_size_name(2048 * 1024), "2MB");
        assert_eq!(page_size_name(1_048_576 * 1024), "1GB");
        assert_eq!(page_size_name(64 * 1024), "64KB");
    }
}
