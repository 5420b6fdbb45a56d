//! husk-init beside Debian's tini-static (0.19, the reference): every case runs against both.
//! Most run the init as PID 1 of a real container made by the workspace's husk (or
//! $RUNTIME), bind-mounted read-only at /sbin/docker-init as Docker mounts docker-init; the
//! subreaper cases run it on the host as a child of the test. Synchronised through fifos and
//! pidfds, every wait bounded. Run as root.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;
use spec_tests::console::{read_until, ConsoleSocket};
use spec_tests::proc::{self, pidfd_open};
use spec_tests::{Container, Fifo, WAIT};

#[derive(Clone, Copy)]
enum Init {
    Husk,
    Tini,
}

impl Init {
    fn host_path(self) -> &'static str {
        match self {
            Init::Husk => env!("CARGO_BIN_EXE_husk-init"),
            Init::Tini => {
                let p = "/usr/bin/tini-static";
                assert!(
                    Path::new(p).exists(),
                    "{p} missing: install Debian's tini (scripts/install-deps.sh)"
                );
                p
            }
        }
    }
}

/// Where Docker mounts its init.
const IN_CONTAINER: &str = "/sbin/docker-init";

/// Two tests per case, `<case>::husk_init` and `<case>::tini`.
macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn husk_init() {
                super::$case(super::Init::Husk)
            }
            #[test]
            fn tini() {
                super::$case(super::Init::Tini)
            }
        }
    )*};
}

both!(
    orphans_are_reaped,
    term_reaches_child_exit_code_is_childs,
    term_kills_child_128_plus_signal,
    forwards_signals_but_not_tty_stops,
    group_flag_signals_whole_group,
    group_env_signals_whole_group,
    without_group_flag_only_child,
    remap_exit_code,
    killed_child_128_plus_signal,
    child_has_own_group_without_tty,
    child_gets_tty_foreground,
    subreaper_flag_off_pid_1,
    subreaper_env_off_pid_1,
    warns_off_pid_1_without_subreaper,
    no_program_is_a_usage_error,
    exec_failures,
    parent_death_signal,
);

/// A container whose process is `init INIT_ARGS -- sh -c SCRIPT`, with /shared from the host.
fn container(init: Init, name: &str, init_args: &[&str], script: &str) -> (Container, PathBuf) {
    // Both inits' cases may run at once in one process (cargo test): the ids must differ.
    let tag = match init {
        Init::Husk => "hi",
        Init::Tini => "tini",
    };
    let mut c = Container::new(&format!("{name}-{tag}"));
    let shared = c.bundle.shared_dir();
    let sbin = c.bundle.rootfs().join("sbin");
    fs::create_dir_all(&sbin).expect("mkdir sbin");
    fs::write(sbin.join("docker-init"), "").expect("mount point for the init");
    c.bundle.add_mount(json!({
        "destination": IN_CONTAINER,
        "type": "bind",
        "source": init.host_path(),
        "options": ["rbind", "ro"]
    }));
    let mut args = vec![IN_CONTAINER];
    args.extend_from_slice(init_args);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    c.bundle.set_args(&args);
    (c, shared)
}

fn write_script(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    fs::write(&p, text).expect("write script");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// Reaps the container's init (our child: we are a subreaper and the runtime has exited) and
/// returns its exit code. Not `proc::reap`: while it waits it reaps the zombies of nested pid
/// namespaces, the init among them, and its status would be lost. Nothing of the container
/// is reparented to us here (its init reaps), so a plain wait on the pidfd is enough.
#[track_caller]
fn init_exit_code(pid: i32) -> i32 {
    let fd = pidfd_open(pid).expect("the container init is unreaped");
    assert!(
        proc::poll_readable(&fd, WAIT),
        "container init {pid} still running after {WAIT:?}"
    );
    let mut s = 0;
    // SAFETY: waitpid on a specific pid with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut s, libc::WNOHANG) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(s), "init did not exit normally: {s:#x}");
    libc::WEXITSTATUS(s)
}

/// `kill ID SIG` for a signal after which the init may exit. Not `Container::kill`: while
/// the harness waits for a runtime command it reaps the zombies of nested pid namespaces, and
/// would take the init's exit status from [`init_exit_code`].
#[track_caller]
fn kill_last(c: &Container, sig: &str) {
    let mut cmd = c.rt.command(&["kill", &c.id, sig]);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the runtime");
    assert_eq!(host_exit_code(child), 0, "kill {sig}");
}

/// Waits until the process of `pidfd` has been reaped (by whoever is its parent): a pidfd
/// reports POLLHUP, which nobody can ask for, only when the process is gone, so polling for no
/// event sleeps until then. Panics after WAIT: it was left a zombie.
#[track_caller]
fn wait_reaped(pidfd: &OwnedFd, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
        if r > 0 && p.revents & libc::POLLHUP != 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reaped within {WAIT:?} (state {:?})",
            proc::stat(proc_pid_of(pidfd)).map(|s| s.state)
        );
    }
}

/// The pid a pidfd refers to, from its fdinfo, for messages.
fn proc_pid_of(pidfd: &OwnedFd) -> i32 {
    fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(-1)
}

/// Host pids of the processes in `init_pid`'s pid namespace whose command line is `argv`.
fn find_in_container(init_pid: i32, argv: &[&str]) -> Vec<i32> {
    let ns = proc::ns_link(&init_pid.to_string(), "pid");
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    proc::pids_in_pid_ns(&ns)
        .into_iter()
        .filter(|p| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

fn orphans_are_reaped(init: Init) {
    // Each orphan's parent shell exits at once, so the orphan is reparented to PID 1. Then
    // they exit when the test says so, and the script counts the zombies in its /proc.
    let script = "for i in 1 2 3; do sh -c 'sh /shared/orphan.sh &'; done
        echo ready > /shared/out
        read x < /shared/go
        z=0
        for f in /proc/[0-9]*/stat; do
            read -r s < $f
            case $s in *') Z '*) z=$((z+1));; esac
        done
        echo zombies=$z > /shared/out
        exit 7";
    let (mut c, shared) = container(init, "orphans", &[], script);
    write_script(
        &shared,
        "orphan.sh",
        "echo up > /shared/up; read x < /shared/release\n",
    );
    let mut out = Fifo::new(&shared.join("out"));
    let mut up = Fifo::new(&shared.join("up"));
    let go = Fifo::new(&shared.join("go"));
    let release = Fifo::new(&shared.join("release"));
    let init_pid = c.run_detached_ok();
    out.expect_line("ready");
    // Each orphan has run its script (exec'd, so its command line is the script's).
    for _ in 0..3 {
        up.expect_line("up");
    }
    let orphans = find_in_container(init_pid, &["sh", "/shared/orphan.sh"]);
    assert_eq!(orphans.len(), 3, "orphans found: {orphans:?}");
    let fds: Vec<OwnedFd> = orphans
        .iter()
        .map(|&p| {
            assert_eq!(
                proc::stat(p).expect("orphan alive").ppid,
                init_pid,
                "orphan {p} was not reparented to the container's init"
            );
            pidfd_open(p).expect("orphan alive")
        })
        .collect();
    for _ in &orphans {
        release.write_line("x");
    }
    for fd in &fds {
        wait_reaped(fd, "an orphan that exited");
    }
    go.write_line("go");
    out.expect_line("zombies=0");
    assert_eq!(init_exit_code(init_pid), 7);
    c.delete_ok();
}

fn term_reaches_child_exit_code_is_childs(init: Init) {
    // The background sleep outlives the shell: the init must exit all the same.
    let script = "trap 'exit 42' TERM; echo ready > /shared/out; sleep 1000 & wait";
    let (mut c, shared) = container(init, "term-trap", &[], script);
    let mut out = Fifo::new(&shared.join("out"));
    let pid = c.run_detached_ok();
    out.expect_line("ready");
    kill_last(&c, "TERM");
    assert_eq!(init_exit_code(pid), 42);
    c.delete_ok();
}

fn term_kills_child_128_plus_signal(init: Init) {
    let script = "echo ready > /shared/out; exec sleep 1000";
    let (mut c, shared) = container(init, "term-dfl", &[], script);
    let mut out = Fifo::new(&shared.join("out"));
    let pid = c.run_detached_ok();
    out.expect_line("ready");
    kill_last(&c, "TERM");
    assert_eq!(init_exit_code(pid), 128 + libc::SIGTERM);
    c.delete_ok();
}

fn forwards_signals_but_not_tty_stops(init: Init) {
    // The child names each signal it traps; SIGTTIN is one the init ignores itself.
    let script = "for s in HUP USR1 USR2 WINCH TTIN 40; do trap \"echo $s > /shared/out\" $s; done
        sleep 1000 & s=$!
        echo ready > /shared/out
        while :; do wait $s; done";
    let (mut c, shared) = container(init, "forward", &[], script);
    let mut out = Fifo::new(&shared.join("out"));
    let pid = c.run_detached_ok();
    out.expect_line("ready");
    c.kill("TTIN").assert_success();
    // One at a time: the init takes pending signals lowest number first, and the shell runs
    // its traps in the same order.
    for sig in ["HUP", "USR1", "USR2", "WINCH", "40"] {
        c.kill(sig).assert_success();
        out.expect_line(sig);
    }
    kill_last(&c, "TERM");
    assert_eq!(init_exit_code(pid), 128 + libc::SIGTERM);
    c.delete_ok();
}

/// The child starts a member of its process group; TERM goes to the init. The member says
/// which signal reached it first: TERM (from the init, with -g) or USR1 (sent by the child
/// once the test has seen the child's TERM).
fn group_case(init: Init, group: bool) {
    group_case_with(init, group, if group { &["-g"] } else { &[] }, None);
}

fn group_case_with(init: Init, group: bool, args: &[&str], env: Option<&str>) {
    let script = "trap 'echo term > /shared/out; read x < /shared/go; kill -USR1 $m 2>/dev/null; wait $m; exit 42' TERM
        sh /shared/member.sh & m=$!
        echo ready > /shared/out
        sleep 1000 & wait";
    let (mut c, shared) = container(init, "group", args, script);
    if let Some(var) = env {
        c.bundle.config["process"]["env"]
            .as_array_mut()
            .expect("env is an array")
            .push(json!(var));
    }
    write_script(
        &shared,
        "member.sh",
        "trap 'echo term > /shared/member; exit 0' TERM
         trap 'echo usr1 > /shared/member; exit 0' USR1
         echo ready > /shared/member
         sleep 1000 & wait\n",
    );
    let mut out = Fifo::new(&shared.join("out"));
    let mut member = Fifo::new(&shared.join("member"));
    let go = Fifo::new(&shared.join("go"));
    let pid = c.run_detached_ok();
    out.expect_line("ready");
    member.expect_line("ready");
    c.kill("TERM").assert_success();
    out.expect_line("term");
    if group {
        member.expect_line("term");
        go.write_line("go");
    } else {
        go.write_line("go");
        member.expect_line("usr1");
    }
    assert_eq!(init_exit_code(pid), 42);
    c.delete_ok();
}

fn group_flag_signals_whole_group(init: Init) {
    group_case(init, true);
}

fn group_env_signals_whole_group(init: Init) {
    // Set at all counts, even empty.
    group_case_with(init, true, &[], Some("TINI_KILL_PROCESS_GROUP="));
}

fn without_group_flag_only_child(init: Init) {
    group_case(init, false);
}

/// Foreground `run` of `init ARGS -- sh -c SCRIPT`: the runtime exits with the container's code.
fn run_code(init: Init, name: &str, args: &[&str], script: &str) -> i32 {
    let (mut c, _) = container(init, name, args, script);
    let out = c.run();
    c.assert_clean();
    assert!(!out.stderr.contains("FATAL"), "the init failed:\n{out}");
    out.code()
}

fn remap_exit_code(init: Init) {
    assert_eq!(run_code(init, "remap3", &["-e", "3"], "exit 3"), 0);
    assert_eq!(
        run_code(init, "remap4", &["-e", "3", "-e", "5"], "exit 4"),
        4
    );
    // The remap applies to 128+signal as well.
    assert_eq!(run_code(init, "remap143", &["-e", "143"], "kill $$"), 0);
}

fn killed_child_128_plus_signal(init: Init) {
    assert_eq!(
        run_code(init, "killed", &[], "kill -KILL $$"),
        128 + libc::SIGKILL
    );
}

/// `pid pgrp tpgid` of the child shell, from its /proc/<pid>/stat.
const SHOW_GROUP: &str = "set -- $(cat /proc/$$/stat); echo \"ids $1 $5 $8 end\"";

/// (pid, pgrp, tpgid) from the output of [`SHOW_GROUP`].
#[track_caller]
fn ids(text: &str) -> (i32, i32, i32) {
    let line = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("ids "))
        .unwrap_or_else(|| panic!("no ids line in {text:?}"));
    let n: Vec<i32> = line
        .split_whitespace()
        .take(3)
        .map(|w| w.parse().unwrap_or_else(|_| panic!("{line:?}")))
        .collect();
    (n[0], n[1], n[2])
}

fn child_has_own_group_without_tty(init: Init) {
    let (mut c, _) = container(init, "pgrp", &[], SHOW_GROUP);
    let (pid, pgrp, tpgid) = ids(&c.run_ok());
    // The child leads its own group, and there is no terminal.
    assert!(
        pid > 1 && pgrp == pid && tpgid == -1,
        "{pid} {pgrp} {tpgid}"
    );
    c.assert_clean();
}

fn child_gets_tty_foreground(init: Init) {
    // Waits for the test: the init must not exit while the harness waits for `start`.
    let script = format!("{SHOW_GROUP}; read x < /shared/go");
    let (mut c, shared) = container(init, "tty", &[], &script);
    let go = Fifo::new(&shared.join("go"));
    c.bundle.config["process"]["terminal"] = json!(true);
    let sock = ConsoleSocket::new();
    c.create_with_console(&sock).assert_success();
    let master = sock.receive(WAIT);
    c.start_ok();
    let (pid, pgrp, tpgid) = ids(&read_until(&master, " end", WAIT));
    // The child leads its own group, which has the tty's foreground.
    assert!(
        pid > 1 && pgrp == pid && tpgid == pid,
        "{pid} {pgrp} {tpgid}"
    );
    go.write_line("go");
    assert_eq!(init_exit_code(c.pid()), 0);
    c.delete_ok();
}

/// The init run on the host as our child, with stdout and stderr in files of `dir`.
fn spawn_on_host(
    init: Init,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Child {
    let mut cmd = Command::new(init.host_path());
    cmd.args(args)
        .env_remove("TINI_SUBREAPER")
        .env_remove("TINI_KILL_PROCESS_GROUP")
        .env_remove("TINI_VERBOSITY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("stdout")).expect("stdout file"))
        .stderr(fs::File::create(dir.join("stderr")).expect("stderr file"));
    cmd.spawn().expect("spawn the init")
}

/// Waits (bounded) for our child `child` to exit and returns its exit code.
#[track_caller]
fn host_exit_code(mut child: std::process::Child) -> i32 {
    let pid = child.id() as i32;
    // Not proc::wait_exit, which reaps zombies of nested pid namespaces while it waits.
    let fd = pidfd_open(pid).expect("our child is unreaped");
    if !proc::poll_readable(&fd, WAIT) {
        child.kill().expect("kill the init");
        child.wait().expect("wait the init");
        panic!("the init did not exit within {WAIT:?}");
    }
    let s = child.wait().expect("wait the init");
    s.code().expect("the init exited normally")
}

fn tmp_dir(name: &str) -> spec_tests::tmp::TempDir {
    let d = spec_tests::tmp::TempDir::new(name);
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).expect("chmod tmp");
    d
}

/// The init is not PID 1 and is made a subreaper (by -s or TINI_SUBREAPER): an orphan of its
/// child is reparented to it, not to us or to the machine's init, and reaped by it.
fn subreaper_case(init: Init, args: &[&str], env: &[(&str, &str)]) {
    let tmp = tmp_dir("init-s");
    let d = tmp.path();
    let mut out = Fifo::new(&d.join("out"));
    let go = Fifo::new(&d.join("go"));
    let script = format!(
        "sh -c 'sleep 1000 & echo $! > {d}/orphan'; echo ready > {d}/out; read x < {d}/go; exit 5",
        d = d.display()
    );
    let mut argv = args.to_vec();
    argv.extend_from_slice(&["--", "sh", "-c", &script]);
    let child = spawn_on_host(init, d, &argv, env);
    let init_pid = child.id() as i32;
    out.expect_line("ready");
    let orphan: i32 = fs::read_to_string(d.join("orphan"))
        .expect("orphan pid")
        .trim()
        .parse()
        .expect("orphan pid is a number");
    let fd = pidfd_open(orphan).expect("orphan alive");
    let parent = proc::stat(orphan).expect("orphan alive").ppid;
    // Killed before any assertion, so that a failure leaves no orphan behind.
    // SAFETY: pidfd_send_signal with a pidfd we hold: never another process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            0,
            0,
        )
    };
    assert_eq!(r, 0, "kill the orphan: {}", std::io::Error::last_os_error());
    assert_eq!(
        parent, init_pid,
        "the orphan was not reparented to the init"
    );
    wait_reaped(&fd, "the orphan");
    go.write_line("go");
    assert_eq!(host_exit_code(child), 5);
    let stderr = fs::read_to_string(d.join("stderr")).expect("stderr");
    assert!(
        !stderr.contains("not running as PID 1"),
        "warned although a subreaper: {stderr}"
    );
}

fn subreaper_flag_off_pid_1(init: Init) {
    subreaper_case(init, &["-s"], &[]);
}

fn subreaper_env_off_pid_1(init: Init) {
    // Set at all counts, even empty.
    subreaper_case(init, &[], &[("TINI_SUBREAPER", "")]);
}

fn warns_off_pid_1_without_subreaper(init: Init) {
    let tmp = tmp_dir("init-w");
    let child = spawn_on_host(init, tmp.path(), &["--", "sh", "-c", "exit 3"], &[]);
    assert_eq!(host_exit_code(child), 3);
    let stderr = fs::read_to_string(tmp.path().join("stderr")).expect("stderr");
    assert!(
        stderr.contains("is not running as PID 1 and isn't registered as a child subreaper."),
        "{stderr}"
    );
    // Verbosity 0 silences the warning.
    let child = spawn_on_host(init, tmp.path(), &["true"], &[("TINI_VERBOSITY", "0")]);
    assert_eq!(host_exit_code(child), 0);
    let stderr = fs::read_to_string(tmp.path().join("stderr")).expect("stderr");
    assert_eq!(stderr, "");
}

fn no_program_is_a_usage_error(init: Init) {
    let tmp = tmp_dir("init-u");
    for args in [&[][..], &["-s"], &["-s", "--"]] {
        let child = spawn_on_host(init, tmp.path(), args, &[]);
        assert_eq!(host_exit_code(child), 1, "{args:?}");
        let stderr = fs::read_to_string(tmp.path().join("stderr")).expect("stderr");
        assert!(stderr.contains("Usage: "), "{args:?}: {stderr}");
    }
    for args in [&["-e", "256", "true"][..], &["-Z", "true"], &["-e"]] {
        let child = spawn_on_host(init, tmp.path(), args, &[]);
        assert_eq!(host_exit_code(child), 1, "{args:?}");
    }
    let child = spawn_on_host(init, tmp.path(), &["--version"], &[]);
    assert_eq!(host_exit_code(child), 0);
    let stdout = fs::read_to_string(tmp.path().join("stdout")).expect("stdout");
    // Docker reads the version from the third word of "NAME version X".
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert!(words.len() >= 3 && words[1] == "version", "{stdout:?}");
}

fn exec_failures(init: Init) {
    let tmp = tmp_dir("init-x");
    let not_exec = tmp.path().join("not-exec");
    fs::write(&not_exec, "").expect("write");
    for (prog, code) in [("/nonexistent", 127), (not_exec.to_str().unwrap(), 126)] {
        let child = spawn_on_host(init, tmp.path(), &["-s", "--", prog], &[]);
        assert_eq!(host_exit_code(child), code, "{prog}");
        let stderr = fs::read_to_string(tmp.path().join("stderr")).expect("stderr");
        assert!(stderr.contains(&format!("exec {prog} failed")), "{stderr}");
    }
    // -e applies to them too.
    let child = spawn_on_host(
        init,
        tmp.path(),
        &["-s", "-e", "127", "--", "/nonexistent"],
        &[],
    );
    assert_eq!(host_exit_code(child), 0);
}

#[test]
fn husk_init_is_static() {
    let out = Command::new("ldd")
        .arg(Init::Husk.host_path())
        .output()
        .expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("statically linked") || text.contains("not a dynamic executable"),
        "{text}"
    );
}

/// `-p SIGTERM`: when the init's parent exits, the init gets SIGTERM, which it forwards like
/// any other; the child dies of it. The init is then reparented to us (a subreaper).
fn parent_death_signal(init: Init) {
    proc::become_subreaper();
    let tmp = tmp_dir("init-p");
    let d = tmp.path();
    let mut out = Fifo::new(&d.join("out"));
    let go = Fifo::new(&d.join("go"));
    let script = format!(
        "{init} -s -p SIGTERM -- sh -c 'echo ready $$ > {d}/out; exec sleep 1000' &
         echo pid $! > {d}/out
         read x < {d}/go",
        init = init.host_path(),
        d = d.display()
    );
    let parent = spawn_sh(d, &script);
    // The parent's line and the child's, in either order.
    let mut lines = [out.read_line(WAIT), out.read_line(WAIT)];
    lines.sort();
    let pid_after = |prefix: &str, line: &str| -> i32 {
        line.strip_prefix(prefix)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{lines:?}"))
    };
    let init_pid = pid_after("pid ", &lines[0]);
    let _guard = KillOnDrop(vec![
        pidfd_open(init_pid).expect("init alive"),
        pidfd_open(pid_after("ready ", &lines[1])).expect("child alive"),
    ]);
    go.write_line("go");
    assert_eq!(host_exit_code(parent), 0);
    assert_eq!(init_exit_code(init_pid), 128 + libc::SIGTERM);
}

/// SIGKILLs its processes in order when dropped, and reaps those that are (or, as orphans of
/// the one before, become) our children, so that a failing test leaves nothing behind.
struct KillOnDrop(Vec<OwnedFd>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for fd in &self.0 {
            let fd = fd.as_raw_fd();
            // Both best effort: gone already (ESRCH) or not our child (ECHILD) is the usual case.
            // SAFETY: a pidfd we hold, plain integers.
            unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, 0, 0) };
            // SAFETY: waitid on a pidfd we hold, with a zeroed siginfo to fill.
            unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PIDFD, fd as libc::id_t, &mut info, libc::WEXITED);
            }
        }
    }
}

/// `sh -c SCRIPT` on the host as our child, output in files of `dir`.
fn spawn_sh(dir: &Path, script: &str) -> std::process::Child {
    Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("sh.out")).expect("stdout file"))
        .stderr(fs::File::create(dir.join("sh.err")).expect("stderr file"))
        .spawn()
        .expect("spawn sh")
}
