//! Pre-existing state and inputs that could make the runtime wait forever: a frozen or busy
//! cgroup, a stopped or frozen init, sockets nobody accepts on, fifos where files belong, a hook
//! that never reads. A runtime that hangs blocks containerd's whole task service, so each
//! command here must answer within [`BOUND`], succeed or fail cleanly, and leave nothing behind.
//! Where runc 1.1.5 itself hangs, the test skips on runc and says so.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use spec_tests::cgroup::{self, Hierarchy};
use spec_tests::runtime::{is_husk, is_runc_1_1, Output, Runtime};
use spec_tests::sync::mkfifo;
use spec_tests::tmp::TempDir;
use spec_tests::{proc, Container, Fifo, WAIT};

/// How long a command may take here: runc answers each at once.
const BOUND: Duration = Duration::from_secs(10);

fn run_within(rt: &Runtime, args: &[&str]) -> Output {
    rt.output_within(rt.command(args), BOUND)
}

fn create_within(c: &mut Container, extra: &[&str]) -> Output {
    c.bundle.write_config();
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    let mut args = vec!["create", "--bundle", &bundle];
    args.extend_from_slice(extra);
    args.push(&c.id);
    let out = run_within(&c.rt, &args);
    if out.success() {
        c.observe();
    }
    out
}

fn is_runc() -> bool {
    !is_husk()
}

/// The freezer's switch in a cgroup directory: v1's freezer.state or cgroup2's cgroup.freeze.
fn freeze(h: &Hierarchy, dir: &Path, on: bool) {
    let (file, v) = match (h.v2, on) {
        (true, on) => ("cgroup.freeze", if on { "1" } else { "0" }),
        (false, true) => ("freezer.state", "FROZEN"),
        (false, false) => ("freezer.state", "THAWED"),
    };
    std::fs::write(dir.join(file), v)
        .unwrap_or_else(|e| panic!("write {v} to {}: {e}", dir.join(file).display()));
}

/// The v1 freezer hierarchy, or the cgroup2 one (a v2 host's, or a hybrid host's unified one).
fn freezer(v2: bool) -> Option<Hierarchy> {
    cgroup::hierarchies()
        .into_iter()
        .find(|h| h.v2 == v2 && (v2 || h.controllers.iter().any(|c| c == "freezer")))
}

/// Cgroup directories this test made or froze: thawed and removed (deepest first) on drop,
/// whatever the runtime left of them.
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    /// Makes `rel` (an absolute cgroupsPath) in hierarchy `h`.
    fn make(&mut self, h: &Hierarchy, rel: &str) -> PathBuf {
        let dir = h.mount_point.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.0.push(dir.clone());
        dir
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.0
            .sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in &self.0 {
            for (file, v) in [("cgroup.freeze", "0"), ("freezer.state", "THAWED")] {
                // Whichever freezer the directory has, if it still exists.
                if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(d.join(file)) {
                    let _ = f.write_all(v.as_bytes());
                }
            }
        }
        for d in &self.0 {
            // What a runtime that failed the test left running in it (an init, thawed now).
            for pid in std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: plain kill(2).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    proc::wait_exit(pid, WAIT);
                }
            }
            if d.exists() && std::fs::remove_dir(d).is_err() {
                eprintln!("spec-tests: cannot remove cgroup {}", d.display());
            }
        }
    }
}

fn cgroups_path(name: &str) -> String {
    format!("/spec-tests-{name}-{}", std::process::id())
}

/// A container whose cgroup (absolute cgroupsPath) is made and frozen before `create`.
fn create_in_frozen(name: &str, v2: bool, parent: bool) -> Option<(Container, Output, Cgroups)> {
    let Some(h) = freezer(v2) else {
        eprintln!(
            "skipped: no {} freezer on this host",
            if v2 { "cgroup2" } else { "v1" }
        );
        return None;
    };
    let mut c = Container::new(name);
    c.bundle.set_args(&["true"]);
    let top = cgroups_path(name);
    let path = if parent {
        format!("{top}/c")
    } else {
        top.clone()
    };
    c.bundle.config["linux"]["cgroupsPath"] = json!(path);
    let mut cgs = Cgroups(vec![]);
    let frozen = cgs.make(&h, &top);
    freeze(&h, &frozen, true);
    for d in cgroup::expected_dirs(Some(&path), &c.id) {
        if parent {
            cgs.0.extend(d.parent().map(Path::to_path_buf));
        }
        cgs.0.push(d);
    }
    let out = create_within(&mut c, &[]);
    Some((c, out, cgs))
}

#[track_caller]
fn assert_refused_frozen(c: &mut Container, out: &Output) {
    let err = out.assert_failure();
    assert!(err.contains("cgroup unexpectedly frozen"), "{out}");
    let st = c.rt.state(&c.id);
    assert!(!st.success(), "the refused container exists: {st}");
    assert!(!c.rt.root().join(&c.id).exists(), "state dir left behind");
}

/// runc: "container's cgroup unexpectedly frozen" (v1 freezer.state FROZEN), before anything
/// is made; the cgroup, which was there before, stays.
#[test]
fn create_in_a_frozen_cgroup_is_refused() {
    let Some((mut c, out, cgs)) = create_in_frozen("frozen_v1", false, false) else {
        return;
    };
    assert_refused_frozen(&mut c, &out);
    assert!(cgs.0[0].exists(), "the pre-existing cgroup was removed");
    drop(cgs);
    c.assert_clean();
}

/// The same with cgroup2's cgroup.freeze. On a hybrid host the container joins the unified
/// hierarchy too, whose freezer works without controllers; runc 1.1.5 checks only the v1
/// freezer there, and its init freezes as it joins: runc hangs.
#[test]
fn create_in_a_frozen_cgroup2_is_refused() {
    let hybrid = freezer(false).is_some();
    if is_runc() && hybrid {
        eprintln!("skipped: runc 1.1.5 hangs (a hybrid host's frozen unified cgroup)");
        return;
    }
    let Some((mut c, out, cgs)) = create_in_frozen("frozen_v2", true, false) else {
        return;
    };
    assert_refused_frozen(&mut c, &out);
    drop(cgs);
    c.assert_clean();
}

/// A cgroupsPath below a frozen cgroup: the new cgroup starts frozen. runc 1.1.5 reads only the
/// cgroup's own freezer.self_freezing, proceeds, and hangs with its init frozen.
#[test]
fn create_below_a_frozen_cgroup_is_refused() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (its init joins a cgroup frozen by its parent)");
        return;
    }
    for v2 in [false, true] {
        let Some((mut c, out, cgs)) = create_in_frozen(&format!("frozen_parent{v2}"), v2, true)
        else {
            continue;
        };
        assert_refused_frozen(&mut c, &out);
        drop(cgs);
        c.assert_clean();
    }
}

/// runc 1.1.5 creates the container and warns, at level warning, with the count of processes
/// found (and a second line, that runc 1.2 will refuse this; runc 1.2 does).
#[test]
fn create_in_a_busy_cgroup_warns() {
    let mut c = Container::new("busy");
    c.bundle.set_args(&["true"]);
    let path = cgroups_path("busy");
    c.bundle.config["linux"]["cgroupsPath"] = json!(path);
    let mut sleeper = Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("spawn sleep");
    let mut cgs = Cgroups(vec![]);
    for h in cgroup::hierarchies() {
        let dir = cgs.make(&h, &path);
        // A new v1 cpuset cgroup takes no process until it has cpus and mems (v2's inherits).
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if !h.v2 && dir.join(f).exists() {
                std::fs::write(dir.join(f), cgroup::read(dir.parent().unwrap(), f)).unwrap();
            }
        }
        std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string())
            .unwrap_or_else(|e| panic!("move sleep into {}: {e}", dir.display()));
    }
    let out = create_within(&mut c, &[]);
    sleeper.kill().expect("kill sleep");
    sleeper.wait().expect("reap sleep");
    out.assert_success();
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("cgroup is not empty"))
        .unwrap_or_else(|| panic!("no warning about the busy cgroup: {out}"));
    assert!(
        warning.contains("level=warning")
            && warning.contains("container's cgroup is not empty: 1 process(es) found"),
        "{warning}"
    );
    c.delete_force_ok();
    drop(cgs);
}

/// A running `sleep` whose cgroup in `h` is frozen behind the runtime's back (not by `pause`),
/// with the guard that thaws and removes that cgroup.
fn frozen_outside(name: &str, h: &Hierarchy) -> (Container, Cgroups) {
    let mut c = Container::new(name);
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.run_detached_ok();
    let dir = cgroup::dir_of_pid(pid, if h.v2 { "" } else { "freezer" });
    let cgs = Cgroups(vec![dir.clone()]);
    freeze(h, &dir, true);
    (c, cgs)
}

/// A running container frozen behind the runtime's back (not by `pause`): runc reads the
/// freezer, calls it paused, and `delete --force` thaws it to kill it.
#[test]
fn delete_force_of_a_container_frozen_outside() {
    let Some(h) = freezer(false).or_else(|| freezer(true)) else {
        eprintln!("skipped: no freezer on this host");
        return;
    };
    let (mut c, _cgs) = frozen_outside("frozen_outside", &h);
    assert_eq!(c.status(), "paused");
    let out = run_within(&c.rt, &["delete", "--force", &c.id]);
    out.assert_success();
    c.delete_force_ok();
}

/// runc 1.1.5 refuses: "cannot exec in a paused container (use --ignore-paused to override)".
#[test]
fn exec_in_a_container_frozen_outside_is_refused() {
    let Some(h) = freezer(false).or_else(|| freezer(true)) else {
        eprintln!("skipped: no freezer on this host");
        return;
    };
    let (mut c, cgs) = frozen_outside("exec_frozen", &h);
    let out = run_within(&c.rt, &["exec", &c.id, "true"]);
    let err = out.assert_failure();
    assert!(err.contains("paused"), "{out}");
    drop(cgs);
    c.delete_force_ok();
}

/// A createRuntime hook (which runs while the init waits for the runtime) that does `script`
/// with the init's pid in $1.
fn hook_with_init_pid(c: &mut Container, script: &str) {
    let path = c.bundle.path().join("hook.sh");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nset -- \"$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/')\"\n{script}\n"),
    )
    .expect("write hook");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod hook");
    c.bundle.config["hooks"] = json!({"createRuntime": [{"path": path}]});
}

/// The init stopped (SIGSTOP) half-way through `create`: it will never report. runc 1.1.5
/// waits for it forever.
#[test]
fn create_whose_init_is_stopped_fails() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (it waits for a stopped init)");
        return;
    }
    let mut c = Container::new("init_stopped");
    c.bundle.set_args(&["true"]);
    hook_with_init_pid(&mut c, "kill -STOP \"$1\"");
    let out = create_within(&mut c, &[]);
    let err = out.assert_failure();
    assert!(err.contains("stopped"), "{out}");
    c.assert_clean();
}

/// The container's cgroup frozen half-way through `create`, with the init in it. runc 1.1.5
/// waits for the frozen init forever.
#[test]
fn create_whose_cgroup_is_frozen_meanwhile_fails() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (it waits for a frozen init)");
        return;
    }
    let Some(h) = freezer(false).or_else(|| freezer(true)) else {
        eprintln!("skipped: no freezer on this host");
        return;
    };
    let mut c = Container::new("frozen_meanwhile");
    c.bundle.set_args(&["true"]);
    let path = cgroups_path("frozen_meanwhile");
    c.bundle.config["linux"]["cgroupsPath"] = json!(path);
    let dir = h.mount_point.join(path.trim_start_matches('/'));
    let (file, v) = if h.v2 {
        ("cgroup.freeze", "1")
    } else {
        ("freezer.state", "FROZEN")
    };
    hook_with_init_pid(&mut c, &format!("echo {v} > {}", dir.join(file).display()));
    let cgs = Cgroups(vec![dir]);
    let out = create_within(&mut c, &[]);
    let err = out.assert_failure();
    assert!(err.contains("frozen"), "{out}");
    drop(cgs);
    c.assert_clean();
}

/// `start` runs the poststart hooks once the program runs; an init stopped before it could
/// exec never does. runc 1.1.5 hangs even without hooks (it waits for the init to take the
/// exec fifo's byte).
#[test]
fn start_of_a_stopped_init_with_poststart_hooks_fails() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (`start` waits for a stopped init)");
        return;
    }
    let mut c = Container::new("start_stopped");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.config["hooks"] = json!({"poststart": [{"path": "/bin/true"}]});
    create_within(&mut c, &[]).assert_success();
    // SAFETY: plain kill(2).
    assert_eq!(unsafe { libc::kill(c.pid(), libc::SIGSTOP) }, 0);
    let out = run_within(&c.rt, &["start", &c.id]);
    let err = out.assert_failure();
    assert!(err.contains("stopped"), "{out}");
    c.delete_force_ok();
}

/// A listening socket whose backlog is full: a blocking connect would wait for an accept that
/// never comes. runc's connect does not block: "connect: resource temporarily unavailable".
struct Unaccepted {
    _listener: UnixListener,
    _queued: UnixStream,
}

impl Unaccepted {
    fn at(path: &Path) -> Unaccepted {
        let l = UnixListener::bind(path).expect("bind");
        // SAFETY: listen(2) again on our socket only changes its backlog.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let queued = UnixStream::connect(path).expect("the first connection is queued");
        Unaccepted {
            _listener: l,
            _queued: queued,
        }
    }
}

#[test]
fn console_socket_nobody_accepts_on() {
    let dir = TempDir::new("unaccepted");
    let sock = dir.path().join("console.sock");
    let _u = Unaccepted::at(&sock);
    let mut c = Container::new("console_unaccepted");
    c.bundle.config["process"]["terminal"] = json!(true);
    let out = create_within(&mut c, &["--console-socket", sock.to_str().unwrap()]);
    let err = out.assert_failure();
    assert!(err.contains(sock.to_str().unwrap()), "{out}");
    c.assert_clean();
}

#[test]
fn seccomp_agent_nobody_accepts_on() {
    let dir = TempDir::new("unaccepted");
    let sock = dir.path().join("agent.sock");
    let _u = Unaccepted::at(&sock);
    let mut c = Container::new("agent_unaccepted");
    c.bundle.set_args(&["true"]);
    c.bundle.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let out = create_within(&mut c, &[]);
    let err = out.assert_failure();
    assert!(err.contains("seccomp agent"), "{out}");
    c.assert_clean();
}

/// A hook that never reads its stdin and outlives its timeout, with a state bigger than a pipe
/// holds (300 KB of annotations): the timeout must still end it. runc: "hook ran past specified
/// timeout of 1.0s".
#[test]
fn hook_that_never_reads_its_state_times_out() {
    let mut c = Container::new("hook_unread");
    c.bundle.set_args(&["true"]);
    c.bundle.config["annotations"] = json!({"big": "a".repeat(300_000)});
    c.bundle.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    let out = create_within(&mut c, &[]);
    let err = out.assert_failure();
    assert!(err.contains("timeout"), "{}", &err[..err.len().min(500)]);
    c.assert_clean();
}

/// runc writes the pid file to "<dir>/.<name>" first, opened with O_EXCL: a fifo there is an
/// error ("file exists"), never a wait for a reader.
#[test]
fn pid_file_whose_temporary_is_a_fifo() {
    let dir = TempDir::new("pidfile");
    mkfifo(&dir.path().join(".pid"));
    let mut c = Container::new("pid_fifo");
    c.bundle.set_args(&["true"]);
    let pid_file = dir.path().join("pid");
    let out = create_within(&mut c, &["--pid-file", pid_file.to_str().unwrap()]);
    out.assert_failure();
    assert!(!pid_file.exists(), "pid file written");
    c.assert_clean();
}

/// A state.json that is a fifo (nothing the runtime writes; a damaged or hostile state dir).
/// runc 1.1.5 opens it and waits for a writer forever, in every command.
#[test]
fn state_json_that_is_a_fifo() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (it opens the fifo and waits for a writer)");
        return;
    }
    let rt = Runtime::new();
    let dir = rt.root().join("c1");
    std::fs::create_dir_all(&dir).unwrap();
    mkfifo(&dir.join("state.json"));
    run_within(&rt, &["state", "c1"]).assert_failure();
    run_within(&rt, &["kill", "c1", "KILL"]).assert_failure();
    let list = run_within(&rt, &["list"]);
    list.assert_success();
    run_within(&rt, &["delete", "--force", "c1"]);
}

/// A config.json that is a fifo. runc 1.1.5 waits for a writer forever.
#[test]
fn config_json_that_is_a_fifo() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (it opens the fifo and waits for a writer)");
        return;
    }
    let mut c = Container::new("config_fifo");
    mkfifo(&c.bundle.config_path());
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    let out = run_within(&c.rt, &["create", "--bundle", &bundle, &c.id]);
    let err = out.assert_failure();
    assert!(err.contains("config.json"), "{out}");
    c.assert_clean();
}

/// `--log` naming a fifo nobody reads. runc 1.1.5 waits for a reader forever.
#[test]
fn log_file_that_is_a_fifo() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (it opens the fifo and waits for a reader)");
        return;
    }
    let dir = TempDir::new("logfifo");
    let log = dir.path().join("log");
    mkfifo(&log);
    let rt = Runtime::new();
    let out = run_within(&rt, &["--log", log.to_str().unwrap(), "list"]);
    out.assert_success();
}

/// The exec fifo replaced by a file: `start` can neither reach the init through it nor tell
/// when the program runs. runc reads the file, finds no byte, and fails.
#[test]
fn start_when_the_exec_fifo_is_a_file() {
    let mut c = Container::new("fifo_file");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.config["hooks"] = json!({"poststart": [{"path": "/bin/true"}]});
    create_within(&mut c, &[]).assert_success();
    let fifo = c.rt.root().join(&c.id).join("exec.fifo");
    std::fs::remove_file(&fifo).expect("remove exec.fifo");
    std::fs::write(&fifo, "").expect("write a file in its place");
    run_within(&c.rt, &["start", &c.id]).assert_failure();
    c.delete_force_ok();
}

/// The image's /etc/passwd is a fifo: no HOME to find there, but no reason to wait either.
/// runc 1.1.5's init opens it to look up HOME and waits for a writer forever.
#[test]
fn image_whose_etc_passwd_is_a_fifo() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (its init waits on the fifo for a writer)");
        return;
    }
    let mut c = Container::new("passwd_fifo");
    c.bundle.set_script("echo HOME=$HOME");
    let etc = c.bundle.rootfs().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let _ = std::fs::remove_file(etc.join("passwd"));
    mkfifo(&etc.join("passwd"));
    c.bundle.write_config();
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    let out = run_within(&c.rt, &["run", "--bundle", &bundle, &c.id]);
    out.assert_success();
    assert_eq!(out.stdout, "HOME=/\n");
    c.assert_clean();
}

/// `start` held up by a poststart hook without a timeout (allowed: the spec waits for it).
/// `delete --force` must not wait for it: husk's `start` holds the container's lock meanwhile,
/// and a forced delete waits for that lock a bounded time, then goes on without it.
#[test]
fn delete_force_while_start_is_stuck_in_a_hook() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1 runs poststart hooks in `create` (opencontainers/runc#4347)");
        return;
    }
    let mut c = Container::new("stuck_start");
    c.bundle.set_args(&["sleep", "1000"]);
    let dir = c.bundle.path().to_owned();
    let mut ready = Fifo::new(&dir.join("ready"));
    let release = Fifo::new(&dir.join("release"));
    let hook = dir.join("poststart.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho started > {}\ncat {} > /dev/null\n",
            ready.path().display(),
            release.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    c.bundle.config["hooks"] = json!({"poststart": [{"path": hook}]});
    create_within(&mut c, &[]).assert_success();
    let mut start = c.rt.command(&["start", &c.id]);
    let mut start = start
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn start");
    ready.expect_line("started");
    let out =
        c.rt.output_within(c.rt.command(&["delete", "--force", &c.id]), BOUND * 3);
    // The hook ends once nobody holds the fifo open for writing; then `start` does.
    drop(release);
    let start_pid = start.id() as i32;
    assert!(proc::wait_exit(start_pid, WAIT), "start did not end");
    start.wait().expect("reap start");
    out.assert_success();
    c.delete_force_ok();
}

/// On drop, opens the fifo at its path for writing, without waiting: whoever is stuck opening
/// it for reading goes on (and finds no namespace in it).
struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        // Fails (ENXIO) when nobody waits on it, which is the usual case.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.0);
    }
}

/// A namespace to join whose path is a fifo. runc 1.1.5 opens it and waits for a writer
/// forever.
#[test]
fn namespace_path_that_is_a_fifo() {
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (it opens the fifo and waits for a writer)");
        return;
    }
    let dir = TempDir::new("nsfifo");
    let fifo = dir.path().join("net");
    mkfifo(&fifo);
    // A runtime that waits in open(2) for a writer is released when the test ends.
    let _release = Release(fifo.clone());
    let mut c = Container::new("ns_fifo");
    c.bundle.set_args(&["true"]);
    let ns = c.bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap();
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "network", "path": fifo}));
    let out = create_within(&mut c, &[]);
    let err = out.assert_failure();
    assert!(err.contains(fifo.to_str().unwrap()), "{out}");
    c.assert_clean();
}

/// The same with the hybrid host's unified (cgroup2) cgroup frozen: runc 1.1.5 reads only the
/// v1 freezer, calls the container running, and its exec'd process freezes as it joins.
#[test]
fn exec_in_a_container_whose_unified_cgroup_is_frozen_fails() {
    let (Some(_), Some(h)) = (freezer(false), freezer(true)) else {
        eprintln!("skipped: not a hybrid host (no v1 freezer and cgroup2 side by side)");
        return;
    };
    if is_runc() {
        eprintln!("skipped: runc 1.1.5 hangs (it checks only the v1 freezer)");
        return;
    }
    let (mut c, cgs) = frozen_outside("exec_frozen2", &h);
    let out = run_within(&c.rt, &["exec", &c.id, "true"]);
    let err = out.assert_failure();
    assert!(err.contains("frozen"), "{out}");
    drop(cgs);
    c.delete_force_ok();
}
