//! runc 1.2 behaviours: seccomp's ENOSYS for syscalls newer than the profile, `--pidfd-socket`,
//! `exec --ignore-paused` and `--cap`, startContainer hooks under the filter, the console's
//! owner and size, and the wording of a failed execve.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec_tests::console::{read_until, ConsoleSocket};
use spec_tests::runtime::is_runc_1_1;
use spec_tests::{assert_one_line_naming, caps, proc, seccomp, Container, Fifo, Runtime, WAIT};

/// A static helper for the rootfs (busybox cannot make raw syscalls): for each syscall number
/// given, calls it with invalid arguments and prints `NR=ERRNO` (0 when it succeeded). Only
/// whether the filter lets the call reach the kernel matters.
const SYSCALL_PROBE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = syscall(strtol(argv[i], 0, 0), -1L, 0L, 0L, 0L, 0L, 0L);
        printf("%s=%d\n", argv[i], r < 0 ? errno : 0);
    }
    return 0;
}
"#;

/// Builds [`SYSCALL_PROBE`] into `<rootfs>/bin/probe` with the C compiler (build-essential).
fn install_syscall_probe(bundle: &Path) {
    let src = bundle.join("probe.c");
    std::fs::write(&src, SYSCALL_PROBE).unwrap();
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(bundle.join("rootfs/bin/probe"))
        .arg(&src)
        .stdin(Stdio::null())
        .output()
        .expect("run cc (apt-get install build-essential)");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 1000 and 440 (process_madvise) are beyond the profile's highest syscall, mkdir (83) is
/// known to the profile's architecture but not allowed, getpid (39) is allowed.
const PROBED: &[&str] = &["/bin/probe", "1000", "440", "83", "39"];

/// The shared allow-list and what busybox's sleep adds; its highest syscall is faccessat2 (439).
fn enosys_profile(architectures: bool) -> Value {
    let mut p = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{
            "names": seccomp::allowed(&["clock_nanosleep", "clone"]),
            "action": "SCMP_ACT_ALLOW"
        }]
    });
    if architectures {
        p["architectures"] = json!(seccomp::X86_ARCHITECTURES);
    }
    p
}

#[test]
fn seccomp_syscall_newer_than_the_profile_fails_with_enosys() {
    // runc (patchbpf): for each architecture the profile names, a syscall numbered above the
    // highest one the profile names returns ENOSYS, so that libcs fall back (clone3 -> clone);
    // the others get the default action. Without `architectures` runc adds nothing.
    for (archs, want) in [
        (true, "1000=38\n440=38\n83=1\n39=0\n"),
        (false, "1000=1\n440=1\n83=1\n39=0\n"),
    ] {
        let mut c = Container::new(&format!("enosys_{archs}"));
        install_syscall_probe(c.bundle.path());
        c.bundle.set_args(PROBED);
        c.bundle.config["linux"]["seccomp"] = enosys_profile(archs);
        let out = c.run();
        out.assert_success();
        assert_eq!(out.stdout, want, "architectures listed: {archs}\n{out}");
        c.assert_clean();
    }
}

#[test]
fn seccomp_enosys_applies_to_exec() {
    let mut c = Container::new("enosys_exec");
    install_syscall_probe(c.bundle.path());
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.config["linux"]["seccomp"] = enosys_profile(true);
    c.create_ok();
    c.start_ok();
    let out = c.exec(PROBED);
    out.assert_success();
    assert_eq!(out.stdout, "1000=38\n440=38\n83=1\n39=0\n", "{out}");
    c.delete_force_ok();
}

/// The pid a pidfd refers to, as /proc/self/fdinfo shows it (in our pid namespace).
fn pidfd_pid(fd: &OwnedFd) -> i32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    caps::status_field(&info, "Pid")
        .parse()
        .unwrap_or_else(|_| panic!("no Pid in fdinfo:\n{info}"))
}

fn pidfd_kill(fd: &OwnedFd) {
    // SAFETY: pidfd_send_signal with a pidfd we own, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn pidfd_socket_receives_the_init_and_exec_pidfds() {
    if is_runc_1_1() {
        eprintln!("skipped: --pidfd-socket arrived in runc 1.2");
        return;
    }
    let mut c = Container::new("pidfd");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let sock = ConsoleSocket::new();
    let sock_path = sock.path();
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    let s = sock_path.to_str().unwrap();
    c.rt.run_args(&["create", "--bundle", &bundle, "--pidfd-socket", s, &c.id])
        .assert_success();
    c.observe();
    let (kind, init) = sock.receive_named(WAIT);
    assert_eq!(kind, "standard");
    assert_eq!(pidfd_pid(&init), c.pid());
    c.start_ok();

    let pid_file = c.bundle.path().join("exec.pid");
    let pf = pid_file.to_str().unwrap();
    c.rt.run_args(&[
        "exec",
        "--detach",
        "--pid-file",
        pf,
        "--pidfd-socket",
        s,
        &c.id,
        "sleep",
        "1000",
    ])
    .assert_success();
    let (kind, exec) = sock.receive_named(WAIT);
    assert_eq!(kind, "setns");
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(pidfd_pid(&exec), exec_pid);
    // The pidfds work: the caller can signal the processes without pid reuse races.
    pidfd_kill(&exec);
    assert!(proc::wait_exit(exec_pid, WAIT), "exec'd process survived");
    pidfd_kill(&init);
    c.wait_exited();
    c.delete_ok();
}

#[test]
fn pidfd_socket_with_run_detached() {
    if is_runc_1_1() {
        eprintln!("skipped: --pidfd-socket arrived in runc 1.2");
        return;
    }
    let mut c = Container::new("pidfd_run");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let sock = ConsoleSocket::new();
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    let s = sock.path();
    c.rt.run_args(&[
        "run",
        "-d",
        "--bundle",
        &bundle,
        "--pidfd-socket",
        s.to_str().unwrap(),
        &c.id,
    ])
    .assert_success();
    c.observe();
    let (kind, init) = sock.receive_named(WAIT);
    assert_eq!(kind, "standard");
    assert_eq!(pidfd_pid(&init), c.pid());
    c.delete_force_ok();
}

#[test]
fn pidfd_socket_that_nobody_listens_on() {
    if is_runc_1_1() {
        eprintln!("skipped: --pidfd-socket arrived in runc 1.2");
        return;
    }
    let mut c = Container::new("pidfd_nosock");
    c.bundle.write_config();
    let missing = c.bundle.path().join("nosock");
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    let out = c.rt.run_args(&[
        "create",
        "--bundle",
        &bundle,
        "--pidfd-socket",
        missing.to_str().unwrap(),
        &c.id,
    ]);
    // runc: failed to dail <path>: dial unix <path>: connect: no such file or directory
    assert_one_line_naming(out.assert_failure(), &[missing.to_str().unwrap()]);
    c.assert_clean();
}

/// The container's pids, asked of the runtime (`ps --format json`).
fn container_pids(c: &Container) -> Vec<i64> {
    let out = c.rt.run_args(&["ps", "--format", "json", &c.id]);
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused() {
    let mut c = Container::new("ignore_paused");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    c.rt.run_args(&["pause", &c.id]).assert_success();
    let out = c.exec(&["true"]);
    assert_eq!(out.code(), 255, "{out}");
    assert_one_line_naming(
        &out.stderr,
        &["cannot exec in a paused container (use --ignore-paused to override)"],
    );

    // With the flag, the process joins the frozen container and runs once it is resumed.
    let mut exec =
        c.rt.command(&[
            "exec",
            "--ignore-paused",
            &c.id,
            "sh",
            "-c",
            "echo ran > /shared/fifo",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exec");
    let deadline = Instant::now() + WAIT;
    while container_pids(&c).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the exec'd process never joined the paused container"
        );
        assert!(
            exec.try_wait().unwrap().is_none(),
            "exec gave up while paused"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.status(), "paused");
    c.rt.run_args(&["resume", &c.id]).assert_success();
    fifo.expect_line("ran");
    assert!(
        proc::wait_exit(exec.id() as i32, WAIT),
        "exec did not return"
    );
    assert!(exec.wait().unwrap().success());
    c.delete_force_ok();
}

#[test]
fn pause_and_resume_of_a_missing_container_fail() {
    let rt = Runtime::new();
    for cmd in ["pause", "resume"] {
        let out = rt.run_args(&[cmd, "st-no-such-container"]);
        assert_eq!(out.code(), 1, "{out}");
        assert_one_line_naming(&out.stderr, &["container does not exist"]);
    }
}

#[test]
fn exec_cap_is_ambient_when_the_spec_has_inheritable_caps() {
    // runc adds --cap to the ambient set too, which the kernel allows only for an inheritable
    // capability: the spec's ambient set stays, and --cap adds to it what the spec inherits.
    let mut c = Container::new("exec_cap_ambient");
    let inherited = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    c.bundle.config["process"]["capabilities"] = json!({
        "bounding": inherited, "effective": inherited, "permitted": inherited,
        "inheritable": inherited, "ambient": ["CAP_KILL"]
    });
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let ambient = |extra: &[&str]| {
        let mut args = vec!["exec"];
        for cap in extra {
            args.extend(["--cap", cap]);
        }
        args.extend([c.id.as_str(), "cat", "/proc/self/status"]);
        let out = c.rt.run_args(&args);
        out.assert_success();
        u64::from_str_radix(caps::status_field(&out.stdout, "CapAmb"), 16).unwrap()
    };
    assert_eq!(ambient(&[]), caps::mask(&["CAP_KILL"]));
    assert_eq!(
        ambient(&["CAP_NET_BIND_SERVICE"]),
        caps::mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"])
    );
    // Not inheritable: bounding, effective and permitted only.
    assert_eq!(ambient(&["CAP_SYS_ADMIN"]), caps::mask(&["CAP_KILL"]));
    c.delete_force_ok();
}

#[test]
fn start_container_hooks_run_under_the_seccomp_filter() {
    // startContainer hooks run in the container, after the filter is loaded (runc loads it
    // before the exec fifo wait, with or without no_new_privs).
    for nnp in [true, false] {
        let mut c = Container::new(&format!("hook_seccomp_{nnp}"));
        let shared = c.bundle.shared_dir();
        c.bundle.add_mount(json!({
            "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]
        }));
        c.bundle.config["process"]["noNewPrivileges"] = json!(nnp);
        c.bundle.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]
        });
        c.bundle.config["hooks"] = json!({"startContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "mkdir /tmp/by-hook 2>/dev/null; echo mkdir=$? > /shared/hook; \
                     grep ^Seccomp: /proc/self/status >> /shared/hook"]
        }]});
        c.bundle.set_args(&["true"]);
        c.run().assert_success();
        let got = std::fs::read_to_string(shared.join("hook")).unwrap();
        assert_eq!(got, "mkdir=1\nSeccomp:\t2\n", "noNewPrivileges {nnp}");
        c.assert_clean();
    }
}

/// Reads from a pty master up to "the-end", with the terminal's CRs removed.
fn pty_lines(master: &OwnedFd) -> Vec<String> {
    read_until(master, "the-end", WAIT)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}

#[test]
fn console_belongs_to_the_process_user() {
    // runc changes the owner (not the group: devpts' gid= gives that) of the process's stdio
    // to its uid, so that a non-root process can use its terminal. (-L: the fd's file, not
    // the /proc link, which belongs to the process.)
    let mut c = Container::new("console_owner");
    c.bundle.config["process"]["terminal"] = json!(true);
    c.bundle.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.bundle
        .set_script("stat -L -c owner=%u:%g /proc/self/fd/0; echo the-end; exec sleep 1000");
    let sock = ConsoleSocket::new();
    c.create_with_console(&sock).assert_success();
    let master = sock.receive(WAIT);
    c.start_ok();
    let lines = pty_lines(&master);
    assert!(lines.iter().any(|l| l == "owner=1000:5"), "init: {lines:?}");

    let exec_sock = ConsoleSocket::new();
    let s = exec_sock.path();
    c.rt.run_args(&[
        "exec",
        "-d",
        "-t",
        "--console-socket",
        s.to_str().unwrap(),
        "--user",
        "1001:1001",
        &c.id,
        "sh",
        "-c",
        "stat -L -c owner=%u:%g /proc/self/fd/0; echo the-end",
    ])
    .assert_success();
    let lines = pty_lines(&exec_sock.receive(WAIT));
    assert!(lines.iter().any(|l| l == "owner=1001:5"), "{lines:?}");
    c.delete_force_ok();
}

#[test]
fn exec_tty_takes_console_size_from_the_process_json() {
    let mut c = Container::new("exec_console_size");
    c.bundle.config["process"]["terminal"] = json!(true);
    c.bundle.config["process"]["consoleSize"] = json!({"height": 21, "width": 77});
    c.bundle
        .set_script("stty size; echo the-end; exec sleep 1000");
    let sock = ConsoleSocket::new();
    c.create_with_console(&sock).assert_success();
    let master = sock.receive(WAIT);
    c.start_ok();
    let lines = pty_lines(&master);
    assert!(lines.iter().any(|l| l == "21 77"), "init: {lines:?}");

    let process = c.bundle.path().join("process.json");
    std::fs::write(
        &process,
        json!({
            "terminal": true,
            "consoleSize": {"height": 37, "width": 113},
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", "stty size; echo the-end"],
            "env": ["PATH=/bin"],
            "cwd": "/"
        })
        .to_string(),
    )
    .unwrap();
    let exec_sock = ConsoleSocket::new();
    let s = exec_sock.path();
    c.rt.run_args(&[
        "exec",
        "-d",
        "--console-socket",
        s.to_str().unwrap(),
        "--process",
        process.to_str().unwrap(),
        &c.id,
    ])
    .assert_success();
    let lines = pty_lines(&exec_sock.receive(WAIT));
    assert!(lines.iter().any(|l| l == "37 113"), "exec: {lines:?}");
    c.delete_force_ok();
}

/// A script whose interpreter does not exist: found and executable, but execve fails ENOENT.
fn script_without_interpreter(rootfs: &Path) {
    let p = rootfs.join("bin/script");
    std::fs::write(&p, "#!/no/such/interpreter\necho unreachable\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const NO_INTERPRETER: &str = "exec /bin/script: no such file or directory";

#[test]
fn missing_interpreter_says_exec_path_no_such_file() {
    // runc finds /bin/script at create; its execve, after start, fails and the init says so on
    // the process's stderr.
    let mut c = Container::new("no_interp_run");
    script_without_interpreter(&c.bundle.rootfs());
    c.bundle.set_args(&["/bin/script"]);
    let out = c.run();
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains(NO_INTERPRETER), "{out}");
    c.assert_clean();

    let mut c = Container::new("no_interp_start");
    script_without_interpreter(&c.bundle.rootfs());
    c.bundle.set_args(&["/bin/script"]);
    let created = c.create();
    created.assert_success();
    c.start_ok();
    c.wait_exited();
    assert!(created.stderr_now().contains(NO_INTERPRETER), "{created}");
    c.delete_ok();
}

#[test]
fn exec_of_a_script_without_interpreter() {
    let mut c = Container::new("no_interp_exec");
    script_without_interpreter(&c.bundle.rootfs());
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let out = c.exec(&["/bin/script"]);
    // runc 1.1: the process prints it and exits 1; runc 1.2 (and husk): exec fails with it.
    assert!(!out.success(), "{out}");
    assert_one_line_naming(&out.stderr, &[NO_INTERPRETER]);
    c.delete_force_ok();
}
