//! `husk update`: new resource limits for a running container, from runc's flags or from an
//! OCI LinuxResources JSON (-r FILE, or - for stdin, as containerd sends it).

use crate::cli::Update;
use crate::error::{Context, Error, Result};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
};

pub fn run(root: &std::path::Path, u: &Update) -> anyhow::Result<i32> {
    // runc finds the container before it reads a value: an unknown id is reported as such.
    crate::container::open_existing(root, &u.id)?;
    crate::container::update(root, &u.id, &resources(u)?)?;
    Ok(0)
}

/// go-units' RAMInBytes, as runc 1.1.5 has it: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, the
/// number parsed as a float (so more than one dot fails there), times a binary multiple,
/// truncated. A product past i64 becomes
/// i64::MIN in Go, which the kernel then refuses; it is refused here.
pub fn ram_in_bytes(s: &str) -> std::result::Result<i64, String> {
    let lower = s.to_ascii_lowercase();
    let rest = lower.strip_suffix('b').unwrap_or(&lower);
    let rest = rest.strip_suffix('i').unwrap_or(rest);
    let shift = rest
        .bytes()
        .last()
        .and_then(|u| b"kmgtp".iter().position(|&p| p == u))
        .map_or(0, |i| 10 * (i + 1));
    let rest = if shift > 0 {
        &rest[..rest.len() - 1]
    } else {
        rest
    };
    let num = rest.strip_suffix(' ').unwrap_or(rest);
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !num.split('.').all(digits) {
        return Err(format!("invalid size: '{s}'"));
    }
    let n: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    let bytes = n * (1u64 << shift) as f64;
    // 2^63 itself is out of range too; anything below converts exactly after truncation.
    if bytes >= i64::MAX as f64 {
        return Err(format!("size '{s}' is out of range"));
    }
    Ok(bytes as i64)
}

/// A size flag as runc reads it: "" is not set, "-1" is no limit, the rest [`ram_in_bytes`].
fn size_flag(flag: &str, value: &Option<String>) -> Result<Option<i64>> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(v) => ram_in_bytes(v)
            .map(Some)
            .map_err(|e| Error::msg(format!("invalid value for {flag}: {e}"))),
    }
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
    type Set = fn(LinuxMemoryBuilder, i64) -> LinuxMemoryBuilder;
    let sizes: [(&str, &Option<String>, Set); 5] = [
        ("memory", &u.memory, LinuxMemoryBuilder::limit),
        (
            "memory-reservation",
            &u.memory_reservation,
            LinuxMemoryBuilder::reservation,
        ),
        ("memory-swap", &u.memory_swap, LinuxMemoryBuilder::swap),
        // Accepted and ignored, with runc's warning (the memory writer gives it).
        (
            "kernel-memory",
            &u.kernel_memory,
            LinuxMemoryBuilder::kernel,
        ),
        (
            "kernel-memory-tcp",
            &u.kernel_memory_tcp,
            LinuxMemoryBuilder::kernel_tcp,
        ),
    ];
    for (flag, value, set) in sizes {
        if let Some(n) = size_flag(flag, value)? {
            mem = set(mem, n);
            any_mem = true;
        }
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

    /// Checked against runc 1.1.5's `update --memory` on this machine where the kernel takes the
    /// value; the others by go-units' rules.
    #[test]
    fn sizes_parse_like_go_units() {
        for (s, want) in [
            ("134217728", 134_217_728),
            ("512MiB", 512 << 20),
            ("512mib", 512 << 20),
            ("512Mi", 512 << 20),
            ("512M", 512 << 20),
            ("512mb", 512 << 20),
            ("512 m", 512 << 20),
            ("512 ", 512),
            ("536870912 ", 512 << 20),
            ("1.5g", 3 << 29),
            ("0.5k", 512),
            ("1.0000001k", 1024),
            ("10i", 10),
            ("10ib", 10),
            ("10B", 10),
            ("10KiB", 10 << 10),
            ("00012m", 12 << 20),
            ("0", 0),
            ("8191p", 8191 << 50),
        ] {
            assert_eq!(ram_in_bytes(s), Ok(want), "{s:?}");
        }
        for s in [
            "",
            "nan",
            "inf",
            "1e3",
            "-1",
            "-2",
            "+5",
            "0x10",
            "512  m",
            " 512m",
            "512m ",
            "10bi",
            ".5m",
            "5.m",
            "5..5m",
            "1,5g",
            "\u{663}m",
            "2\u{212A}",
            "512MiBs",
            "m",
            "i",
            "b",
        ] {
            assert_eq!(
                ram_in_bytes(s),
                Err(format!("invalid size: '{s}'")),
                "{s:?}"
            );
        }
        assert_eq!(
            ram_in_bytes("1.2.3m").unwrap_err(),
            r#"strconv.ParseFloat: parsing "1.2.3": invalid syntax"#
        );
        for s in [
            "8192p",
            "9223372036854775807",
            "99999999999999999999",
            &"9".repeat(400),
        ] {
            assert_eq!(
                ram_in_bytes(s),
                Err(format!("size '{s}' is out of range")),
                "{s:?}"
            );
        }
    }

    #[test]
    fn size_flags_as_runc_reads_them() {
        let v = |s: &str| Some(s.to_string());
        assert_eq!(size_flag("memory", &None).unwrap(), None);
        assert_eq!(size_flag("memory", &v("")).unwrap(), None);
        assert_eq!(size_flag("memory", &v("-1")).unwrap(), Some(-1));
        assert_eq!(size_flag("memory", &v("1k")).unwrap(), Some(1024));
        assert_eq!(
            size_flag("memory-swap", &v("nan")).unwrap_err().to_string(),
            "invalid value for memory-swap: invalid size: 'nan'"
        );
    }
}
