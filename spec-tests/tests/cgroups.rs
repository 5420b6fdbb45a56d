//! linux.cgroupsPath and linux.resources, checked from the host's cgroup files and from inside
//! the container: v1's files on a v1 (hybrid) host, v2's on a pure v2 one (scripts/v2vm.sh),
//! with runc's conversions of the OCI values to v2's.

use serde_json::json;
use spec_tests::cgroup::{self, dir_of_pid, read};
use spec_tests::Container;

/// /proc/<pid>/cgroup entries of `pid`, without hugetlb: this host has no hugetlb hierarchy
/// mounted, but other sessions on the machine mount and unmount one (crun needs it), and a
/// runtime cannot be expected to follow that.
fn memberships(pid: i32) -> Vec<(String, String)> {
    cgroup::memberships(pid)
        .into_iter()
        .filter(|(c, _)| c != "hugetlb")
        .collect()
}

/// Our own cgroup path in the hierarchy named by `controllers` (a /proc/self/cgroup field).
fn own_path(controllers: &str) -> String {
    memberships(std::process::id() as i32)
        .into_iter()
        .find(|(c, _)| c == controllers)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("we are in no {controllers:?} cgroup"))
}

#[test]
fn absolute_cgroups_path() {
    let mut c = Container::new("cg_abs");
    let path = format!("/{}", c.id);
    c.bundle.config["linux"]["cgroupsPath"] = json!(path);
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let m = memberships(pid);
    // One line per v1 hierarchy plus the cgroup2 one; on pure v2 only the latter.
    assert!(m.len() > usize::from(!cgroup::is_v2()), "{m:?}");
    for (controllers, p) in &m {
        // Every hierarchy, including the (controller-less) cgroup2 one of the hybrid layout.
        assert_eq!(p, &path, "{controllers:?}");
    }
    for d in cgroup::dirs_of_pid(pid) {
        let procs = read(&d, "cgroup.procs");
        assert_eq!(procs, pid.to_string(), "{}", d.display());
    }
    c.delete_force_ok();
}

#[test]
fn relative_cgroups_path_is_below_our_own_cgroup() {
    let mut c = Container::new("cg_rel");
    let rel = c.id.clone();
    c.bundle.config["linux"]["cgroupsPath"] = json!(rel);
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    for (controllers, p) in memberships(pid) {
        let own = own_path(&controllers);
        assert_eq!(
            p,
            format!("{}/{rel}", own.trim_end_matches('/')),
            "{controllers:?}"
        );
    }
    c.delete_force_ok();
}

#[test]
fn default_cgroup_is_the_id_below_our_own() {
    // No cgroupsPath: runc uses the container id, relative to its own cgroups.
    let mut c = Container::new("cg_default");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    for (controllers, p) in memberships(pid) {
        let own = own_path(&controllers);
        assert_eq!(
            p,
            format!("{}/{}", own.trim_end_matches('/'), c.id),
            "{controllers:?}"
        );
    }
    c.delete_force_ok();
}

/// cgroup v2's cpu.weight for v1's cpu.shares, as runc converts it.
fn weight(shares: u64) -> String {
    (1 + ((shares - 2) * 9999) / 262142).to_string()
}

#[test]
fn memory_limits() {
    let v2 = cgroup::is_v2();
    let mut c = Container::new("cg_memory");
    c.bundle.config["linux"]["resources"]["memory"] =
        json!({"limit": 67108864, "reservation": 33554432, "swap": 134217728});
    if v2 {
        // Its own cgroup is at /sys/fs/cgroup inside only in a cgroup namespace.
        c.bundle.add_namespace(json!({"type": "cgroup"}));
    }
    c.bundle.set_script(if v2 {
        "cat /sys/fs/cgroup/memory.max; sleep 1000"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; sleep 1000"
    });
    c.bundle.write_config();
    let out = c.rt.create(c.bundle.path(), &c.id);
    out.assert_success();
    c.observe();
    let d = dir_of_pid(c.pid(), "memory");
    if v2 {
        assert_eq!(read(&d, "memory.max"), "67108864");
        assert_eq!(read(&d, "memory.low"), "33554432");
        // OCI swap is memory+swap; v2's swap.max is the swap alone.
        assert_eq!(read(&d, "memory.swap.max"), "67108864");
    } else {
        assert_eq!(read(&d, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&d, "memory.soft_limit_in_bytes"), "33554432");
        // OCI swap is memory+swap, which is what memsw means.
        assert_eq!(read(&d, "memory.memsw.limit_in_bytes"), "134217728");
    }
    c.start_ok();
    // Inside, the container's own cgroup is mounted at /sys/fs/cgroup/memory.
    spec_tests::sync::wait_for_output(&out, "67108864\n");
    c.delete_force_ok();
}

#[test]
fn cpu_and_cpuset() {
    let mut c = Container::new("cg_cpu");
    c.bundle.config["linux"]["resources"]["cpu"] = json!({
        "shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"
    });
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let cpu = dir_of_pid(pid, "cpu");
    if cgroup::is_v2() {
        assert_eq!(read(&cpu, "cpu.weight"), weight(512));
        assert_eq!(read(&cpu, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read(&cpu, "cpu.shares"), "512");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    }
    let cpuset = dir_of_pid(pid, "cpuset");
    assert_eq!(read(&cpuset, "cpuset.cpus"), "0");
    assert_eq!(read(&cpuset, "cpuset.mems"), "0");
    c.delete_force_ok();
}

#[test]
fn pids_limit() {
    let mut c = Container::new("cg_pids");
    c.bundle.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    assert_eq!(read(&dir_of_pid(pid, "pids"), "pids.max"), "42");
    c.delete_force_ok();
}

#[test]
fn pids_limit_is_enforced() {
    let mut c = Container::new("cg_pids_enforced");
    // sh and one background sleep fill the limit; the subshell's fork must fail.
    c.bundle.config["linux"]["resources"]["pids"] = json!({"limit": 2});
    c.bundle
        .set_script("sleep 1000 & (echo forked); echo not-reached");
    let out = c.run();
    // busybox sh gives up on a failed fork with status 2.
    assert_eq!(out.code(), 2, "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert!(
        out.stderr.contains("Resource temporarily unavailable"),
        "{out}"
    );
    c.assert_clean();
}

#[test]
fn default_device_rules() {
    // On v2 the rules are an eBPF program with no list to read back; what it lets open is
    // checked by resources::device_rules_decide_what_opens.
    if cgroup::skip_unless_v1("devices.list") {
        return;
    }
    let mut c = Container::new("cg_devices");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let mut got: Vec<String> = read(&dir_of_pid(pid, "devices"), "devices.list")
        .lines()
        .map(str::to_owned)
        .collect();
    got.sort();
    // Deny all (from the config), then runc's default allow list: mknod of anything, the
    // standard character devices, /dev/console, /dev/ptmx, /dev/net/tun and the ptys.
    let mut want = vec![
        "b *:* m",
        "c *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
        "c 136:* rwm",
    ];
    want.sort();
    assert_eq!(got, want);
    c.delete_force_ok();
}

#[test]
fn device_rules_are_an_ebpf_program_on_v2() {
    if cgroup::skip_unless_v2("the eBPF device program") {
        return;
    }
    let mut c = Container::new("cg_devices_bpf");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let d = dir_of_pid(pid, "");
    assert_eq!(cgroup::device_programs(&d), 1, "{}", d.display());
    c.start_ok();
    // The default rules let /dev/null open and keep /dev/mem's node (given) shut.
    let out = c.exec(&["sh", "-c", "echo x > /dev/null && echo ok"]);
    assert_eq!(out.stdout, "ok\n", "{out}");
    c.delete_force_ok();
    let mut c = Container::new("cg_devices_mem");
    c.bundle.config["linux"]["devices"] =
        json!([{"path": "/dev/mem", "type": "c", "major": 1, "minor": 1, "fileMode": 384}]);
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    let out = c.exec(&["sh", "-c", ": < /dev/mem"]);
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    c.delete_force_ok();
}

#[test]
fn update_resources() {
    let mut c = Container::new("cg_update");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    c.start_ok();
    c.rt.run_args(&[
        "update",
        "--memory",
        "134217728",
        "--pids-limit",
        "10",
        "--cpu-share",
        "256",
        &c.id,
    ])
    .assert_success();
    let v2 = cgroup::is_v2();
    let (memory, shares) = if v2 {
        ("memory.max", "cpu.weight")
    } else {
        ("memory.limit_in_bytes", "cpu.shares")
    };
    assert_eq!(read(&dir_of_pid(pid, "memory"), memory), "134217728");
    assert_eq!(read(&dir_of_pid(pid, "pids"), "pids.max"), "10");
    let want = if v2 { weight(256) } else { "256".to_owned() };
    assert_eq!(read(&dir_of_pid(pid, "cpu"), shares), want);

    // containerd's form: an OCI LinuxResources JSON file.
    let file = c.bundle.path().join("resources.json");
    std::fs::write(
        &file,
        r#"{"pids": {"limit": 20}, "cpu": {"quota": 20000, "period": 100000}}"#,
    )
    .unwrap();
    c.rt.run_args(&["update", "--resources", file.to_str().unwrap(), &c.id])
        .assert_success();
    assert_eq!(read(&dir_of_pid(pid, "pids"), "pids.max"), "20");
    if v2 {
        assert_eq!(read(&dir_of_pid(pid, "cpu"), "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read(&dir_of_pid(pid, "cpu"), "cpu.cfs_quota_us"), "20000");
    }
    c.delete_force_ok();
}
