//! Stats, as the metrics type containerd decodes for the host's cgroup version.
//!
//! cgroup v1: the runtime's `events --stats` (runc's JSON), as `io.containerd.cgroups.v1.Metrics`,
//! so that any runc-compatible runtime serves.
//!
//! cgroup v2: the container's cgroup files themselves, as `io.containerd.cgroups.v2.Metrics`,
//! as containerd's Go shim reads them. runc's JSON is shaped for v1 and loses what v2's type
//! carries: memory.events (the OOM kills), swap alone (runc adds memory to it), memory.peak.

use containerd_shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use containerd_shim::protos::cgroups_v2::metrics as v2;
use serde_json::Value;
use std::{
    fs, io,
    path::{Path, PathBuf},
};

const CGROUP2: &str = "/sys/fs/cgroup";

/// The type containerd decodes cgroup v2 metrics by (the proto's full name).
pub const V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";

/// A pure cgroup v2 host: cgroup2 mounted at /sys/fs/cgroup (its root has cgroup.controllers).
pub fn is_v2() -> bool {
    Path::new(CGROUP2).join("cgroup.controllers").exists()
}

/// The cgroup v2 directory of `pid`, from its "0::PATH" line of /proc/PID/cgroup.
pub fn cgroup2_dir(pid: u32) -> Option<PathBuf> {
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new(CGROUP2).join(path.trim_start_matches('/')))
}

/// A cgroup v2 value: "max" is u64::MAX, as containerd's cgroups library reads it.
fn value(s: &str) -> u64 {
    match s.trim() {
        "max" => u64::MAX,
        v => v.parse().unwrap_or(0),
    }
}

/// One file of a cgroup, "" when the kernel lacks it (memory.peak before 5.19, a controller
/// not enabled).
fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// Sets the fields of `$msg` named like the keys of `$text`'s "KEY VALUE" lines (memory.stat,
/// cpu.stat, memory.events use the proto's field names), by hand rather than through
/// protobuf's reflection, which would bring its descriptors back into the binary (0.6 MB, most
/// of it resident: notes/shim.md).
macro_rules! set_keyed {
    ($msg:expr, $pairs:expr, [$($field:ident),* $(,)?]) => {
        for (k, v) in $pairs {
            match k {
                $(stringify!($field) => $msg.$field = value(v),)*
                _ => {}
            }
        }
    };
}

/// The "KEY VALUE" lines of a flat-keyed file.
fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| l.split_once(' '))
}

/// `io.stat`: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." lines.
fn io_entries(text: &str) -> Vec<v2::IOEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = f.next()?.split_once(':')?;
            let mut e = v2::IOEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                ..Default::default()
            };
            set_keyed!(
                e,
                f.filter_map(|kv| kv.split_once('=')),
                [rbytes, wbytes, rios, wios]
            );
            Some(e)
        })
        .collect()
}

/// hugetlb.SIZE.current/.max/.events for each page size the cgroup has files for.
fn hugetlb(dir: &Path) -> Vec<v2::HugeTlbStat> {
    let mut sizes: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(".current")?;
            Some(size.to_string())
        })
        .collect();
    sizes.sort();
    sizes
        .into_iter()
        .map(|size| {
            let events = read(dir, &format!("hugetlb.{size}.events"));
            v2::HugeTlbStat {
                current: value(&read(dir, &format!("hugetlb.{size}.current"))),
                max: value(&read(dir, &format!("hugetlb.{size}.max"))),
                failcnt: events
                    .lines()
                    .find_map(|l| l.strip_prefix("max "))
                    .map_or(0, value),
                pagesize: size,
                ..Default::default()
            }
        })
        .collect()
}

/// The metrics of the cgroup v2 directory `dir`; an error when it is gone.
pub fn v2_metrics(dir: &Path) -> io::Result<v2::Metrics> {
    // cgroup.procs exists in every cgroup, whatever its controllers.
    fs::metadata(dir.join("cgroup.procs"))?;
    let mut memory = v2::MemoryStat {
        usage: value(&read(dir, "memory.current")),
        usage_limit: value(&read(dir, "memory.max")),
        swap_usage: value(&read(dir, "memory.swap.current")),
        swap_limit: value(&read(dir, "memory.swap.max")),
        max_usage: value(&read(dir, "memory.peak")),
        swap_max_usage: value(&read(dir, "memory.swap.peak")),
        ..Default::default()
    };
    set_keyed!(
        memory,
        pairs(&read(dir, "memory.stat")),
        [
            anon,
            file,
            kernel_stack,
            slab,
            sock,
            shmem,
            file_mapped,
            file_dirty,
            file_writeback,
            anon_thp,
            inactive_anon,
            active_anon,
            inactive_file,
            active_file,
            unevictable,
            slab_reclaimable,
            slab_unreclaimable,
            pgfault,
            pgmajfault,
            workingset_refault,
            workingset_activate,
            workingset_nodereclaim,
            pgrefill,
            pgscan,
            pgsteal,
            pgactivate,
            pgdeactivate,
            pglazyfree,
            pglazyfreed,
            thp_fault_alloc,
            thp_collapse_alloc,
        ]
    );
    let mut cpu = v2::CPUStat::default();
    set_keyed!(
        cpu,
        pairs(&read(dir, "cpu.stat")),
        [
            usage_usec,
            user_usec,
            system_usec,
            nr_periods,
            nr_throttled,
            throttled_usec,
            nr_bursts,
            burst_usec,
        ]
    );
    let mut memory_events = v2::MemoryEvents::default();
    set_keyed!(
        memory_events,
        pairs(&read(dir, "memory.events")),
        [low, high, max, oom, oom_kill, oom_group_kill]
    );
    Ok(v2::Metrics {
        pids: Some(v2::PidsStat {
            current: value(&read(dir, "pids.current")),
            limit: value(&read(dir, "pids.max")),
            ..Default::default()
        })
        .into(),
        cpu: Some(cpu).into(),
        memory: Some(memory).into(),
        memory_events: Some(memory_events).into(),
        io: Some(v2::IOStat {
            usage: io_entries(&read(dir, "io.stat")),
            ..Default::default()
        })
        .into(),
        hugetlb: hugetlb(dir),
        ..Default::default()
    })
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn entry(v: &Value) -> MemoryEntry {
    MemoryEntry {
        limit: u(&v["limit"]),
        usage: u(&v["usage"]),
        max: u(&v["max"]),
        failcnt: u(&v["failcnt"]),
        ..Default::default()
    }
}

fn blkio_entries(v: &Value) -> Vec<BlkIOEntry> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|e| BlkIOEntry {
            op: e["op"].as_str().unwrap_or_default().to_string(),
            major: u(&e["major"]),
            minor: u(&e["minor"]),
            value: u(&e["value"]),
            ..Default::default()
        })
        .collect()
}

/// `data` of one `events --stats` line.
/// The type containerd decodes cgroup v1 metrics by (the proto's full name).
pub const V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";

pub fn v1_metrics(data: &Value) -> Metrics {
    let cpu = &data["cpu"];
    let mem = &data["memory"];
    let raw = &mem["raw"];
    let b = &data["blkio"];
    Metrics {
        hugetlb: data["hugetlb"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(size, h)| HugetlbStat {
                usage: u(&h["usage"]),
                max: u(&h["max"]),
                failcnt: u(&h["failcnt"]),
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        pids: Some(PidsStat {
            current: u(&data["pids"]["current"]),
            limit: u(&data["pids"]["limit"]),
            ..Default::default()
        })
        .into(),
        cpu: Some(CPUStat {
            usage: Some(CPUUsage {
                total: u(&cpu["usage"]["total"]),
                kernel: u(&cpu["usage"]["kernel"]),
                user: u(&cpu["usage"]["user"]),
                per_cpu: cpu["usage"]["percpu"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(u)
                    .collect(),
                ..Default::default()
            })
            .into(),
            throttling: Some(Throttle {
                periods: u(&cpu["throttling"]["periods"]),
                throttled_periods: u(&cpu["throttling"]["throttled_periods"]),
                throttled_time: u(&cpu["throttling"]["throttled_time"]),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
        .into(),
        memory: Some(MemoryStat {
            cache: u(&raw["cache"]),
            rss: u(&raw["rss"]),
            rss_huge: u(&raw["rss_huge"]),
            mapped_file: u(&raw["mapped_file"]),
            dirty: u(&raw["dirty"]),
            writeback: u(&raw["writeback"]),
            pg_pg_in: u(&raw["pgpgin"]),
            pg_pg_out: u(&raw["pgpgout"]),
            pg_fault: u(&raw["pgfault"]),
            pg_maj_fault: u(&raw["pgmajfault"]),
            inactive_anon: u(&raw["inactive_anon"]),
            active_anon: u(&raw["active_anon"]),
            inactive_file: u(&raw["inactive_file"]),
            active_file: u(&raw["active_file"]),
            unevictable: u(&raw["unevictable"]),
            hierarchical_memory_limit: u(&raw["hierarchical_memory_limit"]),
            hierarchical_swap_limit: u(&raw["hierarchical_memsw_limit"]),
            total_cache: u(&raw["total_cache"]),
            total_rss: u(&raw["total_rss"]),
            total_rss_huge: u(&raw["total_rss_huge"]),
            total_mapped_file: u(&raw["total_mapped_file"]),
            total_dirty: u(&raw["total_dirty"]),
            total_writeback: u(&raw["total_writeback"]),
            total_pg_pg_in: u(&raw["total_pgpgin"]),
            total_pg_pg_out: u(&raw["total_pgpgout"]),
            total_pg_fault: u(&raw["total_pgfault"]),
            total_pg_maj_fault: u(&raw["total_pgmajfault"]),
            total_inactive_anon: u(&raw["total_inactive_anon"]),
            total_active_anon: u(&raw["total_active_anon"]),
            total_inactive_file: u(&raw["total_inactive_file"]),
            total_active_file: u(&raw["total_active_file"]),
            total_unevictable: u(&raw["total_unevictable"]),
            usage: Some(entry(&mem["usage"])).into(),
            swap: Some(entry(&mem["swap"])).into(),
            kernel: Some(entry(&mem["kernel"])).into(),
            kernel_tcp: Some(entry(&mem["kernelTCP"])).into(),
            ..Default::default()
        })
        .into(),
        blkio: Some(BlkIOStat {
            io_service_bytes_recursive: blkio_entries(&b["ioServiceBytesRecursive"]),
            io_serviced_recursive: blkio_entries(&b["ioServicedRecursive"]),
            io_queued_recursive: blkio_entries(&b["ioQueueRecursive"]),
            io_service_time_recursive: blkio_entries(&b["ioServiceTimeRecursive"]),
            io_wait_time_recursive: blkio_entries(&b["ioWaitTimeRecursive"]),
            io_merged_recursive: blkio_entries(&b["ioMergedRecursive"]),
            io_time_recursive: blkio_entries(&b["ioTimeRecursive"]),
            sectors_recursive: blkio_entries(&b["sectorsRecursive"]),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_metrics_name_is_the_protos() {
        use containerd_shim::protos::protobuf::MessageFull;
        assert_eq!(V1_METRICS, Metrics::descriptor().full_name());
    }

    #[test]
    fn v2_metrics_name_is_the_protos() {
        use containerd_shim::protos::protobuf::MessageFull;
        assert_eq!(V2_METRICS, v2::Metrics::descriptor().full_name());
    }

    #[test]
    fn v2_files_map_to_v2_metrics() {
        let dir = std::env::temp_dir().join(format!("husk-shim-stats-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("cgroup.procs", ""),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.peak", "8192\n"),
            (
                "memory.stat",
                "anon 100\nfile 200\npgfault 7\nnot_a_field 9\npsi 1\n",
            ),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n"),
            ("cpu.stat", "usage_usec 50\nuser_usec 30\nsystem_usec 20\n"),
            ("pids.current", "2\n"),
            ("pids.max", "64\n"),
            (
                "io.stat",
                "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
            ),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.events", "max 4\n"),
        ] {
            fs::write(dir.join(name), text).unwrap();
        }
        let m = v2_metrics(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!((m.pids.current, m.pids.limit), (2, 64));
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (50, 30, 20)
        );
        assert_eq!(
            (m.memory.usage, m.memory.usage_limit, m.memory.max_usage),
            (4096, u64::MAX, 8192)
        );
        assert_eq!(
            (m.memory.anon, m.memory.file, m.memory.pgfault),
            (100, 200, 7)
        );
        assert_eq!((m.memory_events.max, m.memory_events.oom_kill), (3, 1));
        let e = &m.io.usage[0];
        assert_eq!((e.major, e.minor, e.rbytes, e.wios), (8, 0, 10, 2));
        let h = &m.hugetlb[0];
        assert_eq!(
            (h.pagesize.as_str(), h.max, h.failcnt),
            ("2MB", u64::MAX, 4)
        );
        assert!(v2_metrics(&dir).is_err(), "a removed cgroup is an error");
    }

    #[test]
    fn runc_stats_json_maps_to_v1_metrics() {
        let data: Value = serde_json::from_str(
            r#"{"cpu":{"usage":{"total":10,"percpu":[6,4],"kernel":3,"user":7},
                "throttling":{"periods":2,"throttled_periods":1,"throttled_time":5}},
               "memory":{"usage":{"limit":100,"usage":50,"max":60,"failcnt":1},
                "kernelTCP":{"limit":9},"raw":{"cache":11,"total_rss":12,"pgfault":13}},
               "pids":{"current":3,"limit":64},
               "blkio":{"ioServiceBytesRecursive":[{"major":8,"minor":0,"op":"Read","value":42}]},
               "hugetlb":{"2MB":{"usage":1,"max":2,"failcnt":0}}}"#,
        )
        .unwrap();
        let m = v1_metrics(&data);
        assert_eq!((m.pids.current, m.pids.limit), (3, 64));
        assert_eq!(m.cpu.usage.per_cpu, [6, 4]);
        assert_eq!(
            (m.cpu.usage.total, m.cpu.throttling.throttled_time),
            (10, 5)
        );
        assert_eq!(
            (
                m.memory.usage.usage,
                m.memory.usage.max,
                m.memory.kernel_tcp.limit
            ),
            (50, 60, 9)
        );
        assert_eq!(
            (m.memory.cache, m.memory.total_rss, m.memory.pg_fault),
            (11, 12, 13)
        );
        let e = &m.blkio.io_service_bytes_recursive[0];
        assert_eq!((e.op.as_str(), e.major, e.value), ("Read", 8, 42));
        assert_eq!(
            (m.hugetlb[0].pagesize.as_str(), m.hugetlb[0].max),
            ("2MB", 2)
        );
    }
}
