//! `linux.seccomp`, checked from inside the container: what the filter denies, with which errno,
//! and that the rest still works; SCMP_ACT_NOTIFY with an agent listening at `listenerPath`.

use std::path::Path;

use serde_json::{json, Value};
use spec_tests::seccomp_agent::{Agent, Listening, Reply};
use spec_tests::tmp::TempDir;
use spec_tests::{caps, seccomp};
use spec_tests::{Container, Output};

/// Runs `script` (stderr folded into stdout) with `linux.seccomp` set to `profile` (none if
/// null) and a writable tmpfs at /tmp; the root is read-only.
fn run_with(name: &str, script: &str, profile: Value, tweak: impl FnOnce(&mut Value)) -> Output {
    let mut c = Container::new(name);
    c.bundle.set_script(&format!("exec 2>&1; {script}"));
    c.bundle.add_mount(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]
    }));
    if !profile.is_null() {
        c.bundle.config["linux"]["seccomp"] = profile;
    }
    tweak(&mut c.bundle.config);
    let out = c.run();
    c.assert_clean();
    out
}

/// Allows everything but `names`, which get `action` (with `errnoRet` unless null).
fn deny(names: &[&str], action: &str, errno_ret: Value) -> Value {
    let mut rule = json!({"names": names, "action": action});
    if !errno_ret.is_null() {
        rule["errnoRet"] = errno_ret;
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [rule]
    })
}

const MKDIR_AND_TOUCH: &str = "mkdir /tmp/x; echo mkdir=$?; touch /tmp/y; echo touch=$?";

#[test]
fn errno_rule_denies_only_its_syscalls() {
    let profile = deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", json!(1));
    let out = run_with("errno_eperm", MKDIR_AND_TOUCH, profile, |_| {});
    out.assert_success();
    assert!(
        out.stdout.contains("Operation not permitted"),
        "mkdir should fail with EPERM:\n{out}"
    );
    assert!(out.stdout.contains("mkdir=1\n"), "{out}");
    assert!(out.stdout.contains("touch=0\n"), "{out}");
}

#[test]
fn errno_defaults_to_eperm() {
    let profile = deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", Value::Null);
    let out = run_with("errno_default", MKDIR_AND_TOUCH, profile, |_| {});
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.contains("touch=0\n"), "{out}");
}

#[test]
fn errno_ret_is_returned() {
    for (name, errno, text) in [
        ("errno_enosys", 38, "Function not implemented"),
        ("errno_eacces", 13, "Permission denied"),
    ] {
        let profile = deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", json!(errno));
        let out = run_with(name, MKDIR_AND_TOUCH, profile, |_| {});
        assert!(out.stdout.contains(text), "errnoRet {errno}:\n{out}");
        assert!(out.stdout.contains("touch=0\n"), "{out}");
    }
}

#[test]
fn kill_action_kills_with_sigsys() {
    let profile = deny(&["mkdir", "mkdirat"], "SCMP_ACT_KILL", Value::Null);
    let out = run_with("kill", MKDIR_AND_TOUCH, profile, |_| {});
    // The shell's child (busybox mkdir) dies of SIGSYS: 128 + 31.
    assert!(out.stdout.contains("mkdir=159\n"), "{out}");
    assert!(out.stdout.contains("touch=0\n"), "{out}");
}

#[test]
fn arg_rule_matches_only_its_value() {
    // personality(PER_LINUX32) is denied; personality(PER_LINUX) is not.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["personality"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1,
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]
        }]
    });
    let out = run_with(
        "arg_rule",
        "busybox linux64 uname -m; busybox linux32 uname -m; echo linux32=$?",
        profile,
        |_| {},
    );
    out.assert_success();
    assert!(out.stdout.starts_with("x86_64\n"), "{out}");
    assert!(!out.stdout.contains("i686"), "{out}");
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.contains("linux32=1\n"), "{out}");
}

#[test]
fn status_shows_filter_mode() {
    let profile = deny(&["mkdir"], "SCMP_ACT_ERRNO", Value::Null);
    let on = run_with("status_on", "cat /proc/self/status", profile, |_| {});
    on.assert_success();
    assert_eq!(caps::status_field(&on.stdout, "Seccomp"), "2", "{on}");
    let off = run_with("status_off", "cat /proc/self/status", Value::Null, |_| {});
    off.assert_success();
    assert_eq!(caps::status_field(&off.stdout, "Seccomp"), "0", "{off}");
}

#[test]
fn unknown_syscall_name_is_skipped() {
    let profile = deny(
        &["nonexistent_syscall", "mkdir", "mkdirat"],
        "SCMP_ACT_ERRNO",
        json!(1),
    );
    let out = run_with("unknown_name", MKDIR_AND_TOUCH, profile, |_| {});
    out.assert_success();
    // The rule's other names still apply.
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.contains("touch=0\n"), "{out}");
}

#[test]
fn filter_loads_without_no_new_privileges() {
    // Then loading needs CAP_SYS_ADMIN, which the process itself does not keep.
    let profile = deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", json!(1));
    let out = run_with(
        "without_nnp",
        &format!("{MKDIR_AND_TOUCH}; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"),
        profile,
        |cfg| cfg["process"]["noNewPrivileges"] = json!(false),
    );
    out.assert_success();
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.contains("touch=0\n"), "{out}");
    assert_eq!(caps::status_field(&out.stdout, "Seccomp"), "2", "{out}");
    assert_eq!(caps::status_field(&out.stdout, "NoNewPrivs"), "0", "{out}");
}

#[test]
fn exec_gets_the_container_filter() {
    let mut c = Container::new("exec_filter");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.add_mount(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]
    }));
    c.bundle.config["linux"]["seccomp"] = deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", json!(1));
    c.create_ok();
    c.start_ok();
    let out = c.exec(&[
        "sh",
        "-c",
        "exec 2>&1; mkdir /tmp/x; echo mkdir=$?; grep '^Seccomp:' /proc/self/status",
    ]);
    out.assert_success();
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.contains("mkdir=1\n"), "{out}");
    assert_eq!(caps::status_field(&out.stdout, "Seccomp"), "2", "{out}");
    c.delete_force_ok();
}

/// A reduced Docker default profile: everything not listed fails with `default_errno`, clone is
/// allowed only without namespace flags (Docker's MASKED_EQ rule), clone3 gets ENOSYS.
fn docker_like(default_errno: u32) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": default_errno,
        "architectures": seccomp::X86_ARCHITECTURES,
        "syscalls": [
            {"names": seccomp::allowed(&["vfork"]), "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    })
}

#[test]
fn docker_like_profile_runs_a_shell() {
    // The pipeline forks: clone without namespace flags passes the MASKED_EQ rule. mkdir is
    // not in the list.
    let out = run_with(
        "docker_like",
        "echo ok | cat; mkdir /tmp/x; echo mkdir=$?",
        docker_like(1),
        |_| {},
    );
    out.assert_success();
    assert!(out.stdout.starts_with("ok\n"), "{out}");
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.contains("mkdir=1\n"), "{out}");
}

#[test]
fn default_errno_ret_is_returned() {
    let out = run_with(
        "default_errno_ret",
        "echo ok; mkdir /tmp/x; echo mkdir=$?",
        docker_like(38),
        |_| {},
    );
    out.assert_success();
    assert!(out.stdout.starts_with("ok\n"), "{out}");
    assert!(out.stdout.contains("Function not implemented"), "{out}");
}

/// NOTIFY for `names`, everything else allowed, with the agent at `listener`.
fn notify(names: &[&str], listener: &Path) -> Value {
    let mut p = deny(names, "SCMP_ACT_NOTIFY", Value::Null);
    p["listenerPath"] = json!(listener);
    p
}

const MKDIR: &[&str] = &["mkdir", "mkdirat"];

fn is_mkdir(nr: i32) -> bool {
    nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32
}

#[test]
fn notify_sends_listener_and_state_to_the_agent() {
    let agent = Agent::start(Some(|_, _| Reply::Continue));
    let mut c = Container::new("notify_state");
    c.bundle.set_args(&["sleep", "1000"]);
    let mut profile = notify(MKDIR, &agent.path());
    profile["listenerMetadata"] = json!("name=x; 1");
    c.bundle.config["linux"]["seccomp"] = profile;
    c.bundle.config["annotations"] = json!({"org.example.b": "2", "org.example.a": "1"});
    let pid = c.create_ok();
    let d = agent.next();
    assert_eq!(d.fds, ["anon_inode:seccomp notify"], "{}", d.state);
    let st = c.state();
    let s = &d.state;
    assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
    assert_eq!(s["pid"], pid, "{s}");
    assert_eq!(s["metadata"], "name=x; 1", "{s}");
    assert_eq!(s["ociVersion"], st["ociVersion"], "{s}");
    // The runtime-spec state, as of the moment the filter was loaded.
    let want = json!({
        "ociVersion": st["ociVersion"], "id": c.id, "status": "creating", "pid": pid,
        "bundle": st["bundle"], "annotations": {"org.example.a": "1", "org.example.b": "2"}
    });
    assert_eq!(s["state"], want, "{s}");
    c.delete_ok();
}

/// The n-th mkdir fails with ENOMEDIUM, then one returns 0 without running, then they run.
fn mkdir_answers(n: usize, nr: i32) -> Reply {
    assert!(is_mkdir(nr), "only mkdir is notified, got syscall {nr}");
    match n {
        0 => Reply::Errno(libc::ENOMEDIUM),
        1 => Reply::Success,
        _ => Reply::Continue,
    }
}

const THREE_MKDIRS: &str = "mkdir /tmp/a; echo a=$?; \
    mkdir /tmp/b; echo b=$?; test -d /tmp/b; echo b_made=$?; \
    mkdir /tmp/c; echo c=$?; test -d /tmp/c; echo c_made=$?";

#[test]
fn notify_agent_answers_reach_the_container() {
    // The filter is loaded at a different point with and without no_new_privs.
    for nnp in [true, false] {
        let agent = Agent::start(Some(mkdir_answers));
        let out = run_with(
            &format!("notify_answers_{nnp}"),
            THREE_MKDIRS,
            notify(MKDIR, &agent.path()),
            |cfg| cfg["process"]["noNewPrivileges"] = json!(nnp),
        );
        out.assert_success();
        assert!(out.stdout.contains("No medium found"), "{out}");
        for line in ["a=1", "b=0", "b_made=1", "c=0", "c_made=0"] {
            assert!(out.stdout.contains(&format!("{line}\n")), "{line}:\n{out}");
        }
        let notified: Vec<i32> = agent.next().notified.try_iter().collect();
        assert_eq!(notified.len(), 3, "{notified:?}");
    }
}

#[test]
fn notify_reaches_the_agent_for_exec() {
    for nnp in [true, false] {
        let agent = Agent::start(Some(|_, _| Reply::Errno(libc::ENOMEDIUM)));
        let mut c = Container::new(&format!("notify_exec_{nnp}"));
        c.bundle.set_args(&["sleep", "1000"]);
        c.bundle.add_mount(json!({
            "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]
        }));
        c.bundle.config["process"]["noNewPrivileges"] = json!(nnp);
        c.bundle.config["linux"]["seccomp"] = notify(MKDIR, &agent.path());
        let pid = c.create_ok();
        c.start_ok();
        assert_eq!(agent.next().state["pid"], pid);
        let out = c.exec(&["sh", "-c", "exec 2>&1; mkdir /tmp/x; echo x=$?"]);
        out.assert_success();
        assert!(out.stdout.contains("No medium found"), "{out}");
        assert!(out.stdout.contains("x=1\n"), "{out}");
        let d = agent.next();
        assert_eq!(d.fds, ["anon_inode:seccomp notify"], "{}", d.state);
        let s = &d.state;
        // `pid` is the exec'd process; the state is the container's.
        let exec_pid = s["pid"].as_i64().expect("pid");
        assert!(exec_pid > 0 && exec_pid != i64::from(pid), "{s}");
        assert_eq!(s["state"]["status"], "running", "{s}");
        assert_eq!(s["state"]["pid"], pid, "{s}");
        assert_eq!(s["state"]["id"], c.id, "{s}");
        assert!(d.notified.try_iter().any(is_mkdir), "{s}");
        c.delete_force_ok();
    }
}

#[test]
fn notify_on_syscalls_the_runtime_needs() {
    // Once the agent holds the listener, the runtime's own last syscalls (exec fifo, closing
    // fds, execve) may be notified too: they wait for the agent, which lets them run.
    let names = [
        "execve",
        "openat",
        "open",
        "read",
        "close",
        "close_range",
        "fcntl",
        "mmap",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
    ];
    for nnp in [true, false] {
        let agent = Agent::start(Some(|_, _| Reply::Continue));
        let out = run_with(
            &format!("notify_runtime_{nnp}"),
            "echo ok",
            notify(&names, &agent.path()),
            |cfg| cfg["process"]["noNewPrivileges"] = json!(nnp),
        );
        out.assert_success();
        assert_eq!(out.stdout, "ok\n", "{out}");
        let notified: Vec<i32> = agent.next().notified.try_iter().collect();
        assert!(
            notified.contains(&(libc::SYS_execve as i32)),
            "the container's execve goes through the agent: {notified:?}"
        );
    }
}

#[test]
fn notify_without_agent_fails_with_enosys() {
    // The agent closes the listener at once: if no other copy is left open (in the runtime or
    // the container), notified syscalls fail with ENOSYS instead of waiting forever.
    let agent = Agent::start(None);
    let out = run_with(
        "notify_closed",
        "mkdir /tmp/x; echo x=$?",
        notify(MKDIR, &agent.path()),
        |_| {},
    );
    out.assert_success();
    assert!(out.stdout.contains("Function not implemented"), "{out}");
    assert!(out.stdout.contains("x=1\n"), "{out}");
    assert_eq!(agent.next().fds, ["anon_inode:seccomp notify"]);
}

#[test]
fn notify_misconfigurations_are_refused() {
    let nowhere = TempDir::new("nosock");
    let missing = nowhere.path().join("agent.sock");
    let mut without_path = notify(MKDIR, &missing);
    without_path["listenerPath"] = json!("");
    let mut as_default = notify(MKDIR, &missing);
    as_default["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    as_default["syscalls"] = json!([]);
    let cases = [
        ("notify_no_path", without_path, &["listenerPath"][..]),
        (
            "notify_write",
            notify(&["read", "write"], &missing),
            &["write syscall"][..],
        ),
        ("notify_default", as_default, &["default action"][..]),
        (
            "notify_no_agent",
            notify(MKDIR, &missing),
            &["failed to connect with seccomp agent"][..],
        ),
    ];
    for (name, profile, needles) in cases {
        let mut c = Container::new(name);
        c.bundle.config["linux"]["seccomp"] = profile;
        let out = c.create();
        spec_tests::assert_one_line_naming(out.assert_failure(), needles);
        c.assert_clean();
    }
}

#[test]
fn listener_path_without_notify_is_ignored() {
    // runtime-spec: "If no SCMP_ACT_NOTIFY action is used this value is ignored" (runc too).
    let dir = TempDir::new("listener");
    let listening = Listening::at(&dir.path().join("agent.sock"));
    let mut profile = deny(MKDIR, "SCMP_ACT_ERRNO", json!(1));
    profile["listenerPath"] = json!(dir.path().join("agent.sock"));
    profile["listenerMetadata"] = json!("x");
    let out = run_with("listener_ignored", MKDIR_AND_TOUCH, profile, |_| {});
    out.assert_success();
    assert!(out.stdout.contains("mkdir=1\n"), "{out}");
    assert!(
        !listening.connected(),
        "the runtime connected to listenerPath"
    );
}
