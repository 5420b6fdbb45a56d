//! Config fields that a runtime must either honour or refuse, never drop: the LSM labels
//! (`process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`, exec's `--apparmor`
//! and `--process-label`), the runtime-spec 1.2 process fields (`linux.personality`,
//! `process.scheduler`, `process.ioPriority`, `process.execCPUAffinity`), `linux.intelRdt`, and
//! the global flag `--rootless`'s values.
//!
//! Each applied field is read back inside the container; each refused one must fail with one
//! line naming it and leave nothing behind. This host has neither AppArmor nor SELinux nor
//! resctrl: the tests of a label actually applied skip here, saying so, and the tests of the
//! refusals skip on a host that has the feature. runc 1.1.5 ignores the runtime-spec 1.2
//! fields; those tests skip on it, saying so.

use std::path::Path;

use serde_json::{json, Value};
use spec_tests::runtime::is_runc_1_1;
use spec_tests::{assert_one_line_naming, Container, Output};

/// Prints why a test of a runtime-spec 1.2 field does not run on runc 1.1.x; true then.
fn skip_on_runc_1_1(field: &str) -> bool {
    if is_runc_1_1() {
        eprintln!(
            "skipped: runc 1.1.x ignores {field} (runtime-spec 1.2, applied from runc 1.2 on)"
        );
    }
    is_runc_1_1()
}

/// AppArmor is enabled the way runc's apparmor package tells.
fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.starts_with('Y'))
}

/// A filesystem of type `fstype` is mounted somewhere.
fn fs_mounted(fstype: &str) -> bool {
    let prefix = format!("{fstype} ");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with(&prefix))
        })
}

/// SELinux is enabled: selinuxfs is mounted at /sys/fs/selinux.
fn selinux_enabled() -> bool {
    fs_mounted("selinuxfs")
}

/// A resctrl filesystem is mounted (what runc's intelrdt package looks for).
fn resctrl_mounted() -> bool {
    fs_mounted("resctrl")
}

/// `create` that must fail with one line naming one of `needles`, leaving nothing behind.
#[track_caller]
fn create_fails(c: &mut Container, needles: &[&str]) -> Output {
    let out = c.create();
    assert!(!out.success(), "create should have failed:\n{out}");
    assert_one_line_naming(&out.stderr, needles);
    c.assert_clean();
    out
}

/// Foreground `run` of `script`, asserted to succeed; its stdout.
#[track_caller]
fn run_script(c: &mut Container, script: &str) -> String {
    c.bundle.set_script(script);
    let out = c.run();
    assert!(out.success(), "{out}");
    c.assert_clean();
    out.stdout
}

/// A container running `sleep`, created and started.
fn sleeping(name: &str, tweak: impl FnOnce(&mut Value)) -> Container {
    let mut c = Container::new(name);
    c.bundle.set_args(&["sleep", "1000"]);
    tweak(&mut c.bundle.config);
    c.create_ok();
    c.start_ok();
    c
}

/// `exec --process <file>` with `process` (args, cwd, user and a PATH filled in if missing:
/// runc finds a bare args[0] in the file's own PATH only).
fn exec_process(c: &Container, mut process: Value) -> Output {
    let p = process.as_object_mut().expect("process is an object");
    p.entry("env").or_insert(json!(["PATH=/bin"]));
    p.entry("cwd").or_insert(json!("/"));
    p.entry("user").or_insert(json!({"uid": 0, "gid": 0}));
    let path = c.bundle.path().join("process.json");
    std::fs::write(&path, serde_json::to_vec(&process).unwrap()).unwrap();
    c.rt.run_args(&["exec", "--process", path.to_str().unwrap(), &c.id])
}

/// An exec that must fail with one line naming one of `needles`; the container stays running.
#[track_caller]
fn exec_fails(c: &Container, out: &Output, needles: &[&str]) {
    assert!(!out.success(), "exec should have failed:\n{out}");
    assert_one_line_naming(&out.stderr, needles);
    assert_eq!(
        c.status(),
        "running",
        "a failed exec must not hurt the container"
    );
}

/// The stdout of a command that must have succeeded.
#[track_caller]
fn ok_stdout(out: &Output) -> &str {
    out.assert_success();
    &out.stdout
}

/// Field `n` (1-based, as in proc(5)) of a /proc/<pid>/stat line.
fn stat_field(line: &str, n: usize) -> String {
    // Field 2 (comm) is in parentheses and may contain spaces: count from the last ')'.
    let rest = &line[line.rfind(')').expect("stat line has a comm") + 2..];
    rest.split(' ')
        .nth(n - 3)
        .unwrap_or_else(|| panic!("stat line {line:?} has no field {n}"))
        .to_owned()
}

// ---- LSM labels ----

#[test]
fn apparmor_profile_is_applied() {
    if !apparmor_enabled() {
        eprintln!("skipped: AppArmor is not enabled on this host");
        return;
    }
    let mut c = Container::new("aa_applied");
    c.bundle.config["process"]["apparmorProfile"] = json!("unconfined");
    let out = run_script(&mut c, "cat /proc/self/attr/current");
    assert_eq!(out.trim(), "unconfined");
}

#[test]
fn apparmor_profile_fails_without_apparmor() {
    // runc writes "exec <profile>" to /proc/self/attr/apparmor/exec, or to attr/exec where that
    // does not exist, and fails when the kernel refuses it (EINVAL without AppArmor).
    if apparmor_enabled() {
        eprintln!("skipped: AppArmor is enabled on this host");
        return;
    }
    let mut c = Container::new("aa_refused");
    c.bundle.config["process"]["apparmorProfile"] = json!("husk-test-profile");
    create_fails(&mut c, &["apparmor"]);
}

#[test]
fn exec_apparmor_fails_without_apparmor() {
    if apparmor_enabled() {
        eprintln!("skipped: AppArmor is enabled on this host");
        return;
    }
    let mut c = sleeping("exec_aa", |_| {});
    let out =
        c.rt.run_args(&["exec", "--apparmor", "husk-test-profile", &c.id, "true"]);
    exec_fails(&c, &out, &["apparmor"]);
    let out = exec_process(
        &c,
        json!({"args": ["true"], "apparmorProfile": "husk-test-profile"}),
    );
    exec_fails(&c, &out, &["apparmor"]);
    // An empty profile is no profile.
    c.rt.run_args(&["exec", "--apparmor", "", &c.id, "true"])
        .assert_success();
    c.delete_force_ok();
}

#[test]
fn selinux_label_refused_without_selinux() {
    // runc: "selinux label is specified in config, but selinux is disabled or not supported".
    if selinux_enabled() {
        eprintln!("skipped: SELinux is enabled on this host");
        return;
    }
    let mut c = Container::new("se_refused");
    c.bundle.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    create_fails(&mut c, &["selinux"]);
}

#[test]
fn exec_process_label_refused_without_selinux() {
    if selinux_enabled() {
        eprintln!("skipped: SELinux is enabled on this host");
        return;
    }
    let mut c = sleeping("exec_se", |_| {});
    let label = "system_u:system_r:container_t:s0";
    let out =
        c.rt.run_args(&["exec", "--process-label", label, &c.id, "true"]);
    exec_fails(&c, &out, &["selinux"]);
    let out = exec_process(&c, json!({"args": ["true"], "selinuxLabel": label}));
    exec_fails(&c, &out, &["selinux"]);
    c.delete_force_ok();
}

const MOUNT_LABEL: &str = "system_u:object_r:container_file_t:s0";

/// A bundle whose mounts are only ones runc never labels: proc, sysfs and mqueue (runc leaves
/// their context to the kernel) and bind mounts (the kernel ignores mount data on a bind).
fn unlabelled_mounts(c: &mut Container) {
    c.bundle.shared_dir();
    let mounts = c.bundle.config["mounts"].as_array().unwrap().clone();
    let keep: Vec<Value> = mounts
        .into_iter()
        .filter(|m| {
            matches!(
                m["type"].as_str(),
                Some("proc") | Some("sysfs") | Some("mqueue") | Some("bind")
            )
        })
        .collect();
    c.bundle.config["mounts"] = json!(keep);
    // Without a /dev tmpfs the device nodes are made in the rootfs itself.
    c.bundle.config["root"]["readonly"] = json!(false);
    // A masked file is a bind of /dev/null, a read-only path a bind: neither is labelled.
    c.bundle.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    c.bundle.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    c.bundle.config["linux"]["mountLabel"] = json!(MOUNT_LABEL);
}

#[test]
fn mount_label_goes_into_the_data_of_mounts_runc_labels() {
    // runc adds context="<label>" to the data of every mount but proc, sysfs, mqueue and binds
    // (tmpfs, devpts, the cgroup v1 tmpfs, the tmpfs over a masked directory); a kernel
    // without SELinux refuses the option, so each of those fails and the others run.
    if selinux_enabled() {
        eprintln!("skipped: SELinux is enabled on this host (this test needs a kernel that refuses the context= option)");
        return;
    }
    let mut c = Container::new("mountlabel_spared");
    unlabelled_mounts(&mut c);
    let out = run_script(
        &mut c,
        "grep -c -E ' /(proc|sys|dev/mqueue|shared) ' /proc/self/mounts",
    );
    assert_eq!(
        out.trim(),
        "4",
        "proc, sysfs, mqueue and the bind are all mounted"
    );

    let devpts = json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]});
    let tmpfs = json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev"]});
    let cgroup = json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]});
    let mut cases = vec![("tmpfs", Some(tmpfs), None), ("devpts", Some(devpts), None)];
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // cgroup v1: runc mounts a tmpfs at /sys/fs/cgroup, labelled; cgroup2 is not.
        cases.push(("cgroup v1 tmpfs", Some(cgroup), None));
    }
    cases.push(("masked directory", None, Some("/masked")));
    for (what, mount, masked) in cases {
        let mut c = Container::new(&format!("mountlabel_{}", what.replace(' ', "_")));
        unlabelled_mounts(&mut c);
        if let Some(m) = mount {
            c.bundle.add_mount(m);
        }
        if let Some(dir) = masked {
            std::fs::create_dir(c.bundle.rootfs().join(dir.trim_start_matches('/'))).unwrap();
            c.bundle.config["linux"]["maskedPaths"] = json!([dir]);
        }
        eprintln!("case: {what}");
        create_fails(&mut c, &["context="]);
    }
}

// ---- runtime-spec 1.2 process fields ----

#[test]
fn personality_linux32_in_init_and_exec() {
    if skip_on_runc_1_1("linux.personality") {
        return;
    }
    let mut c = Container::new("personality32");
    c.bundle.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    assert_eq!(run_script(&mut c, "uname -m").trim(), "i686");

    let mut c = sleeping("personality32_exec", |cfg| {
        cfg["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    let out = c.exec(&["uname", "-m"]);
    assert_eq!(ok_stdout(&out).trim(), "i686", "exec");
    c.delete_force_ok();

    let mut c = Container::new("personality64");
    c.bundle.config["linux"]["personality"] = json!({"domain": "LINUX"});
    assert_eq!(run_script(&mut c, "uname -m").trim(), "x86_64");

    let mut c = Container::new("personality_bad");
    c.bundle.config["linux"]["personality"] = json!({"domain": "PER_BOGUS"});
    create_fails(&mut c, &["personality", "domain", "PER_BOGUS"]);
}

#[test]
fn scheduler_batch_and_nice_in_init_and_exec() {
    if skip_on_runc_1_1("process.scheduler") {
        return;
    }
    let sched = json!({"policy": "SCHED_BATCH", "nice": 7});
    let mut c = Container::new("sched_batch");
    c.bundle.config["process"]["scheduler"] = sched.clone();
    let stat = run_script(&mut c, "cat /proc/self/stat");
    // Field 41 is the policy (SCHED_BATCH = 3), 19 the nice value.
    assert_eq!(
        (stat_field(&stat, 41), stat_field(&stat, 19)),
        ("3".into(), "7".into()),
        "{stat}"
    );

    let mut c = sleeping("sched_batch_exec", |cfg| {
        cfg["process"]["scheduler"] = sched;
    });
    let out = c.exec(&["cat", "/proc/self/stat"]);
    let stat = ok_stdout(&out);
    assert_eq!(
        (stat_field(stat, 41), stat_field(stat, 19)),
        ("3".into(), "7".into()),
        "exec: {stat}"
    );
    // The exec's own process description may ask for another.
    let out = exec_process(
        &c,
        json!({"args": ["cat", "/proc/self/stat"], "scheduler": {"policy": "SCHED_IDLE"}}),
    );
    let stat = ok_stdout(&out);
    assert_eq!(
        stat_field(stat, 41),
        "5",
        "exec --process, SCHED_IDLE: {stat}"
    );
    c.delete_force_ok();
}

#[test]
fn scheduler_reset_on_fork_flag() {
    if skip_on_runc_1_1("process.scheduler") {
        return;
    }
    let mut c = Container::new("sched_reset_on_fork");
    c.bundle.config["process"]["scheduler"] = json!({
        "policy": "SCHED_BATCH", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]
    });
    // The shell has nice -5; the cat it forks is back to 0, as sched(7) says of this flag (the
    // `true` keeps the shell from exec'ing the last cat in its own place).
    let out = run_script(&mut c, "cat /proc/$$/stat; cat /proc/self/stat; true");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let policy_nice = |l: &str| (stat_field(l, 41), stat_field(l, 19));
    assert_eq!(
        policy_nice(lines[0]),
        ("3".into(), "-5".into()),
        "the shell: {out}"
    );
    assert_eq!(
        policy_nice(lines[1]),
        ("3".into(), "0".into()),
        "its child: {out}"
    );
}

#[test]
fn scheduler_fifo_with_priority() {
    if skip_on_runc_1_1("process.scheduler") {
        return;
    }
    let mut c = Container::new("sched_fifo");
    c.bundle.config["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
    // With RT group scheduling, a cgroup without an RT budget cannot hold an RT task.
    if Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        c.bundle.config["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 10000});
    }
    let stat = run_script(&mut c, "cat /proc/self/stat");
    // Field 41: SCHED_FIFO = 1; field 40: the real-time priority.
    assert_eq!(
        (stat_field(&stat, 41), stat_field(&stat, 40)),
        ("1".into(), "10".into()),
        "{stat}"
    );
}

#[test]
fn scheduler_invalid_values_refused() {
    if skip_on_runc_1_1("process.scheduler") {
        return;
    }
    // runc 1.2's validator words, one case each.
    let cases = [
        (json!({"policy": "SCHED_OTHER", "nice": 20}), "nice"),
        (json!({"policy": "SCHED_BATCH", "nice": -21}), "nice"),
        (json!({"policy": "SCHED_OTHER", "priority": 5}), "priority"),
        (json!({"policy": "SCHED_RR", "runtime": 1000}), "runtime"),
        (json!({"policy": "SCHED_NOPE"}), "policy"),
        (json!({"nice": 1}), "policy"),
        (
            json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}),
            "flag",
        ),
    ];
    for (i, (sched, needle)) in cases.into_iter().enumerate() {
        let mut c = Container::new(&format!("sched_bad{i}"));
        c.bundle.config["process"]["scheduler"] = sched.clone();
        eprintln!("case: {sched}");
        create_fails(&mut c, &[needle]);
    }
}

#[test]
fn io_priority_in_init_and_exec() {
    if skip_on_runc_1_1("process.ioPriority") {
        return;
    }
    for (class, prio, want) in [
        ("IOPRIO_CLASS_IDLE", 0, "idle"),
        ("IOPRIO_CLASS_BE", 3, "best-effort: prio 3"),
        ("IOPRIO_CLASS_RT", 2, "realtime: prio 2"),
    ] {
        let mut c = Container::new(&format!("ioprio_{prio}"));
        c.bundle.config["process"]["ioPriority"] = json!({"class": class, "priority": prio});
        assert_eq!(run_script(&mut c, "busybox ionice").trim(), want, "{class}");
    }
    let mut c = sleeping("ioprio_exec", |cfg| {
        cfg["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    });
    let out = c.exec(&["busybox", "ionice"]);
    assert_eq!(ok_stdout(&out).trim(), "best-effort: prio 6", "exec");
    let out = exec_process(
        &c,
        json!({"args": ["busybox", "ionice"], "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}),
    );
    assert_eq!(ok_stdout(&out).trim(), "idle", "exec --process");
    c.delete_force_ok();
}

#[test]
fn io_priority_invalid_values_refused() {
    if skip_on_runc_1_1("process.ioPriority") {
        return;
    }
    for (i, io) in [
        json!({"class": "IOPRIO_CLASS_BE", "priority": 8}),
        json!({"class": "IOPRIO_CLASS_BE", "priority": -1}),
        json!({"class": "IOPRIO_CLASS_NOPE", "priority": 1}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = Container::new(&format!("ioprio_bad{i}"));
        c.bundle.config["process"]["ioPriority"] = io.clone();
        eprintln!("case: {io}");
        create_fails(&mut c, &["ioPriority", "class"]);
    }
}

/// CPUs 0 and 1 are online (else prints why the test skips).
fn two_cpus() -> bool {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let ok = online.trim().starts_with("0-") || online.trim().starts_with("0,1");
    if !ok {
        eprintln!("skipped: needs CPUs 0 and 1 online, have {online:?}");
    }
    ok
}

/// The Cpus_allowed_list line of an `exec` of grep.
#[track_caller]
fn cpus_allowed(out: &Output) -> String {
    ok_stdout(out)
        .trim()
        .strip_prefix("Cpus_allowed_list:\t")
        .unwrap_or_else(|| panic!("no Cpus_allowed_list line:\n{out}"))
        .to_owned()
}

const GREP_CPUS: [&str; 4] = ["grep", "-F", "Cpus_allowed_list:", "/proc/self/status"];

#[test]
fn exec_cpu_affinity_initial_and_final() {
    if skip_on_runc_1_1("process.execCPUAffinity") || !two_cpus() {
        return;
    }
    let mut c = sleeping("affinity", |cfg| {
        cfg["process"]["execCPUAffinity"] = json!({"final": "1"});
    });
    // Not applied to the container's own process.
    let out = c.exec(&["grep", "-F", "Cpus_allowed_list:", "/proc/1/status"]);
    assert_eq!(cpus_allowed(&out), "0-1", "init");
    // An exec without --process takes the container's process, affinity included.
    assert_eq!(
        cpus_allowed(&c.exec(&GREP_CPUS)),
        "1",
        "exec, final from config.json"
    );
    for (affinity, want) in [
        (json!({"initial": "1"}), "1"),
        (json!({"initial": "1", "final": "0"}), "0"),
        (json!({"initial": "0-1", "final": "0,1"}), "0-1"),
    ] {
        let out = exec_process(&c, json!({"args": GREP_CPUS, "execCPUAffinity": affinity}));
        assert_eq!(cpus_allowed(&out), want, "{affinity}");
    }
    c.delete_force_ok();

    // The container's cpuset holds only CPU 0. An initial affinity of CPU 1 is possible only
    // before the process joins that cgroup; joining it then moves the process to CPU 0.
    let mut c = sleeping("affinity_cpuset", |cfg| {
        cfg["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
    });
    let out = exec_process(
        &c,
        json!({"args": GREP_CPUS, "execCPUAffinity": {"initial": "1"}}),
    );
    assert_eq!(cpus_allowed(&out), "0", "initial 1 in a cpuset of 0");
    c.delete_force_ok();
}

#[test]
fn exec_cpu_affinity_invalid_refused() {
    if skip_on_runc_1_1("process.execCPUAffinity") {
        return;
    }
    let mut c = Container::new("affinity_bad");
    c.bundle.config["process"]["execCPUAffinity"] = json!({"initial": "0-x"});
    create_fails(&mut c, &["execCPUAffinity"]);

    let mut c = sleeping("affinity_bad_exec", |_| {});
    for affinity in [json!({"initial": "3-1"}), json!({"final": "99999"})] {
        let out = exec_process(&c, json!({"args": ["true"], "execCPUAffinity": affinity}));
        exec_fails(&c, &out, &["execCPUAffinity"]);
    }
    c.delete_force_ok();
}

// ---- linux.intelRdt ----

#[test]
fn intel_rdt_schema_refused_without_resctrl() {
    if resctrl_mounted() {
        eprintln!("skipped: this host has resctrl mounted");
        return;
    }
    // runc: "intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled"
    // (and the same for memBwSchema and MBA).
    for (i, rdt) in [
        json!({"l3CacheSchema": "L3:0=f"}),
        json!({"memBwSchema": "MB:0=20"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = Container::new(&format!("rdt_schema{i}"));
        c.bundle.config["linux"]["intelRdt"] = rdt;
        create_fails(&mut c, &["intelRdt"]);
    }
}

#[test]
fn intel_rdt_refused_without_resctrl() {
    if resctrl_mounted() {
        eprintln!("skipped: this host has resctrl mounted");
        return;
    }
    if !spec_tests::runtime::is_husk() {
        eprintln!(
            "skipped: runc runs a container whose linux.intelRdt has only a closID (or \
             schemata, or monitoring) when resctrl is absent, ignoring it; husk refuses it"
        );
        return;
    }
    for (i, rdt) in [
        json!({"closID": "gold"}),
        json!({"schemata": ["L3:0=f"]}),
        json!({"enableMonitoring": true}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = Container::new(&format!("rdt_clos{i}"));
        c.bundle.config["linux"]["intelRdt"] = rdt;
        create_fails(&mut c, &["intelRdt"]);
    }
}

// ---- --rootless ----

#[test]
fn rootless_values() {
    // As root, every value runs the container: rootless only lets cgroup permission errors
    // pass, and root has none (spec-tests/tests/rootless.rs runs an ordinary user).
    for value in ["false", "auto", "true"] {
        let mut c = Container::new(&format!("rootless_{value}"));
        c.bundle.set_script("echo ran");
        c.bundle.write_config();
        let out = c.rt.run_args(&[
            &format!("--rootless={value}"),
            "run",
            "--bundle",
            c.bundle.path().to_str().unwrap(),
            &c.id,
        ]);
        assert_eq!(ok_stdout(&out), "ran\n", "--rootless={value}");
        c.assert_clean();
    }
    // Not a boolean nor auto: Go's words, as runc says them.
    let mut c = Container::new("rootless_bogus");
    c.bundle.write_config();
    let out = c.rt.run_args(&[
        "--rootless=bogus",
        "run",
        "--bundle",
        c.bundle.path().to_str().unwrap(),
        &c.id,
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert_one_line_naming(&out.stderr, &["bogus"]);
    c.assert_clean();
}
