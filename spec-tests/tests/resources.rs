//! Every linux.resources field: written at create and by `update`, read back from the host's
//! cgroup files (and from inside the container where it shows there), and what happens when
//! the controller it needs is not mounted (runc refuses: "cannot set X limit: container could
//! not join or create cgroup"). On a v1 (hybrid) host v1's files are read; on a pure v2 host
//! (scripts/v2vm.sh) v2's, with runc's conversions. A field v2 has no file for is accepted and
//! ignored there, as runc 1.1 does; a test of v1's files alone skips on v2, saying why.
//!
//! runc 1.1's `update` applies only memory limit/reservation/swap, the cpu fields, the blkio
//! weight, pids and unified; husk's applies every field it is given, as create does. Tests of
//! the difference say so and expect runc 1.1 to leave the value alone.

use serde_json::{json, Value};
use spec_tests::cgroup::{dir_of_pid, hierarchies, is_v2, read, skip_unless_v1, skip_unless_v2};
use spec_tests::runtime::is_runc_1_1;
use spec_tests::{assert_one_line_naming, Container, Fifo};
use std::io::Write;
use std::path::PathBuf;

/// The value the v1 memory controller shows for "no limit".
const NO_LIMIT: &str = "9223372036854771712";

fn mounted(controller: &str) -> bool {
    hierarchies()
        .iter()
        .any(|h| h.controllers.iter().any(|c| c == controller))
}

/// A container running `sleep 1000` with `resources`, created (not started).
fn created(name: &str, resources: Value) -> (Container, i32) {
    let mut c = Container::new(name);
    c.bundle.config["linux"]["resources"] = resources;
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    (c, pid)
}

/// Create fails with one line naming one of `needles`, and leaves nothing behind.
#[track_caller]
fn create_fails(name: &str, resources: Value, needles: &[&str]) {
    let mut c = Container::new(name);
    c.bundle.config["linux"]["resources"] = resources;
    c.bundle.set_args(&["sleep", "1000"]);
    let out = c.create();
    assert_one_line_naming(out.assert_failure(), needles);
    c.assert_clean();
}

/// `update <args> <id>`, asserted.
#[track_caller]
fn update(c: &Container, args: &[&str]) {
    let mut a = vec!["update"];
    a.extend_from_slice(args);
    a.push(&c.id);
    c.rt.run_args(&a).assert_success();
}

/// `update -r FILE` with `resources` in FILE.
fn update_json(c: &Container, resources: &Value) -> spec_tests::Output {
    let file = c.bundle.path().join("resources.json");
    std::fs::write(&file, resources.to_string()).unwrap();
    c.rt.run_args(&["update", "-r", file.to_str().unwrap(), &c.id])
}

/// major:minor of the whole disk holding the root filesystem; None (saying so) when it is on
/// no block device, as in the v2 guest, whose / is an overlay over 9p.
fn root_disk() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dev = text
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .and_then(|l| l.split(' ').nth(2))
        .expect("/ is mounted")
        .to_owned();
    let sys = PathBuf::from(format!("/sys/dev/block/{dev}"));
    if !sys.exists() {
        eprintln!("skipped: / is on no block device here ({dev}), so no disk to throttle");
        return None;
    }
    Some(if sys.join("partition").exists() {
        let disk = std::fs::canonicalize(&sys).unwrap();
        read(disk.parent().unwrap(), "dev")
    } else {
        dev
    })
}

#[test]
fn memory_swappiness_and_oom_killer() {
    if is_v2() {
        // v2 has no swappiness, OOM-killer switch or hierarchy flag: accepted and ignored.
        let (mut c, _) = created(
            "res_memory_misc",
            json!({"memory": {"swappiness": 30, "disableOOMKiller": true, "useHierarchy": true}}),
        );
        c.delete_force_ok();
        return;
    }
    let mut c = Container::new("res_memory_misc");
    c.bundle.config["linux"]["resources"]["memory"] =
        json!({"swappiness": 30, "disableOOMKiller": true, "useHierarchy": true});
    c.bundle
        .set_script("cat /sys/fs/cgroup/memory/memory.swappiness; sleep 1000");
    c.bundle.write_config();
    let out = c.rt.create(c.bundle.path(), &c.id);
    out.assert_success();
    c.observe();
    let d = dir_of_pid(c.pid(), "memory");
    assert_eq!(read(&d, "memory.swappiness"), "30");
    assert!(
        read(&d, "memory.oom_control").contains("oom_kill_disable 1"),
        "{}",
        read(&d, "memory.oom_control")
    );
    assert_eq!(read(&d, "memory.use_hierarchy"), "1");
    c.start_ok();
    spec_tests::sync::wait_for_output(&out, "30\n");
    c.delete_force_ok();
}

#[test]
fn use_hierarchy_false_is_ignored() {
    if skip_unless_v1("memory.use_hierarchy") {
        return;
    }
    // Kernels since 5.16 are always hierarchical and refuse 0; runc does not write it.
    let (mut c, pid) = created(
        "res_use_hierarchy",
        json!({"memory": {"useHierarchy": false}}),
    );
    assert_eq!(
        read(&dir_of_pid(pid, "memory"), "memory.use_hierarchy"),
        "1"
    );
    c.delete_force_ok();
}

#[test]
fn kernel_memory_is_ignored_with_a_warning() {
    let mut c = Container::new("res_kmem");
    c.bundle.config["linux"]["resources"]["memory"] =
        json!({"kernel": 67108864, "kernelTCP": 33554432});
    c.bundle.set_args(&["sleep", "1000"]);
    let out = c.create();
    out.assert_success();
    assert!(
        out.stderr
            .contains("Kernel memory settings are ignored and will be removed"),
        "{out}"
    );
    let d = dir_of_pid(c.pid(), "memory");
    if is_v2() {
        // v2 has no kernel memory limits at all.
        c.delete_force_ok();
        return;
    }
    assert_eq!(read(&d, "memory.kmem.limit_in_bytes"), NO_LIMIT);
    assert_eq!(read(&d, "memory.kmem.tcp.limit_in_bytes"), NO_LIMIT);
    c.delete_force_ok();
}

#[test]
fn swappiness_above_100_is_refused() {
    if is_v2() {
        // runc 1.1 validates swappiness only where it writes it, which v2 has no file for.
        let (mut c, _) = created("res_swappiness_bad", json!({"memory": {"swappiness": 101}}));
        c.delete_force_ok();
        return;
    }
    create_fails(
        "res_swappiness_bad",
        json!({"memory": {"swappiness": 101}}),
        &["invalid memory swappiness value: 101"],
    );
}

#[test]
fn cpu_realtime() {
    let (mut c, pid) = created(
        "res_cpu_rt",
        json!({"cpu": {"realtimePeriod": 500000, "realtimeRuntime": 10000}}),
    );
    if is_v2() {
        // v2 has no realtime group scheduling: accepted and ignored, as runc 1.1 does.
        c.delete_force_ok();
        return;
    }
    let d = dir_of_pid(pid, "cpu");
    assert_eq!(read(&d, "cpu.rt_period_us"), "500000");
    assert_eq!(read(&d, "cpu.rt_runtime_us"), "10000");
    c.delete_force_ok();
}

#[test]
fn cpu_realtime_beyond_the_parent_is_refused() {
    // The host grants 950000 of every 1000000 us to realtime tasks; a child cannot have more.
    // v2 has no such budget to exceed.
    if is_v2() {
        let (mut c, _) = created(
            "res_cpu_rt_bad",
            json!({"cpu": {"realtimeRuntime": 2000000}}),
        );
        c.delete_force_ok();
        return;
    }
    create_fails(
        "res_cpu_rt_bad",
        json!({"cpu": {"realtimeRuntime": 2000000}}),
        &["cpu.rt_runtime_us"],
    );
}

#[test]
fn cpu_burst_and_idle() {
    let (mut c, pid) = created(
        "res_cpu_burst",
        json!({"cpu": {"quota": 50000, "period": 100000, "burst": 20000, "idle": 1}}),
    );
    let d = dir_of_pid(pid, "cpu");
    if is_v2() {
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        // runc 1.1.5 predates burst and leaves idle alone on v2 too.
        let (burst, idle) = if is_runc_1_1() {
            ("0", "0")
        } else {
            ("20000", "1")
        };
        assert_eq!(read(&d, "cpu.max.burst"), burst);
        assert_eq!(read(&d, "cpu.idle"), idle);
        c.delete_force_ok();
        return;
    }
    assert_eq!(read(&d, "cpu.cfs_quota_us"), "50000");
    if is_runc_1_1() {
        // runc 1.1 predates burst and writes idle on cgroup v2 only.
        assert_eq!(read(&d, "cpu.cfs_burst_us"), "0");
        assert_eq!(read(&d, "cpu.idle"), "0");
    } else {
        assert_eq!(read(&d, "cpu.cfs_burst_us"), "20000");
        assert_eq!(read(&d, "cpu.idle"), "1");
    }
    c.delete_force_ok();
}

#[test]
fn cpu_shares_out_of_range_are_refused() {
    // On v2 runc 1.1's conversion to cpu.weight under- or overflows and the kernel refuses it;
    // husk names the bound as on v1.
    create_fails(
        "res_shares_low",
        json!({"cpu": {"shares": 1}}),
        &["the minimum allowed cpu-shares is 2", "cpu.weight"],
    );
    create_fails(
        "res_shares_high",
        json!({"cpu": {"shares": 300000}}),
        &["the maximum allowed cpu-shares is 262144", "cpu.weight"],
    );
}

#[test]
fn blkio_weight_and_throttles() {
    if skip_unless_v1("blkio") {
        return;
    }
    let Some(disk) = root_disk() else { return };
    let (maj, min) = disk.split_once(':').unwrap();
    let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
    let dev = |rate: u64| json!([{"major": maj, "minor": min, "rate": rate}]);
    let (mut c, pid) = created(
        "res_blkio",
        json!({"blockIO": {
            "weight": 300,
            "throttleReadBpsDevice": dev(1048576),
            "throttleWriteBpsDevice": dev(2097152),
            "throttleReadIOPSDevice": dev(100),
            "throttleWriteIOPSDevice": dev(200)
        }}),
    );
    let d = dir_of_pid(pid, "blkio");
    // CFQ's file where there is one, else BFQ's (kernels since 5.0).
    let weight = if d.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    assert_eq!(read(&d, weight), "300");
    for (file, rate) in [
        ("read_bps_device", 1048576),
        ("write_bps_device", 2097152),
        ("read_iops_device", 100),
        ("write_iops_device", 200),
    ] {
        assert_eq!(
            read(&d, &format!("blkio.throttle.{file}")),
            format!("{disk} {rate}")
        );
    }
    c.delete_force_ok();
}

#[test]
fn blkio_leaf_and_device_weights_need_their_files() {
    if skip_unless_v1("blkio") {
        return;
    }
    // A child cgroup has files the root lacks; look at a container's.
    let (mut c, pid) = created("res_blkio_probe", json!({}));
    let d = dir_of_pid(pid, "blkio");
    let has_leaf = d.join("blkio.leaf_weight").exists();
    let has_cfq_wd = d.join("blkio.weight_device").exists();
    c.delete_force_ok();
    if has_leaf {
        let (mut c, pid) = created("res_blkio_leaf", json!({"blockIO": {"leafWeight": 300}}));
        assert_eq!(read(&dir_of_pid(pid, "blkio"), "blkio.leaf_weight"), "300");
        c.delete_force_ok();
    } else {
        create_fails(
            "res_blkio_leaf",
            json!({"blockIO": {"leafWeight": 300}}),
            &["blkio.leaf_weight"],
        );
    }
    // Per-device BFQ weights need the disk to be scheduled by BFQ: refused for the root disk
    // when it is not; written, and read back, for a disk that is.
    let weight_device = |disk: &str| {
        let (maj, min) = disk.split_once(':').unwrap();
        json!({"blockIO": {"weightDevice": [
            {"major": maj.parse::<i64>().unwrap(), "minor": min.parse::<i64>().unwrap(), "weight": 500}
        ]}})
    };
    let Some(root) = root_disk() else { return };
    let (disk, file) = if has_cfq_wd {
        (Some(root), "blkio.weight_device")
    } else {
        if !bfq_disks().contains(&root) {
            create_fails("res_blkio_wd", weight_device(&root), &["weight_device"]);
        }
        (bfq_disks().into_iter().next(), "blkio.bfq.weight_device")
    };
    let Some(disk) = disk else {
        eprintln!("skipped a weightDevice that takes effect: no disk here is scheduled by BFQ");
        return;
    };
    let (mut c, pid) = created("res_blkio_wd", weight_device(&disk));
    let got = read(&dir_of_pid(pid, "blkio"), file);
    assert!(
        got.lines().any(|l| l == format!("{disk} 500")),
        "{file} of a container with weightDevice {disk} 500: {got:?}"
    );
    c.delete_force_ok();
}

/// major:minor of every disk whose I/O scheduler is BFQ.
fn bfq_disks() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("queue/scheduler"))
                .is_ok_and(|s| s.contains("[bfq]"))
        })
        .map(|e| read(&e.path(), "dev"))
        .collect();
    out.sort();
    out
}

#[test]
fn hugepage_limits() {
    let r = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    if is_v2() {
        let (mut c, pid) = created("res_hugetlb", r);
        assert_eq!(read(&dir_of_pid(pid, ""), "hugetlb.2MB.max"), "4194304");
        c.delete_force_ok();
        return;
    }
    // Other sessions on this machine mount a hugetlb hierarchy now and then (crun needs one).
    if mounted("hugetlb") {
        let (mut c, pid) = created("res_hugetlb", r);
        assert_eq!(
            read(&dir_of_pid(pid, "hugetlb"), "hugetlb.2MB.limit_in_bytes"),
            "4194304"
        );
        c.delete_force_ok();
    } else {
        create_fails("res_hugetlb", r, &["cannot set hugetlb limit"]);
    }
}

#[test]
fn network_class_and_priorities() {
    let class = json!({"network": {"classID": 1048577}});
    if is_v2() {
        // v2 has no net_cls or net_prio: accepted and ignored, as runc does.
        let (mut c, _) = created(
            "res_net_cls",
            json!({"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 5}]}}),
        );
        c.delete_force_ok();
        return;
    }
    if mounted("net_cls") {
        let (mut c, pid) = created("res_net_cls", class);
        assert_eq!(
            read(&dir_of_pid(pid, "net_cls"), "net_cls.classid"),
            "1048577"
        );
        c.delete_force_ok();
    } else {
        create_fails("res_net_cls", class, &["cannot set net_cls limit"]);
    }
    let prio = json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}});
    if mounted("net_prio") {
        let (mut c, pid) = created("res_net_prio", prio);
        assert!(read(&dir_of_pid(pid, "net_prio"), "net_prio.ifpriomap").contains("lo 5"));
        c.delete_force_ok();
    } else {
        create_fails("res_net_prio", prio, &["cannot set net_prio limit"]);
    }
}

#[test]
fn rdma_limits() {
    let r = json!({"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 1000}}});
    if is_v2() || mounted("rdma") {
        // A device this host does not have is refused by the kernel.
        create_fails("res_rdma", r, &["rdma.max"]);
    } else {
        create_fails("res_rdma", r, &["cannot set rdma limit"]);
    }
}

#[test]
fn unified_is_refused_on_cgroup_v1() {
    if skip_unless_v1("refusing unified") {
        return;
    }
    create_fails(
        "res_unified",
        json!({"unified": {"memory.high": "1000000"}}),
        &["cannot use unified on cgroup v1"],
    );
    // An empty map is no request.
    let (mut c, _) = created("res_unified_empty", json!({"unified": {}}));
    c.delete_force_ok();
}

/// `: < /dev/fuse` in the container: "ok", or the shell's error.
fn open_fuse(c: &Container) -> String {
    let out = c.exec(&["sh", "-c", ": < /dev/fuse && echo ok"]);
    format!("{}{}", out.stdout.trim(), out.stderr.trim())
}

fn with_fuse_node(c: &mut Container) {
    c.bundle.config["linux"]["devices"] =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
    c.bundle.set_args(&["sleep", "1000"]);
}

#[test]
fn device_rules_decide_what_opens() {
    // A device node is not enough: the cgroup must allow it too.
    let mut c = Container::new("res_dev_denied");
    with_fuse_node(&mut c);
    c.create_ok();
    assert!(open_fuse(&c).contains("Operation not permitted"));
    c.delete_force_ok();

    let mut c = Container::new("res_dev_allowed");
    with_fuse_node(&mut c);
    c.bundle.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]);
    let pid = c.create_ok();
    assert_eq!(open_fuse(&c), "ok");
    // On v2 the rules are an eBPF program: what opens is all there is to see.
    if !is_v2() {
        let list = read(&dir_of_pid(pid, "devices"), "devices.list");
        assert!(list.lines().any(|l| l == "c 10:229 rw"), "{list}");
    }
    c.delete_force_ok();
}

#[test]
fn device_rules_that_punch_holes_are_refused() {
    create_fails(
        "res_dev_hole",
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "access": "rw"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}
        ]}),
        &["cannot punch hole in existing wildcard rule"],
    );
    create_fails(
        "res_dev_noaccess",
        json!({"devices": [{"allow": false}]}),
        &["device access at 0 field cannot be empty"],
    );
}

#[test]
fn update_devices() {
    let mut c = Container::new("res_dev_update");
    with_fuse_node(&mut c);
    let pid = c.create_ok();
    c.start_ok();
    let v2 = is_v2();
    let d = dir_of_pid(pid, "devices");
    // v2 has no list; the opens below are what counts there.
    let list = || {
        if v2 {
            String::new()
        } else {
            read(&d, "devices.list")
        }
    };
    let before = list();
    let rules = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]});
    update_json(&c, &rules).assert_success();
    if is_runc_1_1() {
        // runc's update does not touch device rules.
        assert_eq!(list(), before);
        assert!(open_fuse(&c).contains("Operation not permitted"));
    } else {
        assert_eq!(open_fuse(&c), "ok");
        if v2 {
            c.delete_force_ok();
            return;
        }
        let after = list();
        assert!(after.lines().any(|l| l == "c 10:229 rw"), "{after}");
        // Only the difference was written: the rest of the list is as it was, in order.
        let rest: Vec<&str> = after.lines().filter(|l| *l != "c 10:229 rw").collect();
        assert_eq!(rest, before.lines().collect::<Vec<_>>());
    }
    c.delete_force_ok();
}

#[test]
fn update_cpu_realtime_blkio_weight_and_cpuset() {
    let (mut c, pid) = created("res_update_cpu", json!({}));
    c.start_ok();
    update(
        &c,
        &[
            "--cpu-rt-period",
            "900000",
            "--cpu-rt-runtime",
            "2000",
            "--blkio-weight",
            "700",
            "--cpuset-cpus",
            "0",
            "--cpu-quota",
            "30000",
            "--cpu-period",
            "60000",
        ],
    );
    let cpu = dir_of_pid(pid, "cpu");
    if is_v2() {
        // No realtime files on v2; the blkio weight becomes io.weight (BFQ is not loaded).
        assert_eq!(read(&cpu, "cpu.max"), "30000 60000");
        assert_eq!(read(&cpu, "cpuset.cpus"), "0");
        if !cpu.join("io.bfq.weight").exists() {
            assert_eq!(read(&cpu, "io.weight"), "default 6970");
        }
        update(&c, &["--cpu-quota", "5000", "--cpu-period", "10000"]);
        assert_eq!(read(&cpu, "cpu.max"), "5000 10000");
        c.delete_force_ok();
        return;
    }
    assert_eq!(read(&cpu, "cpu.rt_period_us"), "900000");
    assert_eq!(read(&cpu, "cpu.rt_runtime_us"), "2000");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "30000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "60000");
    let blkio = dir_of_pid(pid, "blkio");
    let weight = if blkio.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    assert_eq!(read(&blkio, weight), "700");
    assert_eq!(read(&dir_of_pid(pid, "cpuset"), "cpuset.cpus"), "0");
    // A period shorter than the quota needs the new quota first.
    update(&c, &["--cpu-quota", "5000", "--cpu-period", "10000"]);
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "5000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "10000");
    c.delete_force_ok();
}

#[test]
fn update_memory_and_swap_in_either_order() {
    let (mut c, pid) = created(
        "res_update_mem",
        json!({"memory": {"limit": 67108864, "swap": 134217728}}),
    );
    c.start_ok();
    let d = dir_of_pid(pid, "memory");
    if is_v2() {
        // v2's swap.max is the swap alone: OCI's memory+swap less the memory limit.
        let limits = || (read(&d, "memory.max"), read(&d, "memory.swap.max"));
        update(&c, &["--memory", "50m", "--memory-swap", "60m"]);
        assert_eq!(limits(), ("52428800".into(), "10485760".into()));
        update(&c, &["--memory", "200m", "--memory-swap", "300m"]);
        assert_eq!(limits(), ("209715200".into(), "104857600".into()));
        update(&c, &["--memory", "-1"]);
        assert_eq!(limits(), ("max".into(), "max".into()));
        update(&c, &["--memory-reservation", "10m"]);
        assert_eq!(read(&d, "memory.low"), "10485760");
        c.delete_force_ok();
        return;
    }
    let limits = || {
        (
            read(&d, "memory.limit_in_bytes"),
            read(&d, "memory.memsw.limit_in_bytes"),
        )
    };
    // Down: memory first (memsw may not go below it).
    update(&c, &["--memory", "50m", "--memory-swap", "60m"]);
    assert_eq!(limits(), ("52428800".into(), "62914560".into()));
    // Up past the old memsw: swap first.
    update(&c, &["--memory", "200m", "--memory-swap", "300m"]);
    assert_eq!(limits(), ("209715200".into(), "314572800".into()));
    // No memory limit means no memory+swap limit either.
    update(&c, &["--memory", "-1"]);
    assert_eq!(limits(), (NO_LIMIT.into(), NO_LIMIT.into()));
    update(&c, &["--memory-reservation", "10m"]);
    assert_eq!(read(&d, "memory.soft_limit_in_bytes"), "10485760");
    c.delete_force_ok();
}

#[test]
fn update_memory_below_usage_is_refused() {
    let (mut c, pid) = created("res_update_mem_low", json!({"memory": {"limit": 67108864}}));
    c.start_ok();
    // 16 MiB in the container's tmpfs, charged to its cgroup; with no swap they stay.
    let out = c.exec(&[
        "dd",
        "if=/dev/zero",
        "of=/dev/shm/fill",
        "bs=1M",
        "count=16",
    ]);
    out.assert_success();
    // Before the update: on v2 the container may be gone after it.
    let d = dir_of_pid(pid, "memory");
    let mut a = vec!["update", "--memory", "4m"];
    a.push(&c.id);
    let out = c.rt.run_args(&a);
    if is_v2() {
        // v2 takes a memory.max below the usage and reclaims, or OOM-kills, to meet it.
        out.assert_success();
        assert_eq!(read(&d, "memory.max"), "4194304");
        c.delete_force_ok();
        return;
    }
    assert!(
        out.assert_failure()
            .contains("unable to set memory limit to 4194304 (current usage: "),
        "{out}"
    );
    assert_eq!(read(&d, "memory.limit_in_bytes"), "67108864");
    c.delete_force_ok();
}

#[test]
fn update_fields_runc_1_1_leaves_alone() {
    if skip_unless_v1("memory.swappiness, memory.oom_control and blkio.throttle") {
        return;
    }
    let Some(disk) = root_disk() else { return };
    let (maj, min) = disk.split_once(':').unwrap();
    let (mut c, pid) = created("res_update_more", json!({}));
    c.start_ok();
    let mem = dir_of_pid(pid, "memory");
    let blkio = dir_of_pid(pid, "blkio");
    let swappiness = read(&mem, "memory.swappiness");
    update_json(
        &c,
        &json!({
            "memory": {"swappiness": 7, "disableOOMKiller": true},
            "blockIO": {"throttleReadBpsDevice": [
                {"major": maj.parse::<i64>().unwrap(), "minor": min.parse::<i64>().unwrap(),
                 "rate": 1048576}
            ]}
        }),
    )
    .assert_success();
    let oom = read(&mem, "memory.oom_control");
    let throttle = read(&blkio, "blkio.throttle.read_bps_device");
    if is_runc_1_1() {
        assert_eq!(read(&mem, "memory.swappiness"), swappiness);
        assert!(oom.contains("oom_kill_disable 0"), "{oom}");
        assert_eq!(throttle, "");
    } else {
        assert_eq!(read(&mem, "memory.swappiness"), "7");
        assert!(oom.contains("oom_kill_disable 1"), "{oom}");
        assert_eq!(throttle, format!("{disk} 1048576"));
    }
    c.delete_force_ok();
}

#[test]
fn update_unified_is_refused_on_cgroup_v1() {
    if skip_unless_v1("refusing unified") {
        return;
    }
    let (mut c, _) = created("res_update_unified", json!({}));
    c.start_ok();
    let out = update_json(&c, &json!({"unified": {"memory.high": "1000000"}}));
    assert!(
        out.assert_failure()
            .contains("cannot use unified on cgroup v1"),
        "{out}"
    );
    c.delete_force_ok();
}

#[test]
fn unified_is_written_on_cgroup_v2() {
    if skip_unless_v2("linux.resources.unified") {
        return;
    }
    let (mut c, pid) = created(
        "res_unified_v2",
        json!({"unified": {"memory.high": "67108864", "pids.max": "33"}}),
    );
    let d = dir_of_pid(pid, "");
    assert_eq!(read(&d, "memory.high"), "67108864");
    assert_eq!(read(&d, "pids.max"), "33");
    c.start_ok();
    update_json(&c, &json!({"unified": {"memory.high": "33554432"}})).assert_success();
    assert_eq!(read(&d, "memory.high"), "33554432");
    c.delete_force_ok();
    // A file the kernel does not have is refused, naming it.
    create_fails(
        "res_unified_bad",
        json!({"unified": {"memory.nonesuch": "1"}}),
        &["memory.nonesuch"],
    );
}

#[test]
fn lowered_pids_limit_stops_the_next_fork() {
    let mut c = Container::new("res_pids_live");
    let shared = c.bundle.shared_dir();
    let mut out = Fifo::new(&shared.join("out"));
    let go = Fifo::new(&shared.join("go"));
    // The first `sleep 0` forks under no limit; the second comes after the update.
    c.bundle.set_script(
        "sleep 0 && echo forked > /shared/out; read x < /shared/go; sleep 0; \
         echo forked-again > /shared/out",
    );
    c.bundle.write_config();
    let created = c.rt.create(c.bundle.path(), &c.id);
    created.assert_success();
    c.observe();
    c.start_ok();
    out.expect_line("forked");
    update(&c, &["--pids-limit", "1"]);
    assert_eq!(read(&dir_of_pid(c.pid(), "pids"), "pids.max"), "1");
    std::fs::OpenOptions::new()
        .write(true)
        .open(go.path())
        .and_then(|mut f| f.write_all(b"go\n"))
        .unwrap();
    c.wait_exited();
    let err = created.stderr_now();
    assert!(err.contains("Resource temporarily unavailable"), "{err}");
    c.delete_ok();
}

#[test]
fn nested_cgroups_are_removed_on_delete() {
    let mut c = Container::new("res_nested");
    // A writable cgroup mount lets the container make cgroups of its own.
    for m in c.bundle.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys/fs/cgroup" {
            m["options"] = json!(["nosuid", "noexec", "nodev", "relatime"]);
        }
    }
    // On v2 the container sees its own cgroup at /sys/fs/cgroup only in a cgroup namespace.
    if is_v2() {
        c.bundle.add_namespace(json!({"type": "cgroup"}));
    }
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    c.bundle.set_script(if is_v2() {
        "mkdir -p /sys/fs/cgroup/a/b && echo $$ > /sys/fs/cgroup/a/cgroup.procs && \
         echo ready > /shared/fifo && exec sleep 1000"
    } else {
        "mkdir -p /sys/fs/cgroup/memory/a/b /sys/fs/cgroup/pids/a && \
         echo $$ > /sys/fs/cgroup/pids/a/cgroup.procs && echo ready > /shared/fifo && \
         exec sleep 1000"
    });
    let pid = c.create_ok();
    let memory = dir_of_pid(pid, "memory");
    let pids = dir_of_pid(pid, "pids");
    c.start_ok();
    fifo.expect_line("ready");
    assert!(memory.join("a/b").is_dir());
    assert_eq!(dir_of_pid(pid, "pids"), pids.join("a"));
    c.delete_force_ok();
    for d in [memory.join("a/b"), memory, pids.join("a"), pids] {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn features_report_the_cgroup_support() {
    let out = spec_tests::Runtime::new().run_args(&["features"]);
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("features prints JSON");
    let cg = &v["linux"]["cgroup"];
    assert_eq!(cg["v1"], true, "{cg}");
    assert_eq!(cg["v2"], true, "{cg}");
    // runc 1.1 has no rdma key; where there is one, rdma.max is written.
    assert!(cg.get("rdma").is_none() || cg["rdma"] == true, "{cg}");
}
