//! `husk update`: new resource limits for a running container, from runc's flags or from an
//! OCI LinuxResources JSON (-r FILE, or - for stdin, as containerd sends it).

use crate::cli::Update;
use crate::error::{Context, Error, Result};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
};

pub fn run(root: &std::path::Path, u: &Update) -> anyhow::Result<i32> {
    crate::container::update(root, &u.id, &resources(u)?)?;
    Ok(0)
}

/// go-units' RAMInBytes: a number with an optional binary unit (k, m, g, t, p; "b" optional).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error::msg(format!("invalid size: {s:?}")))?;
    if n < 0.0 {
        return Err(Error::msg(format!("invalid size: {s:?}")));
    }
    Ok((n * mult as f64) as i64)
}

pub fn resources(u: &Update) -> Result<LinuxResources> {
    if let Some(path) = &u.resources {
        let data = if path.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                .ctx("read resources from stdin")?;
            v
        } else {
            std::fs::read(path).with_ctx(|| format!("--resources: read {}", path.display()))?
        };
        let r: LinuxResources =
            serde_json::from_slice(&data).map_err(|e| Error::msg(format!("--resources: {e}")))?;
        if let Ok(raw) = serde_json::from_slice(&data) {
            crate::container::fields::warn_dropped("--resources: ", &raw, &r);
        }
        return Ok(r);
    }
    if u.l3_cache_schema.is_some() || u.mem_bw_schema.is_some() {
        return Err(Error::msg(
            "Intel RDT: not supported by this host (no resctrl)",
        ));
    }
    let bad = |e: oci_spec::OciSpecError| Error::msg(format!("update: {e}"));
    let mut r = LinuxResources::default();
    let mut mem = LinuxMemoryBuilder::default();
    let mut any_mem = false;
    if let Some(m) = &u.memory {
        mem = mem.limit(parse_bytes(m)?);
        any_mem = true;
    }
    if let Some(m) = &u.memory_reservation {
        mem = mem.reservation(parse_bytes(m)?);
        any_mem = true;
    }
    if let Some(m) = &u.memory_swap {
        mem = mem.swap(parse_bytes(m)?);
        any_mem = true;
    }
    // Accepted and ignored, with runc's warning (the memory writer gives it).
    if let Some(m) = &u.kernel_memory {
        mem = mem.kernel(parse_bytes(m)?);
        any_mem = true;
    }
    if let Some(m) = &u.kernel_memory_tcp {
        mem = mem.kernel_tcp(parse_bytes(m)?);
        any_mem = true;
    }
    if any_mem {
        r.set_memory(Some(mem.build().map_err(bad)?));
    }
    let cpu_set = u.cpu_share.is_some()
        || u.cpu_quota.is_some()
        || u.cpu_period.is_some()
        || u.cpu_rt_period.is_some()
        || u.cpu_rt_runtime.is_some()
        || u.cpuset_cpus.is_some()
        || u.cpuset_mems.is_some();
    if cpu_set {
        let mut c = LinuxCpuBuilder::default();
        if let Some(v) = u.cpu_share {
            c = c.shares(v);
        }
        if let Some(v) = u.cpu_quota {
            c = c.quota(v);
        }
        if let Some(v) = u.cpu_period {
            c = c.period(v);
        }
        if let Some(v) = u.cpu_rt_period {
            c = c.realtime_period(v);
        }
        if let Some(v) = u.cpu_rt_runtime {
            c = c.realtime_runtime(v);
        }
        if let Some(v) = &u.cpuset_cpus {
            c = c.cpus(v.clone());
        }
        if let Some(v) = &u.cpuset_mems {
            c = c.mems(v.clone());
        }
        r.set_cpu(Some(c.build().map_err(bad)?));
    }
    if let Some(p) = u.pids_limit {
        r.set_pids(Some(
            LinuxPidsBuilder::default().limit(p).build().map_err(bad)?,
        ));
    }
    if let Some(w) = u.blkio_weight {
        r.set_block_io(Some(
            LinuxBlockIoBuilder::default()
                .weight(w)
                .build()
                .map_err(bad)?,
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(parse_bytes("134217728").unwrap(), 134_217_728);
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2kb").unwrap(), 2048);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }
}
