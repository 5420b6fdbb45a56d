//! Stats: the runtime's `events --stats` (runc's JSON), as the cgroup v1 metrics containerd
//! decodes (`io.containerd.cgroups.v1.Metrics`), so that any runc-compatible runtime serves.

use containerd_shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use serde_json::Value;

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
