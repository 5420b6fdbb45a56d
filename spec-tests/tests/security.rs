//! Attacks on the runtime from inside a container or from a crafted bundle: each test tries
//! one deterministically and fails on a runtime that lets it through.
//!
//! Debian's runc 1.1.5+ds1-1+deb12u1 resists CVE-2019-5736 (its init runs from a read-only bind
//! mount of its binary), CVE-2022-29162 (fixed in 1.1.2) and CVE-2024-21626 (backported), and
//! passes those tests. It is vulnerable, as seen on this machine, to CVE-2025-31133 (fixed in
//! runc 1.2.8) and CVE-2026-41579 (fixed in runc 1.3.6): those two tests are skipped on runc
//! 1.1.x, with the reason printed.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;

use serde_json::json;
use spec_tests::proc::mounts_mentioning;
use spec_tests::runtime::{is_runc_1_1, runtime_binary};
use spec_tests::seccomp_agent::{Agent, Handler, Reply};
use spec_tests::sync::mkfifo;
use spec_tests::tmp::TempDir;
use spec_tests::{assert_one_line_naming, Container, Fifo, Output, WAIT};
use spec_tests::{caps, mountinfo};

/// The fds of a container process that a leaked host fd could hide behind.
const FDS: std::ops::RangeInclusive<u32> = 3..=10;

/// `n` times "../", enough to climb from any directory to the root of its mount tree.
fn dotdots() -> String {
    "../".repeat(24)
}

/// A script that prints the cwd and whether the host's bundle directory (which is not in the
/// container) can be reached from it by climbing with "..": only a cwd outside the container's
/// root can climb to the host's root.
fn cwd_probe(bundle: &Path) -> String {
    format!(
        "pwd; if [ -e {}{}/config.json ]; then echo HOST-REACHABLE; fi",
        dotdots(),
        bundle.display().to_string().trim_start_matches('/')
    )
}

/// Checks the output of [`cwd_probe`] from a process that started.
#[track_caller]
fn assert_cwd_inside(what: &str, out: &Output) {
    let first = out.stdout.lines().next().unwrap_or("");
    assert!(
        first.starts_with('/') && !first.contains("(unreachable)"),
        "{what}: the process's cwd is outside the container:\n{out}"
    );
    assert!(
        !out.stdout.contains("HOST-REACHABLE"),
        "{what}: the host's root is reachable from the process's cwd:\n{out}"
    );
}

#[test]
fn cve_2024_21626_cwd_through_leaked_fd() {
    // A leaked host directory fd N in the init makes `process.cwd: /proc/self/fd/N` a host
    // directory. Each N must fail to create, or leave the cwd inside the container.
    for n in FDS {
        let mut c = Container::new(&format!("cwd_fd{n}"));
        let probe = cwd_probe(c.bundle.path());
        c.bundle.set_script(&probe);
        c.bundle.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let out = c.run();
        if out.success() {
            assert_cwd_inside(&format!("process.cwd /proc/self/fd/{n}"), &out);
        } else {
            assert!(
                !out.stdout.contains("HOST-REACHABLE"),
                "process.cwd /proc/self/fd/{n}:\n{out}"
            );
        }
        c.assert_clean();
    }
}

#[test]
fn cve_2024_21626_exec_cwd_through_leaked_fd() {
    let mut c = Container::new("exec_cwd_fd");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let probe = cwd_probe(c.bundle.path());
    for n in FDS {
        let cwd = format!("/proc/self/fd/{n}");
        let out =
            c.rt.run_args(&["exec", "--cwd", &cwd, &c.id, "sh", "-c", &probe]);
        if out.success() {
            assert_cwd_inside(&format!("exec --cwd {cwd}"), &out);
        } else {
            assert!(
                !out.stdout.contains("HOST-REACHABLE"),
                "exec --cwd {cwd}:\n{out}"
            );
        }
    }
    c.delete_force_ok();
}

/// A host-only static binary, reached through fd `n`: the container's rootfs has no /usr, the
/// host has busybox-static at /usr/bin/busybox (Debian's merged /usr). It can only run if fd
/// `n` is a host directory.
fn host_binary_via_fd(n: u32) -> String {
    assert!(
        Path::new("/usr/bin/busybox").exists(),
        "the host needs busybox-static at /usr/bin/busybox"
    );
    format!("/proc/self/fd/{n}/{}usr/bin/busybox", dotdots())
}

#[test]
fn cve_2024_21626_args_through_leaked_fd() {
    // The same leak used through process.args[0]: execve resolves the path while the fds are
    // still open (close-on-exec fds close only once the new program is loaded).
    for n in FDS {
        let mut c = Container::new(&format!("args_fd{n}"));
        let bin = host_binary_via_fd(n);
        c.bundle.set_args(&[&bin, "echo", "HOST-BINARY-RAN"]);
        let out = c.run();
        assert!(
            !out.success() && !out.stdout.contains("HOST-BINARY-RAN"),
            "process.args[0] {bin} ran a host binary:\n{out}"
        );
        c.assert_clean();
    }
}

#[test]
fn cve_2024_21626_exec_args_through_leaked_fd() {
    let mut c = Container::new("exec_args_fd");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    for n in FDS {
        let bin = host_binary_via_fd(n);
        let out = c.exec(&[&bin, "echo", "HOST-BINARY-RAN"]);
        assert!(
            !out.success() && !out.stdout.contains("HOST-BINARY-RAN"),
            "exec of {bin} ran a host binary:\n{out}"
        );
    }
    c.delete_force_ok();
}

/// Makes `cmd` start with a host directory open (not close-on-exec) at every fd in [`FDS`], as
/// a careless caller of the runtime would leak it.
fn leak_host_dir_fds(cmd: &mut Command, dir: &Path) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let d = std::fs::File::open(dir).expect("open host dir");
    // SAFETY: only async-signal-safe fcntl/dup2 between fork and exec; `d` outlives the spawn
    // because the closure owns it.
    unsafe {
        cmd.pre_exec(move || {
            let src = libc::fcntl(d.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 64);
            if src < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for n in FDS {
                if libc::dup2(src, n as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[test]
fn host_dir_fds_inherited_by_the_runtime_do_not_reach_the_container() {
    // The runtime itself starts with a host directory at fds 3..=10 (its caller leaked them).
    // They must not serve as the container's cwd or as a way to a host binary, nor stay open.
    let mut breaches = Vec::new();
    for n in FDS {
        for kind in ["cwd", "args"] {
            let mut c = Container::new(&format!("inherited_{kind}{n}"));
            let host_dir = c.bundle.path().to_owned();
            if kind == "cwd" {
                let probe = cwd_probe(c.bundle.path());
                c.bundle.set_script(&probe);
                c.bundle.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
            } else {
                let bin = host_binary_via_fd(n);
                c.bundle.set_args(&[&bin, "echo", "HOST-BINARY-RAN"]);
            }
            c.bundle.write_config();
            let mut cmd =
                c.rt.command(&["run", "--bundle", c.bundle.path().to_str().unwrap(), &c.id]);
            leak_host_dir_fds(&mut cmd, &host_dir);
            let out = c.rt.output(cmd);
            let escaped = out.stdout.contains("HOST-BINARY-RAN")
                || out.stdout.contains("HOST-REACHABLE")
                || out.stdout.contains("(unreachable)");
            if escaped {
                breaches.push(format!("process.{kind} through inherited fd {n}:\n{out}"));
            }
            c.assert_clean();
        }
    }
    // The same for exec into a running container.
    let mut c = Container::new("inherited_exec");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let probe = cwd_probe(c.bundle.path());
    for n in FDS {
        let cwd = format!("/proc/self/fd/{n}");
        let bin = host_binary_via_fd(n);
        let attempts: [(&str, Vec<&str>); 2] = [
            (
                "--cwd",
                vec!["exec", "--cwd", &cwd, &c.id, "sh", "-c", &probe],
            ),
            ("args", vec!["exec", &c.id, &bin, "echo", "HOST-BINARY-RAN"]),
        ];
        for (kind, args) in attempts {
            let mut cmd = c.rt.command(&args);
            leak_host_dir_fds(&mut cmd, c.bundle.path());
            let out = c.rt.output(cmd);
            let escaped = out.stdout.contains("HOST-BINARY-RAN")
                || out.stdout.contains("HOST-REACHABLE")
                || out.stdout.contains("(unreachable)");
            if escaped {
                breaches.push(format!("exec {kind} through inherited fd {n}:\n{out}"));
            }
        }
    }
    let mut cmd =
        c.rt.command(&["exec", &c.id, LIST_FDS[0], LIST_FDS[1], LIST_FDS[2]]);
    leak_host_dir_fds(&mut cmd, c.bundle.path());
    let out = c.rt.output(cmd);
    out.assert_success();
    if open_fds(&out) != ["0", "1", "2"] {
        breaches.push(format!("fds other than stdio are open in exec:\n{out}"));
    }
    c.delete_force_ok();

    let mut c = Container::new("inherited_fds_listed");
    c.bundle.set_args(LIST_FDS);
    c.bundle.write_config();
    let mut cmd =
        c.rt.command(&["run", "--bundle", c.bundle.path().to_str().unwrap(), &c.id]);
    leak_host_dir_fds(&mut cmd, c.bundle.path());
    let out = c.rt.output(cmd);
    out.assert_success();
    if open_fds(&out) != ["0", "1", "2"] {
        breaches.push(format!(
            "fds other than stdio are open in the container:\n{out}"
        ));
    }
    c.assert_clean();
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

/// Lists the fds of the shell itself (not of ls): only stdio may be there.
const LIST_FDS: &[&str] = &["sh", "-c", "ls -l /proc/$$/fd; true"];

/// The fd numbers in the output of [`LIST_FDS`].
fn open_fds(out: &Output) -> Vec<&str> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(" -> ")?.0.rsplit(' ').next())
        .filter(|f| f.parse::<u32>().is_ok())
        .collect()
}

/// Checks the output of [`LIST_FDS`].
#[track_caller]
fn assert_only_stdio(what: &str, out: &Output) {
    out.assert_success();
    assert_eq!(
        open_fds(out),
        ["0", "1", "2"],
        "{what}: fds other than stdio are open in the container's process:\n{out}"
    );
}

#[test]
fn cve_2024_21626_no_fds_leak_into_container() {
    let mut c = Container::new("fds_init");
    c.bundle.set_args(LIST_FDS);
    let out = c.run();
    assert_only_stdio("init", &out);
    c.assert_clean();
}

#[test]
fn cve_2024_21626_no_fds_leak_into_exec() {
    let mut c = Container::new("fds_exec");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    // Before start (the init is still the runtime's code) and after.
    assert_only_stdio("exec, created", &c.exec(LIST_FDS));
    c.start_ok();
    assert_only_stdio("exec, running", &c.exec(LIST_FDS));
    c.delete_force_ok();
}

#[test]
fn cve_2022_29162_exec_cap_is_not_inheritable() {
    // Vulnerable runcs put --cap capabilities into the inheritable set too, where a non-root
    // process keeps them across execve of a program with inheritable file capabilities.
    let mut c = Container::new("exec_cap");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    for user in ["1000:1000", "0:0"] {
        let out = c.rt.run_args(&[
            "exec",
            "--cap",
            "CAP_SYS_ADMIN",
            "--user",
            user,
            &c.id,
            "cat",
            "/proc/self/status",
        ]);
        out.assert_success();
        let got = caps::from_status(&out.stdout);
        let get = |k: &str| got.iter().find(|(n, _)| n == k).unwrap().1;
        assert_eq!(get("CapInh"), 0, "user {user}:\n{out}");
        assert_eq!(get("CapAmb"), 0, "user {user}:\n{out}");
        // It did reach the bounding set: the flag was not simply ignored.
        assert_ne!(
            get("CapBnd") & caps::mask(&["CAP_SYS_ADMIN"]),
            0,
            "user {user}:\n{out}"
        );
    }
    c.delete_force_ok();
}

#[test]
fn default_process_has_no_inheritable_or_ambient_caps() {
    let mut c = Container::new("caps_inh_amb");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    c.bundle
        .set_script("grep -E '^Cap(Inh|Amb)' /proc/self/status > /shared/fifo; exec sleep 1000");
    c.create_ok();
    c.start_ok();
    let want = ["CapInh:\t0000000000000000", "CapAmb:\t0000000000000000"];
    for w in want {
        assert_eq!(fifo.read_line(WAIT), w, "init");
    }
    let out = c.exec(&["grep", "-E", "^Cap(Inh|Amb)", "/proc/self/status"]);
    out.assert_success();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want, "exec");
    c.delete_force_ok();
}

/// Until `start`, the container's pid 1 is the runtime's own code (runc: `runc init`, husk: a
/// fork of husk). Whatever of it the container can reach through /proc/1 (runc's is dumpable
/// by then, husk's is not, but CAP_SYS_PTRACE gets past that) must lead to no host directory,
/// and it must hold no more capabilities than the container's process will.
fn created_init_probe(name: &str, extra_caps: &[&str]) {
    let mut c = Container::new(name);
    c.bundle.set_args(&["sleep", "1000"]);
    let mut want = vec!["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    want.extend_from_slice(extra_caps);
    for set in ["bounding", "effective", "permitted"] {
        c.bundle.config["process"]["capabilities"][set] = json!(want);
    }
    c.create_ok();
    let probe = format!(
        "for f in /proc/1/cwd /proc/1/root /proc/1/fd/*; do \
           if [ -d \"$f/\" ] && [ -e \"$f/{}{}/config.json\" ]; then echo \"HOST-REACHABLE $f\"; fi; \
         done; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/1/status",
        dotdots(),
        c.bundle.path().display().to_string().trim_start_matches('/')
    );
    let out = c.exec(&["sh", "-c", &probe]);
    out.assert_success();
    let want = caps::mask(&want);
    let line = |k: &str, v: u64| format!("{k}:\t{v:016x}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            line("CapInh", 0),
            line("CapPrm", want),
            line("CapEff", want),
            line("CapBnd", want),
            line("CapAmb", 0),
        ],
        "the created container's init:\n{out}"
    );
    c.delete_force_ok();
}

#[test]
fn created_init_holds_no_host_dirs_or_extra_caps() {
    created_init_probe("created_init", &[]);
}

#[test]
fn created_init_holds_no_host_dirs_with_cap_sys_ptrace() {
    created_init_probe("created_init_ptrace", &["CAP_SYS_PTRACE"]);
}

/// A private copy of the runtime binary, so that whether it is being executed (ETXTBSY)
/// depends only on this test, and a vulnerable runtime could only ever hurt the copy.
struct RuntimeCopy {
    _dir: TempDir,
    path: PathBuf,
}

impl RuntimeCopy {
    fn new() -> RuntimeCopy {
        let dir = TempDir::new("runtime-copy");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("runtime");
        std::fs::copy(runtime_binary(), &path).expect("copy the runtime binary");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        RuntimeCopy { _dir: dir, path }
    }

    /// `<copy> --root <c's root> args...`
    fn run(&self, c: &Container, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(c.rt.root()).args(args);
        c.rt.output(cmd)
    }

    fn sha256(&self) -> String {
        let out = Command::new("sha256sum")
            .arg(&self.path)
            .output()
            .expect("run sha256sum");
        assert!(out.status.success(), "sha256sum failed");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
}

/// CVE-2019-5736: a process in the container opens /proc/1/exe while pid 1 is still the
/// runtime's code (a created container), keeps the fd, and once no process executes the
/// runtime binary any more (no ETXTBSY) reopens it for writing to overwrite the host's runtime.
/// The probe really tries: it appends a byte through the fd, to a private copy of the runtime
/// binary. The pass condition is that no write lands and the copy is unchanged; reading the
/// runtime's code is no breach (runc 1.1 runs its init from a read-only bind mount of its
/// binary, husk from a sealed memfd copy when the container holds CAP_SYS_PTRACE; both read
/// the same).
fn runtime_binary_write_attempt(name: &str, extra_caps: &[&str]) {
    let copy = RuntimeCopy::new();
    let before = copy.sha256();
    let mut c = Container::new(name);
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    mkfifo(&shared.join("go"));
    for set in ["bounding", "effective", "permitted"] {
        let list = c.bundle.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap();
        list.extend(extra_caps.iter().map(|cap| json!(cap)));
    }
    c.bundle
        .set_script("echo started > /shared/fifo; exec sleep 1000");
    c.bundle.write_config();
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    copy.run(&c, &["create", "--bundle", &bundle, &c.id])
        .assert_success();
    c.observe();
    let attack = "if (exec 3</proc/1/exe) 2>/dev/null; then \
           exec 3</proc/1/exe; \
           echo \"opened $(readlink /proc/self/fd/3) $(busybox sha256sum /proc/self/fd/3 | cut -d' ' -f1)\" > /shared/fifo; \
           if (printf x >>/proc/self/fd/3) 2>/dev/null; then echo written; else echo not-written; fi > /shared/fifo; \
           read x < /shared/go; \
           if (printf x >>/proc/self/fd/3) 2>/dev/null; then echo written; else echo not-written; fi > /shared/fifo; \
         else echo denied > /shared/fifo; fi";
    copy.run(&c, &["exec", "--detach", &c.id, "sh", "-c", attack])
        .assert_success();
    let opened = fifo.read_line(WAIT);
    let mut report = vec![opened.clone()];
    if opened != "denied" {
        // While pid 1 still runs the runtime's code.
        report.push(format!("while created: {}", fifo.read_line(WAIT)));
    }
    copy.run(&c, &["start", &c.id]).assert_success();
    // Now the init has exec'd the container's program, and create, exec and start have
    // exited: no process executes the copy of the runtime any more.
    fifo.expect_line("started");
    if opened != "denied" {
        std::fs::write(shared.join("go"), "go\n").unwrap();
        report.push(format!("after start: {}", fifo.read_line(WAIT)));
    }
    let sha = copy.sha256();
    eprintln!(
        "runtime binary {} (sha256 {sha}); from the container: {report:?}; the runtime's \
         content {} readable through /proc/1/exe",
        copy.path.display(),
        if opened.ends_with(&sha) {
            "is"
        } else {
            "is not"
        }
    );
    assert!(
        !report.iter().any(|l| l.ends_with(": written")) && sha == before,
        "a container process wrote to the runtime binary {} through /proc/1/exe of a created \
         container: {report:?}",
        copy.path.display()
    );
    c.delete_force_ok();
}

/// CVE-2019-5736 through `exec`: the process that `exec` forks into the container runs the
/// runtime's code until its execve. The container holds CAP_SYS_PTRACE and catches that process
/// in the act: a seccomp NOTIFY rule on execve holds the exec'd process in its execve (still the
/// runtime's image) until the test's agent answers. Meanwhile the agent tells the container which
/// process is held, the container opens /proc/<that pid>/exe, and only then the execve goes on.
/// Once the exec is over (no process executes the runtime's binary any more), the container
/// tries to append to the file it opened.
#[test]
fn cve_2019_5736_runtime_binary_not_writable_through_exec() {
    let copy = RuntimeCopy::new();
    let before = copy.sha256();
    // The exec'd process's first execve: the host pid of the held thread goes out on `held`;
    // it is answered once `release` says so (or is dropped), at most after WAIT.
    let (held_tx, held) = mpsc::channel::<u32>();
    let (release, release_rx) = mpsc::channel::<()>();
    let mut ends = Some((held_tx, release_rx));
    let agent = Agent::start_with(move |state| {
        let continue_all: Handler = Box::new(|_, _| Reply::Continue);
        // The init's listener (its pid is the container's), and any beyond the exec's.
        if state["pid"] == state["state"]["pid"] {
            return Some(continue_all);
        }
        let Some((held_tx, release_rx)) = ends.take() else {
            return Some(continue_all);
        };
        Some(Box::new(move |n, req| {
            // A later notification is that execve again, restarted after a signal.
            if n == 0 && held_tx.send(req.pid).is_ok() {
                // Err: released, or the test has gone; either way the execve goes on.
                let _ = release_rx.recv_timeout(WAIT);
            }
            Reply::Continue
        }))
    });
    let mut c = Container::new("exe_exec_ptrace");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    let pid_fifo = Fifo::new(&shared.join("pid"));
    let go = Fifo::new(&shared.join("go"));
    for set in ["bounding", "effective", "permitted"] {
        let list = c.bundle.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap();
        list.push(json!("CAP_SYS_PTRACE"));
    }
    c.bundle.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "listenerPath": agent.path(),
        "syscalls": [{"names": ["execve", "execveat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    c.bundle.set_script(
        "echo ready > /shared/fifo; read t < /shared/pid; \
         if (exec 5</proc/$t/exe) 2>/dev/null; then \
           exec 5</proc/$t/exe; \
           echo \"opened $(readlink /proc/self/fd/5) $(busybox sha256sum /proc/self/fd/5 | cut -d' ' -f1)\" > /shared/fifo; \
         else echo \"denied $t\" > /shared/fifo; fi; \
         read x < /shared/go; \
         if (printf x >>/proc/self/fd/5) 2>/dev/null; then echo written; else echo not-written; fi > /shared/fifo; \
         exec sleep 1000",
    );
    c.bundle.write_config();
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    copy.run(&c, &["create", "--bundle", &bundle, &c.id])
        .assert_success();
    c.observe();
    copy.run(&c, &["start", &c.id]).assert_success();
    fifo.expect_line("ready");
    let (opened, exec) = std::thread::scope(|s| {
        // The exec'd program tells when its execve is over.
        let exec = s.spawn(|| {
            copy.run(
                &c,
                &[
                    "exec",
                    "--detach",
                    &c.id,
                    "sh",
                    "-c",
                    "echo exec-done > /shared/fifo",
                ],
            )
        });
        // Moved in: a panic here drops it and lets the held execve (and the thread) go on.
        let release = release;
        let host_pid = held
            .recv_timeout(WAIT)
            .expect("the exec'd process's execve did not reach the agent");
        pid_fifo.write_line(&container_pid(host_pid).to_string());
        let opened = fifo.read_line(WAIT);
        drop(release);
        fifo.expect_line("exec-done");
        (opened, exec.join().unwrap())
    });
    exec.assert_success();
    // The exec'd process has exec'd and the exec command has exited: no process executes the
    // copy of the runtime any more.
    go.write_line("go");
    let after = fifo.read_line(WAIT);
    let sha = copy.sha256();
    eprintln!("from the container: {opened:?}, then {after:?}");
    // Held in its execve, the process still runs the runtime's code (husk's sealed copy or
    // runc's read-only bind mount of its binary read the same).
    assert!(
        opened.starts_with("opened ") && opened.ends_with(&before),
        "the container did not get hold of the exec'd process's /proc/<pid>/exe while it ran \
         the runtime (sha256 {before}): {opened:?}"
    );
    assert!(
        after == "not-written" && sha == before,
        "a container process wrote to the runtime binary {} through /proc/<pid>/exe of an \
         exec'd process: {opened:?}, then {after:?}; its sha256 was {before}, is {sha}",
        copy.path.display()
    );
    c.delete_force_ok();
}

/// The pid in its innermost pid namespace of the host's thread `host_pid`, from NSpid.
fn container_pid(host_pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{host_pid}/status: {e}"));
    caps::status_field(&status, "NSpid")
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no NSpid in /proc/{host_pid}/status:\n{status}"))
}

#[test]
fn cve_2019_5736_runtime_binary_not_writable_from_container() {
    runtime_binary_write_attempt("exe_default_caps", &[]);
}

#[test]
fn cve_2019_5736_runtime_binary_not_writable_with_cap_sys_ptrace() {
    // With CAP_SYS_PTRACE (docker --cap-add SYS_PTRACE) a container process may open
    // /proc/1/exe of a non-dumpable pid 1 too: being non-dumpable is no defence then.
    runtime_binary_write_attempt("exe_cap_sys_ptrace", &["CAP_SYS_PTRACE"]);
}

/// What a crafted rootfs points at: a scratch directory on the host holding only `canary`
/// files (content "canary\n"). It must stay exactly so, and unmounted.
struct Scratch {
    dir: TempDir,
    canaries: Vec<&'static str>,
}

impl Scratch {
    fn new(prefix: &str, canaries: &[&'static str]) -> Scratch {
        let dir = TempDir::new(prefix);
        for f in canaries {
            std::fs::write(dir.path().join(f), "canary\n").unwrap();
        }
        Scratch {
            dir,
            canaries: canaries.to_vec(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    #[track_caller]
    fn assert_untouched(&self, when: &str) {
        let mut entries: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        let mut want: Vec<String> = self.canaries.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            entries,
            want,
            "{when}: the runtime changed host directory {}",
            self.path().display()
        );
        for f in &self.canaries {
            let p = self.path().join(f);
            let meta = std::fs::symlink_metadata(&p).unwrap();
            assert!(
                meta.is_file() && std::fs::read_to_string(&p).unwrap() == "canary\n",
                "{when}: the runtime replaced or changed host file {}",
                p.display()
            );
        }
        let mounts = mounts_mentioning(self.path());
        assert!(
            mounts.is_empty(),
            "{when}: host mounts on {}: {mounts:#?}",
            self.path().display()
        );
    }
}

/// Replaces rootfs/<name> with a symlink to the host directory `target`, an absolute path.
/// Inside the rootfs the same path exists as an empty directory: a runtime that resolves the
/// symlink within the rootfs (as it must) has somewhere to mount; one that follows it on the
/// host ends up in `target`.
fn symlink_out(c: &Container, name: &str, target: &Path) {
    let p = c.bundle.rootfs().join(name);
    if p.is_dir() {
        std::fs::remove_dir(&p).unwrap();
    }
    symlink(target, &p).unwrap();
    let inside = c
        .bundle
        .rootfs()
        .join(target.strip_prefix("/").expect("absolute target"));
    std::fs::create_dir_all(inside).unwrap();
}

/// create + start a container whose script writes to its stdout file, checking `scratch` dirs
/// in the created state; returns the container's output. A runtime may instead refuse the
/// bundle, with one line naming one of `refusal` (the offending path): then this returns None,
/// saying so, and the caller skips its checks of the output. Any other failure fails the test.
#[track_caller]
fn run_checking_scratch(
    c: &mut Container,
    scratch: &[&Scratch],
    refusal: &[&str],
) -> Option<String> {
    let out = c.create();
    for s in scratch {
        s.assert_untouched("after create");
    }
    if !out.success() {
        assert_eq!(out.code(), 1, "create failed, but not as a refusal:\n{out}");
        assert_one_line_naming(&out.stderr, refusal);
        c.assert_clean();
        eprintln!(
            "the runtime refused the bundle (allowed; the container's output is not checked): {}",
            out.stderr.trim_end()
        );
        return None;
    }
    c.start_ok();
    c.wait_exited();
    let stdout = out.stdout_now();
    c.delete_ok();
    for s in scratch {
        s.assert_untouched("after delete");
    }
    Some(stdout)
}

#[test]
fn rootfs_dev_symlink_to_host_dir() {
    // rootfs/dev -> /tmp/<host scratch>: /dev's tmpfs, pts, shm, mqueue, the device nodes and
    // the /dev symlinks must land inside the rootfs (or create must refuse), never in the host
    // directory; and a host file there named ptmx must survive (a vulnerable runtime removes
    // <rootfs>/dev/ptmx to replace it with a symlink).
    if is_runc_1_1() {
        eprintln!(
            "skipped: runc 1.1.x is vulnerable to CVE-2026-41579 (GHSA-xjvp-4fhw-gc47, fixed in \
             runc 1.3.6): with rootfs/dev a symlink to a host directory it creates the fd, \
             stdin, stdout, stderr and ptmx symlinks there and removes a host file named ptmx"
        );
        return;
    }
    let scratch = Scratch::new("scratch-dev", &["ptmx"]);
    let mut c = Container::new("dev_symlink");
    symlink_out(&c, "dev", scratch.path());
    c.bundle
        .set_script("readlink -f /dev; stat -c '%F %t:%T' /dev/null; cat /proc/self/mountinfo");
    // A refusal must name the container's /dev (e.g. "rootfs/dev is a symlink ...").
    if let Some(out) = run_checking_scratch(&mut c, &[&scratch], &["/dev"]) {
        // Where the container's /dev leads, the config's mounts must be.
        let mut lines = out.lines();
        let dev = lines.next().unwrap_or("");
        assert_eq!(
            lines.next(),
            Some("character special file 1:3"),
            "the container's /dev/null:\n{out}"
        );
        let m = mountinfo::parse(&out);
        let want = [
            ("", "tmpfs"),
            ("/pts", "devpts"),
            ("/shm", "tmpfs"),
            ("/mqueue", "mqueue"),
        ];
        for (sub, fstype) in want {
            let at = format!("{dev}{sub}");
            assert!(
                m.iter().any(|x| x.mount_point == at && x.fstype == fstype),
                "no {fstype} at {at}, where the container's /dev{sub} leads:\n{out}"
            );
        }
    }
}

#[test]
fn mount_destination_symlink_to_host_dir() {
    // rootfs/mnt -> /tmp/<scratch a>, a tmpfs at /mnt; rootfs/mnt2 -> /tmp/<scratch b>, a
    // tmpfs at /mnt2/sub/dir (a runtime that follows the symlink on the host creates sub/dir
    // in the host's scratch b); a bind mount at /mnt3 -> /tmp/<scratch c>.
    let (a, b, d) = (
        Scratch::new("scratch-a", &["file"]),
        Scratch::new("scratch-b", &[]),
        Scratch::new("scratch-c", &["payload"]),
    );
    let src = TempDir::new("bind-src");
    std::fs::write(src.path().join("payload"), "payload\n").unwrap();
    let mut c = Container::new("dest_symlink");
    symlink_out(&c, "mnt", a.path());
    symlink_out(&c, "mnt2", b.path());
    symlink_out(&c, "mnt3", d.path());
    c.bundle.add_mount(json!({
        "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    c.bundle.add_mount(json!({
        "destination": "/mnt2/sub/dir", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    c.bundle.add_mount(json!({
        "destination": "/mnt3", "type": "bind", "source": src.path(), "options": ["rbind", "ro"]
    }));
    c.bundle.set_script(
        "stat -f -c %T /mnt/. /mnt2/sub/dir/.; cat /mnt3/payload; \
         echo x > /mnt/inside && echo wrote-mnt",
    );
    if let Some(out) = run_checking_scratch(&mut c, &[&a, &b, &d], &["/mnt"]) {
        assert_eq!(
            out, "tmpfs\ntmpfs\npayload\nwrote-mnt\n",
            "the mounts did not land where the container's paths lead"
        );
    }
    assert_eq!(
        std::fs::read_dir(src.path()).unwrap().count(),
        1,
        "bind source changed"
    );
}

#[test]
fn cve_2025_31133_masked_path_with_dev_null_symlink() {
    // The container's /dev comes from a directory where `null` is a symlink to a canary file
    // (shared read-write with the container at the same path, so the symlink resolves to it
    // on the host and inside). Masking /etc/group "with /dev/null" must not bind the canary
    // over it: the runtime must refuse, or mask with the real null device.
    if is_runc_1_1() {
        eprintln!(
            "skipped: runc 1.1.x is vulnerable to CVE-2025-31133 (fixed in runc 1.2.8): it \
             bind-mounts whatever /dev/null resolves to over masked paths, here a host file \
             the container then overwrites through the masked path"
        );
        return;
    }
    let canary_dir = TempDir::new("canary");
    std::fs::set_permissions(canary_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let canary = canary_dir.path().join("canary");
    std::fs::write(&canary, "canary\n").unwrap();
    let dev = TempDir::new("fake-dev");
    std::fs::set_permissions(dev.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink(&canary, dev.path().join("null")).unwrap();

    let mut c = Container::new("mask_null_symlink");
    let mounts = c.bundle.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    c.bundle.add_mount(json!({
        "destination": "/dev", "type": "bind", "source": dev.path(), "options": ["rbind", "rw"]
    }));
    c.bundle.add_mount(json!({
        "destination": canary_dir.path(), "type": "bind", "source": canary_dir.path(),
        "options": ["rbind", "rw"]
    }));
    c.bundle.config["linux"]["maskedPaths"] = json!(["/etc/group"]);
    // Writes only to the masked path, never to the canary's own path.
    c.bundle
        .set_script("stat -c '%F %t:%T' /etc/group; echo PWNED > /etc/group; echo done");
    let out = c.run();
    let mounted: Vec<String> = mounts_mentioning(canary_dir.path())
        .into_iter()
        .chain(mounts_mentioning(dev.path()))
        .collect();
    assert!(mounted.is_empty(), "host mounts left: {mounted:#?}");
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        "canary\n",
        "the container wrote the host's canary through a masked path:\n{out}"
    );
    if out.success() {
        assert_eq!(
            out.stdout, "character special file 1:3\ndone\n",
            "/etc/group was not masked with the null device:\n{out}"
        );
    } else {
        eprintln!("the runtime refused the fake /dev/null:\n{out}");
    }
    c.assert_clean();
}

#[test]
fn host_dev_null_keeps_owner_and_mode() {
    // The container's stdin is the host's /dev/null (the harness gives every runtime command
    // stdin from /dev/null). A runtime that chowns stdio to process.user must leave it alone.
    let before = std::fs::metadata("/dev/null").unwrap();
    for (name, userns) in [("null_owner", false), ("null_owner_userns", true)] {
        let mut c = Container::new(name);
        c.bundle.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        if userns {
            c.bundle.add_user_namespace(100000, 100000);
        }
        c.bundle.set_script("cat > /dev/null; id -u");
        assert_eq!(c.run_ok(), "1000\n");
        c.assert_clean();
        let after = std::fs::metadata("/dev/null").unwrap();
        assert_eq!(
            (after.uid(), after.gid(), after.mode()),
            (before.uid(), before.gid(), before.mode()),
            "{name}: the host's /dev/null changed"
        );
    }
}

/// A host directory made a shared tmpfs mount, so that a mount a runtime makes on it from a
/// container's mount namespace (whose copy of it stays a peer when the rootfs propagation is
/// "shared") shows up on the host. Unmounted on drop.
struct SharedMount {
    dir: TempDir,
}

impl SharedMount {
    fn new(prefix: &str) -> SharedMount {
        let dir = TempDir::new(prefix);
        let path = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
        // SAFETY: plain mount(2) calls with valid C strings.
        unsafe {
            let rc = libc::mount(
                c"tmpfs".as_ptr(),
                path.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            );
            assert_eq!(rc, 0, "mount tmpfs on {}", dir.path().display());
            let rc = libc::mount(
                std::ptr::null(),
                path.as_ptr(),
                std::ptr::null(),
                libc::MS_SHARED,
                std::ptr::null(),
            );
            assert_eq!(rc, 0, "make {} shared", dir.path().display());
        }
        SharedMount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let path = std::ffi::CString::new(self.path().to_str().unwrap()).unwrap();
        // SAFETY: umount2 with a valid C string. Detached, so that a leftover mount a
        // vulnerable runtime put on top of it goes too; a failure leaves a test mount only.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

/// CVE-2021-30465 and CVE-2024-45310: the container's volume holds a path that a process of
/// the attacker's (here a thread of the test) keeps swapping between a directory and a symlink
/// to a host directory, while the runtime creates and mounts on a destination below it. A
/// runtime that resolves the destination once and then mounts (or makes the missing directory)
/// by re-walking the path string lands on the host, now and then; husk resolves every step
/// inside the rootfs through one fd. Passes if, over many creates, the host directory never
/// gains an entry (45310) or a mount (30465). runc 1.1.5 resists 30465 (it refuses about a third
/// of the creates: "possibly malicious path detected") but not 45310: in some runs it made
/// `new` in the host directory, so the test is skipped on runc 1.1.
#[test]
fn cve_2021_30465_and_2024_45310_volume_symlink_race() {
    if is_runc_1_1() {
        eprintln!(
            "skipped: runc 1.1.5 is vulnerable to CVE-2024-45310 (fixed in runc 1.1.14): seen \
             making directories on the host through this race"
        );
        return;
    }
    let host = SharedMount::new("race-target");
    std::fs::create_dir(host.path().join("m")).unwrap();
    let mut c = Container::new("volume_race");
    let vol = c.bundle.shared_dir();
    std::fs::create_dir_all(vol.join("x/m")).unwrap();
    symlink(host.path(), vol.join("swap")).unwrap();
    c.bundle.config["linux"]["rootfsPropagation"] = json!("shared");
    // An existing destination (m, the 30465 case) and a missing one (new, the 45310 case).
    for dest in ["/shared/x/m", "/shared/x/new/dir"] {
        c.bundle.add_mount(json!({
            "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]
        }));
    }
    c.bundle.set_args(&["true"]);
    c.bundle.write_config();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (x, swap) = (
        std::ffi::CString::new(vol.join("x").to_str().unwrap()).unwrap(),
        std::ffi::CString::new(vol.join("swap").to_str().unwrap()).unwrap(),
    );
    let mut swaps = 0u64;
    let failures = std::thread::scope(|s| {
        let racer = s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: renameat2 with valid C strings; exchanges the directory and the
                // symlink atomically.
                let rc = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        x.as_ptr(),
                        libc::AT_FDCWD,
                        swap.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
                swaps += 1;
            }
        });
        let mut failures = 0;
        for _ in 0..200 {
            let out = c.rt.create(c.bundle.path(), &c.id);
            if !out.success() {
                // A runtime may refuse a path it sees change; that is no breach.
                failures += 1;
                if failures == 1 {
                    eprintln!("first refusal: {}", out.stderr.trim());
                }
                assert_eq!(out.stderr.lines().count(), 1, "one error line: {out}");
            }
            c.rt.delete_force(&c.id).assert_success();
            let entries: Vec<_> = std::fs::read_dir(host.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            let mounts = mounts_mentioning(host.path());
            if entries != [std::ffi::OsString::from("m")] || mounts.len() != 1 {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!(
                    "the runtime reached the host directory {} through the volume: entries \
                     {entries:?}, mounts {mounts:#?}",
                    host.path().display()
                );
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        racer.join().unwrap();
        failures
    });
    eprintln!("200 creates against {swaps} swaps; {failures} creates refused");
    // A runtime that refused every create would pass without having mounted anything.
    assert!(
        failures < 200,
        "every create was refused; the race was never run"
    );
    c.assert_clean();
}

/// Not an attack, the feature the race test above relies on: with rootfsPropagation "shared", a
/// mount made in the container under a volume bound from a shared host mount reaches the host.
#[test]
fn rootfs_propagation_shared_reaches_the_host() {
    let host = SharedMount::new("shared-volume");
    std::fs::create_dir(host.path().join("sub")).unwrap();
    let mut c = Container::new("propagation_shared");
    c.bundle.config["linux"]["rootfsPropagation"] = json!("shared");
    c.bundle.add_mount(json!({
        "destination": "/vol", "type": "bind", "source": host.path(), "options": ["rbind"]
    }));
    for set in ["bounding", "effective", "permitted"] {
        c.bundle.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    c.bundle
        .set_args(&["mount", "-t", "tmpfs", "none", "/vol/sub"]);
    assert_eq!(c.run_ok(), "");
    let sub = host.path().join("sub");
    assert!(
        !mounts_mentioning(&sub).is_empty(),
        "the container's mount on /vol/sub did not reach the host's {}",
        sub.display()
    );
    c.assert_clean();
}

/// CVE-2025-52881: a bundle mounts a host directory over /proc/sys and asks for a sysctl. A
/// runtime that writes the sysctl by path writes the host's file instead of the kernel's
/// setting. Passes if the host file is untouched: the runtime refuses the mount (runc and husk:
/// nothing may be mounted inside /proc but what lxcfs emulates) or the write reaches the kernel.
#[test]
fn cve_2025_52881_sysctl_write_redirected_by_a_mount_over_proc_sys() {
    let host = TempDir::new("fake-proc-sys");
    std::fs::create_dir(host.path().join("kernel")).unwrap();
    let canary = host.path().join("kernel/domainname");
    std::fs::write(&canary, "canary\n").unwrap();
    let mut c = Container::new("sysctl_redirect");
    c.bundle.add_mount(json!({
        "destination": "/proc/sys", "type": "bind", "source": host.path(), "options": ["rbind"]
    }));
    c.bundle.config["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
    c.bundle.set_args(&["cat", "/proc/sys/kernel/domainname"]);
    let out = c.run();
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        "canary\n",
        "the runtime wrote the sysctl into the host file {}: {out}",
        canary.display()
    );
    if out.success() {
        assert_eq!(out.stdout, "pwned\n", "the sysctl did not reach the kernel");
    } else {
        assert!(
            out.stderr.contains("/proc"),
            "the refusal should name the path: {out}"
        );
    }
    c.assert_clean();
}

/// CVE-2019-16884: a write the runtime makes for the container's process must hit the real
/// procfs, not a fake /proc the bundle brings: here /proc is a volume (a bind of a host
/// directory) holding a regular file at self/oom_score_adj. Passes if the fake file is untouched,
/// and the runtime refused the bundle (runc and husk do: only a procfs may be mounted on /proc)
/// or the process's real oom_score_adj is the one asked for.
#[test]
fn cve_2019_16884_process_settings_hit_the_real_procfs() {
    let host = TempDir::new("fake-proc");
    std::fs::create_dir(host.path().join("self")).unwrap();
    let fake = host.path().join("self/oom_score_adj");
    std::fs::write(&fake, "fake\n").unwrap();
    let mut c = Container::new("fake_proc");
    for m in c.bundle.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/proc" {
            *m = json!({
                "destination": "/proc", "type": "bind", "source": host.path(), "options": ["rbind"]
            });
        }
    }
    c.bundle.config["process"]["oomScoreAdj"] = json!(500);
    c.bundle.set_args(&["sleep", "1000"]);
    let out = c.create();
    assert_eq!(
        std::fs::read_to_string(&fake).unwrap(),
        "fake\n",
        "the runtime wrote into the fake /proc: {out}"
    );
    if out.success() {
        let real = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", c.pid())).unwrap();
        assert_eq!(real.trim(), "500", "the process's oom_score_adj");
        c.delete_force_ok();
    } else {
        assert!(
            out.stderr.contains("/proc"),
            "the refusal should name the path: {out}"
        );
        c.assert_clean();
    }
}

/// CVE-2025-52565: the container's /dev comes from a volume whose `console` is a symlink to
/// another file of the container's. A runtime that binds the terminal onto /dev/console by path
/// follows the link and mounts the pty over that file instead. Passes if the runtime refuses, or
/// no pty mount lands anywhere but /dev/console and /dev/pts.
#[test]
fn cve_2025_52565_dev_console_symlink() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.5 follows a /dev/console symlink (fixed in runc 1.2.8)");
        return;
    }
    let mut c = Container::new("console_symlink");
    let dev = c.bundle.path().join("dev-volume");
    std::fs::create_dir(&dev).unwrap();
    symlink("/shared/target", dev.join("console")).unwrap();
    symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    // Masking needs a /dev/null.
    let st = Command::new("mknod")
        .arg(dev.join("null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success(), "mknod null");
    let shared = c.bundle.shared_dir();
    std::fs::write(shared.join("target"), "target\n").unwrap();
    for m in c.bundle.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            *m =
                json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]});
        }
    }
    c.bundle.config["process"]["terminal"] = json!(true);
    c.bundle
        .set_script("grep devpts /proc/self/mountinfo; echo the-end");
    let sock = spec_tests::console::ConsoleSocket::new();
    let out = c.create_with_console(&sock);
    if !out.success() {
        eprintln!("refused: {}", out.stderr.trim());
        assert_eq!(out.stderr.lines().count(), 1, "one error line: {out}");
        assert!(out.stderr.contains("/dev/console"), "name the path: {out}");
        c.assert_clean();
        return;
    }
    let master = sock.receive(WAIT);
    c.start_ok();
    let got = spec_tests::console::read_until(&master, "the-end", WAIT);
    let stray: Vec<&str> = got
        .lines()
        .filter(|l| l.contains("devpts"))
        .filter(|l| {
            let mp = l.split(' ').nth(4).unwrap_or("");
            mp != "/dev/pts" && mp != "/dev/console"
        })
        .collect();
    assert!(
        stray.is_empty(),
        "the pty was mounted elsewhere: {stray:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("target")).unwrap(),
        "target\n"
    );
    c.wait_exited();
    c.delete_ok();
}
