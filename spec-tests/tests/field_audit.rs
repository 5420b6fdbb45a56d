//! Fields of config.json that nothing tested before, or that a runtime used to drop in silence
//! (notes/config-fields.md lists every field): each is read back inside the container, or
//! refused with one line naming it and nothing left behind.
//!
//! runc 1.1.5 ignores most of what is refused here; those tests skip on it, saying why. Where
//! husk refuses what runc (any version) accepts, the test skips on every runc: husk goes beyond
//! runc by refusing what it cannot honour.

use serde_json::{json, Value};
use spec_tests::console::{read_until, ConsoleSocket};
use spec_tests::runtime::{is_husk, is_runc_1_1};
use spec_tests::{assert_one_line_naming, Container, Output, WAIT};

/// Prints why a test of a refusal runc 1.1.x lacks does not run on it; true then.
fn skip_on_runc_1_1(what: &str) -> bool {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.x {what}; runc 1.2's validator refuses it");
    }
    is_runc_1_1()
}

/// Prints why a test of something only husk does does not run on runc; true then.
fn skip_unless_husk(why: &str) -> bool {
    if !is_husk() {
        eprintln!("skipped: {why}");
    }
    !is_husk()
}

/// `create` that must fail with one line naming one of `needles`, leaving nothing behind.
#[track_caller]
fn create_fails(c: &mut Container, needles: &[&str]) {
    let out = c.create();
    assert!(!out.success(), "create should have failed:\n{out}");
    assert_one_line_naming(&out.stderr, needles);
    c.assert_clean();
}

/// A container with `tweak` applied, which create must refuse naming one of `needles`.
#[track_caller]
fn refused(name: &str, needles: &[&str], tweak: impl FnOnce(&mut Value)) {
    let mut c = Container::new(name);
    tweak(&mut c.bundle.config);
    create_fails(&mut c, needles);
}

/// Foreground `run` of `script`, asserted to succeed; its output.
#[track_caller]
fn run_script(c: &mut Container, script: &str) -> Output {
    c.bundle.set_script(script);
    let out = c.run();
    assert!(out.success(), "{out}");
    c.assert_clean();
    out
}

// ---- conditions runc 1.2's validator refuses ----

#[test]
fn domainname_without_uts_namespace_is_refused() {
    if skip_on_runc_1_1("runs without setting it (and leaves the host's alone)") {
        return;
    }
    refused("domainname_no_uts", &["domainname"], |cfg| {
        cfg["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
        cfg.as_object_mut().unwrap().remove("hostname");
        cfg["domainname"] = json!("example.org");
    });
}

#[test]
fn id_mappings_without_user_namespace_are_refused() {
    if skip_on_runc_1_1("runs and ignores the mappings") {
        return;
    }
    for key in ["uidMappings", "gidMappings"] {
        refused(
            &format!("maps_no_userns_{key}"),
            &[key, "uidMappings"],
            |cfg| {
                cfg["linux"][key] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            },
        );
    }
}

#[test]
fn time_offsets_without_a_new_time_namespace_are_refused() {
    if skip_on_runc_1_1("runs and ignores the offsets") {
        return;
    }
    refused("offsets_no_timens", &["timeOffsets"], |cfg| {
        cfg["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400}});
    });
}

#[test]
fn time_offsets_are_applied() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.x has no time namespace");
        return;
    }
    let mut c = Container::new("time_offsets");
    c.bundle.add_namespace(json!({"type": "time"}));
    c.bundle.config["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 100, "nanosecs": 7},
        "boottime": {"secs": 86400}
    });
    let uptime = || -> f64 {
        let s = std::fs::read_to_string("/proc/uptime").unwrap();
        s.split_whitespace().next().unwrap().parse().unwrap()
    };
    let before = uptime();
    let out = run_script(&mut c, "cat /proc/self/timens_offsets /proc/uptime");
    let after = uptime();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["monotonic", "100", "7"], "{out}");
    assert_eq!(lines[1], ["boottime", "86400", "0"], "{out}");
    // /proc/uptime follows the namespace's boot time.
    let inside: f64 = lines[2][0].parse().unwrap();
    assert!(
        inside >= before + 86400.0 && inside <= after + 86400.0 + 1.0,
        "uptime {inside} inside, {before}..{after} outside"
    );
}

// ---- what the runtime-spec refuses and runc applies ----

#[test]
fn duplicate_rlimits_are_refused() {
    if skip_unless_husk(
        "runc applies both entries of a duplicated rlimit type (the last one wins); the \
         runtime-spec says the runtime MUST generate an error, husk does",
    ) {
        return;
    }
    refused("rlimit_twice", &["rlimits"], |cfg| {
        cfg["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
            {"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512}
        ]);
    });
}

// ---- what husk does not implement ----

#[test]
fn other_platform_sections_are_refused() {
    if skip_unless_husk(
        "runc ignores the windows, solaris, vm and zos sections; husk refuses a bundle made \
         for another platform or a VM runtime",
    ) {
        return;
    }
    for (section, value) in [
        ("windows", json!({"layerFolders": ["C:\\layers\\l1"]})),
        (
            "solaris",
            json!({"milestone": "svc:/milestone/container:default"}),
        ),
        ("vm", json!({"kernel": {"path": "/boot/vmlinuz"}})),
        ("zos", json!({"namespaces": [{"type": "pid"}]})),
        // Present is enough: an empty section still says which platform the bundle is for.
        ("windows", json!({})),
    ] {
        eprintln!("case: {section}: {value}");
        refused(&format!("platform_{section}"), &[section], |cfg| {
            cfg[section] = value.clone();
        });
    }
}

#[test]
fn windows_process_fields_are_refused() {
    if skip_unless_husk("runc ignores process.commandLine and process.user.username (Windows only)")
    {
        return;
    }
    refused("command_line", &["process.commandLine"], |cfg| {
        cfg["process"]["commandLine"] = json!("cmd.exe /c echo hi");
    });
    refused("username", &["process.user.username"], |cfg| {
        cfg["process"]["user"]["username"] = json!("ContainerAdministrator");
    });
}

#[test]
fn net_devices_are_refused() {
    if skip_unless_husk(
        "runc 1.1 ignores linux.netDevices, runc 1.4 moves the devices into the container; \
         husk cannot and refuses them",
    ) {
        return;
    }
    refused("net_devices", &["linux.netDevices"], |cfg| {
        cfg["linux"]["netDevices"] = json!({"eth9": {"name": "eth1"}});
    });
}

// ---- linux.memoryPolicy (runtime-spec 1.3, runc 1.4) ----

/// The memory policy the first mapping of /proc/self/numa_maps shows, e.g. "bind:0".
const POLICY: &str = "head -n 1 /proc/self/numa_maps | cut -d ' ' -f 2";

/// A NUMA kernel with node 0 (else prints why the test skips).
fn numa() -> bool {
    let ok = std::path::Path::new("/sys/devices/system/node/node0").exists()
        && std::path::Path::new("/proc/self/numa_maps").exists();
    if !ok {
        eprintln!("skipped: this kernel has no NUMA support (/proc/self/numa_maps)");
    }
    ok
}

#[test]
fn memory_policy_in_init_and_exec() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.x ignores linux.memoryPolicy (applied from runc 1.4 on)");
        return;
    }
    if !numa() {
        return;
    }
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "bind=static:0",
        ),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
        (json!({"mode": "MPOL_DEFAULT"}), "default"),
        // runc: an empty policy is no policy.
        (json!({}), "default"),
    ] {
        let mut c = Container::new("mempolicy");
        c.bundle.config["linux"]["memoryPolicy"] = policy.clone();
        let out = run_script(&mut c, POLICY);
        assert_eq!(out.stdout.trim(), want, "{policy}");
    }

    let mut c = Container::new("mempolicy_exec");
    c.bundle.config["linux"]["memoryPolicy"] =
        json!({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]});
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let out = c.exec(&["sh", "-c", POLICY]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "prefer=relative:0", "exec");
    c.delete_force_ok();
}

#[test]
fn memory_policy_invalid_values_are_refused() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.x ignores linux.memoryPolicy (checked from runc 1.4 on)");
        return;
    }
    for (i, (policy, needles)) in [
        (
            json!({"mode": "INTERLEAVE", "nodes": "0"}),
            &["mode", "memory policy"][..],
        ),
        (json!({"nodes": "0-7"}), &["mode", "memory policy"][..]),
        (
            json!({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["badflag"]}),
            &["flag", "memory policy"][..],
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0-9876543210"}),
            &["node"][..],
        ),
        (json!({"mode": "MPOL_BIND", "nodes": "0,,1"}), &["node"][..]),
        // The kernel's call, made in the init: nodes are no business of MPOL_DEFAULT.
        (
            json!({"mode": "MPOL_DEFAULT", "nodes": "0-7",
                   "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
            &["set_mempolicy"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        eprintln!("case: {policy}");
        refused(&format!("mempolicy_bad{i}"), needles, |cfg| {
            cfg["linux"]["memoryPolicy"] = policy.clone();
        });
    }
}

// ---- process fields ----

#[test]
fn exec_takes_the_oom_score_adj() {
    let mut c = Container::new("exec_oom");
    c.bundle.config["process"]["oomScoreAdj"] = json!(100);
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let out = c.exec(&["cat", "/proc/self/oom_score_adj"]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "100", "exec of the container's process");

    // A --process file without oomScoreAdj takes the container's, one with it its own.
    for (adj, want) in [(None, "100"), (Some(300), "300")] {
        if adj.is_some() && is_runc_1_1() {
            eprintln!("skipped: runc 1.1.x gives exec'd processes the container's oomScoreAdj");
            continue;
        }
        let mut p = json!({"args": ["cat", "/proc/self/oom_score_adj"], "cwd": "/",
                           "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
        if let Some(a) = adj {
            p["oomScoreAdj"] = json!(a);
        }
        let path = c.bundle.path().join("process.json");
        std::fs::write(&path, p.to_string()).unwrap();
        let out =
            c.rt.run_args(&["exec", "--process", path.to_str().unwrap(), &c.id]);
        out.assert_success();
        assert_eq!(out.stdout.trim(), want, "--process {p}");
    }
    c.delete_force_ok();
}

#[test]
fn console_size_is_applied() {
    let sock = ConsoleSocket::new();
    let mut c = Container::new("console_size");
    c.bundle.config["process"]["terminal"] = json!(true);
    c.bundle.config["process"]["consoleSize"] = json!({"height": 25, "width": 93});
    c.bundle.set_script("stty size; echo the-end");
    c.create_with_console(&sock).assert_success();
    let master = sock.receive(WAIT);
    c.start_ok();
    let got = read_until(&master, "the-end", WAIT);
    assert_eq!(got.lines().next().map(str::trim), Some("25 93"), "{got:?}");
    c.wait_exited();
    c.delete_ok();

    // Without a terminal there is nothing to size: the runtime-spec says to ignore it.
    let mut c = Container::new("console_size_no_tty");
    c.bundle.config["process"]["consoleSize"] = json!({"height": 25, "width": 93});
    assert_eq!(run_script(&mut c, "echo ran").stdout, "ran\n");
}

// ---- accepted with a warning ----

#[test]
fn unknown_fields_are_ignored_with_a_warning() {
    let mut c = Container::new("unknown_fields");
    c.bundle.config["futureTopLevel"] = json!({"x": 1});
    c.bundle.config["linux"]["resources"]["memory"] = json!({"futureKnob": 1});
    c.bundle.config["mounts"][0]["extra"] = json!(true);
    // oci-spec parses a top-level uidMappings; the runtime-spec has none.
    c.bundle.config["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let out = run_script(&mut c, "echo ran");
    assert_eq!(out.stdout, "ran\n");
    if skip_unless_husk("runc ignores unknown fields without a word; husk names each") {
        return;
    }
    let warned: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("level=warning"))
        .collect();
    for path in [
        "futureTopLevel",
        "linux.resources.memory.futureKnob",
        "mounts[0].extra",
        "uidMappings",
    ] {
        assert!(
            warned.iter().any(|l| l.contains(&format!("{path}: "))),
            "no warning naming {path}:\n{out}"
        );
    }
    assert_eq!(warned.len(), 4, "{out}");
}

#[test]
fn use_hierarchy_false_is_ignored_with_a_warning() {
    let mut c = Container::new("use_hierarchy_warning");
    c.bundle.config["linux"]["resources"]["memory"] = json!({"useHierarchy": false});
    let out = run_script(&mut c, "echo ran");
    if skip_unless_husk("runc drops useHierarchy without a word; husk says so") {
        return;
    }
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("level=warning") && l.contains("useHierarchy")),
        "{out}"
    );
}
