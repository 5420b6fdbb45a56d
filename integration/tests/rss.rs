//! Memory of one shim per container, ours against containerd's Go shim (runc), under the same
//! containerd and load. A measurement, not a check: run it on purpose, with release binaries,
//!
//!     SHIM_BIN=.../release/containerd-shim-husk-v2 HUSK_BIN=.../release/husk \
//!         cargo nextest run -p integration --run-ignored only --no-capture shim_rss

use std::fs;

use integration::{Containerd, Options, IMAGE, RUNTIME};

fn kib(pid: i32, file: &str, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a measurement; run it on purpose"]
fn shim_rss_per_container() {
    let n: usize = std::env::var("CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let c = Containerd::start_with(
        "rss",
        Options {
            runc_v2_is_husk_shim: false,
            ..Options::default()
        },
    );
    for i in 0..n {
        c.ctr_ok(&[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            IMAGE,
            &format!("h{i}"),
            "sleep",
            "1000",
        ]);
        c.ctr_ok(&[
            "run",
            "-d",
            "--runtime",
            "io.containerd.runc.v2",
            IMAGE,
            &format!("g{i}"),
            "sleep",
            "1000",
        ]);
    }
    // Each shim has served create, start and a state or two: the steady state of a container.
    c.ctr_ok(&["task", "ls"]);
    let ours = fs::canonicalize(integration::shim_bin()).unwrap();
    let (mut husk, mut go) = (Vec::new(), Vec::new());
    for pid in c.shims() {
        let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let m = (
            kib(pid, "status", "VmRSS:"),
            kib(pid, "smaps_rollup", "Pss:"),
        );
        if exe == ours {
            husk.push(m)
        } else {
            go.push(m)
        }
    }
    assert_eq!((husk.len(), go.len()), (n, n), "one shim per container");
    for (name, v) in [
        ("containerd-shim-husk-v2 (husk)", &husk),
        ("containerd-shim-runc-v2 (runc)", &go),
    ] {
        let rss: u64 = v.iter().map(|m| m.0).sum();
        let pss: u64 = v.iter().map(|m| m.1).sum();
        println!(
            "{name}: {n} shims, RSS per shim {:.2} MiB, PSS per shim {:.2} MiB",
            rss as f64 / n as f64 / 1024.0,
            pss as f64 / n as f64 / 1024.0
        );
    }
}
