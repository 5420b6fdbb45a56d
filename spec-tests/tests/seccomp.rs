//! `linux.seccomp`, checked from inside the container: what the filter denies, with which errno,
//! and that the rest still works.

use serde_json::{json, Value};
use spec_tests::caps;
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
    let allowed = [
        "access",
        "arch_prctl",
        "brk",
        "capget",
        "capset",
        "chdir",
        "close",
        "close_range",
        "dup",
        "dup2",
        "dup3",
        "epoll_create1",
        "epoll_ctl",
        "epoll_pwait",
        "epoll_wait",
        "execve",
        "exit",
        "exit_group",
        "faccessat",
        "faccessat2",
        "fchdir",
        "fcntl",
        "fstat",
        "fstatfs",
        "futex",
        "getcwd",
        "getdents64",
        "getegid",
        "geteuid",
        "getgid",
        "getgroups",
        "getpgrp",
        "getpid",
        "getppid",
        "getrandom",
        "getrlimit",
        "gettid",
        "getuid",
        "ioctl",
        "lseek",
        "madvise",
        "mmap",
        "mprotect",
        "munmap",
        "nanosleep",
        "newfstatat",
        "open",
        "openat",
        "pipe",
        "pipe2",
        "poll",
        "prctl",
        "pread64",
        "prlimit64",
        "read",
        "readlink",
        "readlinkat",
        "rseq",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "sched_getaffinity",
        "sched_yield",
        "set_robust_list",
        "set_tid_address",
        "setgid",
        "setgroups",
        "setresgid",
        "setresuid",
        "setsid",
        "setuid",
        "sigaltstack",
        "stat",
        "statx",
        "tgkill",
        "uname",
        "vfork",
        "wait4",
        "write",
        "writev",
    ];
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": default_errno,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": &allowed[..], "action": "SCMP_ACT_ALLOW"},
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
