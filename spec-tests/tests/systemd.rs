//! The systemd cgroup driver (`--systemd-cgroup`, cgroupsPath `slice:prefix:name`), against a
//! real systemd: run in the pure cgroup v2 guest with systemd as PID 1
//! (`V2VM_SYSTEMD=1 scripts/v2vm.sh`, see scripts/v2vm/systemd-tests.sh). Each test passes the
//! flag itself, to `run`/`create`/`update` only: later commands must find the driver from the
//! container's state, as runc's do. Where systemd is not PID 1 the tests skip, saying so, but
//! for the one that needs it absent.

use serde_json::json;
use spec_tests::runtime::is_husk;
use spec_tests::tmp::TempDir;
use spec_tests::{assert_one_line_naming, Container, WAIT};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether systemd runs this host (runc's test: /run/systemd/system exists) on cgroup v2.
fn systemd_host() -> bool {
    Path::new("/run/systemd/system").is_dir() && spec_tests::cgroup::is_v2()
}

#[track_caller]
fn skip_without_systemd(what: &str) -> bool {
    let skip = !systemd_host();
    if skip {
        eprintln!("skipped: needs systemd as PID 1 on cgroup v2 ({what}); run it in V2VM_SYSTEMD=1 scripts/v2vm.sh");
    }
    skip
}

/// A container whose cgroupsPath is `path` with ID for its id (`system.slice:st:ID` if None);
/// its scope and the scope's directory in system.slice.
fn container(name: &str, path: Option<&str>) -> (Container, String, PathBuf) {
    let mut c = Container::new(name);
    let unit = format!("st-{}.scope", c.id);
    let path = path.unwrap_or("system.slice:st:ID").replace("ID", &c.id);
    c.bundle.config["linux"]["cgroupsPath"] = json!(path);
    let dir = Path::new("/sys/fs/cgroup/system.slice").join(&unit);
    (c, unit, dir)
}

fn sd(c: &Container, args: &[&str]) -> spec_tests::Output {
    let mut a = vec!["--systemd-cgroup"];
    a.extend_from_slice(args);
    c.rt.run_args(&a)
}

#[track_caller]
fn run_detached(c: &mut Container) {
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    sd(c, &["run", "--detach", "--bundle", &b, &c.id]).assert_success();
    c.observe();
}

/// `systemctl show -p NAME... UNIT`, as NAME=VALUE lines.
fn show(unit: &str, props: &[&str]) -> String {
    let mut cmd = Command::new("systemctl");
    cmd.arg("show");
    for p in props {
        cmd.arg("-p").arg(p);
    }
    let out = cmd.arg(unit).output().expect("systemctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
}

/// Polls a cgroup file until `ok` holds; the kernel updates it asynchronously.
#[track_caller]
fn wait_file(dir: &Path, file: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let v = read(dir, file);
        if ok(&v) {
            return v;
        }
        assert!(start.elapsed() < WAIT, "{file} never as wanted: {v:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[track_caller]
fn assert_scope_gone(unit: &str, dir: &Path) {
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(
        show(unit, &["LoadState"]).trim(),
        "LoadState=not-found",
        "{unit} left behind"
    );
}

#[test]
fn scope_with_limits_enforced_updated_paused_and_removed() {
    if skip_without_systemd("a scope through systemd") {
        return;
    }
    let (mut c, unit, dir) = container("sd-scope", None);
    c.bundle.config["linux"]["resources"] = json!({
        "memory": {"limit": 33554432},
        "pids": {"limit": 20}
    });
    c.bundle.set_args(&["sleep", "1000"]);
    run_detached(&mut c);

    // The init is in the scope, in the slice, with the limits set by systemd.
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/{unit}"));
    let props = show(
        &unit,
        &[
            "MemoryMax",
            "TasksMax",
            "Delegate",
            "Slice",
            "DefaultDependencies",
        ],
    );
    for want in [
        "MemoryMax=33554432",
        "TasksMax=20",
        "Delegate=yes",
        "Slice=system.slice",
        "DefaultDependencies=no",
    ] {
        assert!(props.lines().any(|l| l == want), "{want} not in {props}");
    }
    assert_eq!(read(&dir, "memory.max").trim(), "33554432");
    assert_eq!(read(&dir, "pids.max").trim(), "20");
    // Enforced: a shell in the container forks until the limit refuses (and it exits then).
    // The sleeps let go of the exec's stdio, whose end the harness waits for.
    let fork =
        "i=0; while [ $i -lt 30 ]; do sleep 1000 </dev/null >/dev/null 2>&1 & i=$((i+1)); done";
    assert!(
        !c.exec(&["sh", "-c", fork]).success(),
        "30 forks under a limit of 20"
    );
    assert_ne!(read(&dir, "pids.events").trim(), "max 0");
    let n: u32 = read(&dir, "pids.current").trim().parse().unwrap();
    assert!((2..=20).contains(&n), "pids.current {n}");

    // ps, events and kill --all find the scope through the state alone.
    let ps = c.rt.run_args(&["ps", "--format", "json", &c.id]);
    ps.assert_success();
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(pids.contains(&c.pid()) && pids.len() >= 2, "ps {pids:?}");
    let ev = c.rt.run_args(&["events", "--stats", &c.id]);
    ev.assert_success();
    let ev: serde_json::Value = serde_json::from_str(&ev.stdout).unwrap();
    assert_eq!(ev["data"]["pids"]["limit"], json!(20), "{ev}");

    // update: the unit's properties and the files.
    sd(
        &c,
        &[
            "update",
            "--memory",
            "67108864",
            "--pids-limit",
            "30",
            &c.id,
        ],
    )
    .assert_success();
    let props = show(&unit, &["MemoryMax", "TasksMax"]);
    assert_eq!(props, "MemoryMax=67108864\nTasksMax=30\n");
    assert_eq!(read(&dir, "memory.max").trim(), "67108864");
    assert_eq!(read(&dir, "pids.max").trim(), "30");
    // Without the flag too: the driver comes from the container.
    c.rt.run_args(&["update", "--pids-limit", "25", &c.id])
        .assert_success();
    assert_eq!(show(&unit, &["TasksMax"]), "TasksMax=25\n");

    // pause/resume freeze the scope.
    c.rt.run_args(&["pause", &c.id]).assert_success();
    assert_eq!(c.status(), "paused");
    wait_file(&dir, "cgroup.events", |v| v.contains("frozen 1"));
    c.rt.run_args(&["resume", &c.id]).assert_success();
    assert_eq!(c.status(), "running");
    wait_file(&dir, "cgroup.events", |v| v.contains("frozen 0"));

    c.rt.run_args(&["kill", "--all", &c.id, "KILL"])
        .assert_success();
    c.wait_exited();
    c.delete_ok();
    assert_scope_gone(&unit, &dir);
}

#[test]
fn delete_force_of_a_running_container_stops_its_scope() {
    if skip_without_systemd("a scope through systemd") {
        return;
    }
    let (mut c, unit, _) = container("sd-delete", Some("a-b.slice:st:ID"));
    c.bundle.set_args(&["sleep", "1000"]);
    run_detached(&mut c);
    // a-b.slice expands into its parents, as systemd names them.
    let dir = Path::new("/sys/fs/cgroup/a.slice/a-b.slice").join(&unit);
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert_eq!(cg.trim(), format!("0::/a.slice/a-b.slice/{unit}"));
    assert!(dir.is_dir());
    c.delete_force_ok();
    assert_scope_gone(&unit, &dir);
}

#[test]
fn bad_cgroups_path_form_is_refused_and_leaves_nothing() {
    if skip_without_systemd("the driver's cgroupsPath") {
        return;
    }
    for (i, bad) in ["bad", "a:b", "foo:st:x", "a--b.slice:st:x"]
        .iter()
        .enumerate()
    {
        let (mut c, _, _) = container(&format!("sd-badpath{i}"), Some(bad));
        c.bundle.set_args(&["true"]);
        c.bundle.write_config();
        let b = c.bundle.path().to_str().unwrap().to_string();
        let out = sd(&c, &["run", "--bundle", &b, &c.id]);
        assert!(!out.success(), "{bad}: {out}");
        assert_one_line_naming(&out.stderr, &["slice:prefix:name", "invalid slice name"]);
        c.assert_clean();
    }
}

#[test]
fn slice_that_systemd_rejects_leaves_nothing() {
    if skip_without_systemd("systemd refusing a slice") {
        return;
    }
    let (mut c, unit, _) = container("sd-badslice", Some("a b.slice:st:ID"));
    c.bundle.set_args(&["true"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let out = sd(&c, &["run", "--bundle", &b, &c.id]);
    assert!(!out.success(), "{out}");
    // runc 1.1.5 logs a warning line first (it reads the missing cgroup's OOM count).
    let err: String = out
        .stderr
        .lines()
        .filter(|l| spec_tests::runtime::is_husk() || !l.contains("level=warning"))
        .collect();
    assert_one_line_naming(&err, &["a b.slice"]);
    c.assert_clean();
    assert_scope_gone(
        &unit,
        Path::new("/sys/fs/cgroup/a b.slice").join(&unit).as_path(),
    );
}

/// On a host without systemd (this machine outside the guest): one line, nothing left.
#[test]
fn without_systemd_the_flag_fails_cleanly() {
    if Path::new("/run/systemd/system").exists() {
        eprintln!("skipped: systemd runs this host; the test needs a host without it");
        return;
    }
    let (mut c, _, _) = container("sd-nosystemd", None);
    c.bundle.set_args(&["true"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let out = sd(&c, &["run", "--bundle", &b, &c.id]);
    assert!(!out.success(), "{out}");
    assert_one_line_naming(&out.stderr, &["systemd not running"]);
    c.assert_clean();
}

/// With no system bus ($DBUS_SYSTEM_BUS_ADDRESS names a socket that does not exist), root
/// reaches systemd through its private socket (/run/systemd/private), as runc's go-systemd falls
/// back to it: a host may run systemd without a bus daemon. run, update and delete each make
/// their own connection that way.
#[test]
fn without_a_system_bus_root_reaches_systemd_on_its_private_socket() {
    if skip_without_systemd("systemd's private socket") {
        return;
    }
    let tmp = TempDir::new("sd-nobus");
    let nobus = format!("unix:path={}", tmp.path().join("no-bus-here").display());
    let (mut c, unit, dir) = container("sd-nobus", None);
    c.bundle.config["linux"]["resources"] = json!({"memory": {"limit": 33554432}});
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let sd_nobus = |c: &Container, args: &[&str]| {
        let mut a = vec!["--systemd-cgroup"];
        a.extend_from_slice(args);
        let mut cmd = c.rt.command(&a);
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &nobus);
        // Bounded: a job whose end never reached us would otherwise wait out husk's 30 s.
        c.rt.output_within(cmd, Duration::from_secs(60))
    };
    sd_nobus(&c, &["run", "--detach", "--bundle", &b, &c.id]).assert_success();
    c.observe();
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/{unit}"));
    let props = show(&unit, &["ActiveState", "MemoryMax"]);
    for want in ["ActiveState=active", "MemoryMax=33554432"] {
        assert!(props.lines().any(|l| l == want), "{want} not in {props}");
    }
    sd_nobus(&c, &["update", "--memory", "67108864", &c.id]).assert_success();
    assert_eq!(show(&unit, &["MemoryMax"]), "MemoryMax=67108864\n");
    assert_eq!(read(&dir, "memory.max").trim(), "67108864");
    sd_nobus(&c, &["delete", "--force", &c.id]).assert_success();
    c.assert_clean();
    assert_scope_gone(&unit, &dir);
}

/// A system bus whose daemon accepts and never answers (a wedged dbus-daemon): each connection
/// is accepted and held open, unread, until the bus is dropped.
struct SilentBus {
    path: PathBuf,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentBus {
    fn at(path: &Path) -> SilentBus {
        let l = UnixListener::bind(path).expect("bind the silent bus");
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in l.incoming() {
                if d.load(Ordering::SeqCst) {
                    break;
                }
                held.extend(c.ok());
            }
        });
        SilentBus {
            path: path.to_path_buf(),
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentBus {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        // One more connection wakes the accept loop, which then sees `done`.
        if UnixStream::connect(&self.path).is_ok() {
            if let Some(t) = self.thread.take() {
                t.join().expect("the silent bus's thread");
            }
        }
    }
}

/// A system bus that accepts and never answers: `run` fails within a bound (husk gives the
/// handshake 30 s, as every call), with one line naming the socket, and leaves nothing. The bus
/// is named by $DBUS_SYSTEM_BUS_ADDRESS, which runc's go-dbus reads too: the host's bus is
/// untouched.
#[test]
fn a_system_bus_that_never_answers_fails_run_within_a_bound() {
    if skip_without_systemd("the driver's connection to the bus") {
        return;
    }
    if !is_husk() {
        eprintln!(
            "skipped: runc 1.1.5 hangs (go-dbus's authentication waits for ever on a bus that never answers)"
        );
        return;
    }
    let tmp = TempDir::new("sd-silentbus");
    let sock = tmp.path().join("system_bus_socket");
    let _bus = SilentBus::at(&sock);
    let (mut c, unit, dir) = container("sd-silentbus", None);
    c.bundle.set_args(&["true"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let mut cmd =
        c.rt.command(&["--systemd-cgroup", "run", "--bundle", &b, &c.id]);
    cmd.env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        format!("unix:path={}", sock.display()),
    );
    let start = Instant::now();
    // Killed and failed if still running then: husk's 30 s and its start-up in the emulated
    // guest (7 s more was seen there).
    let out = c.rt.output_within(cmd, Duration::from_secs(60));
    eprintln!("failed after {:?}", start.elapsed());
    assert!(!out.success(), "{out}");
    assert_one_line_naming(&out.stderr, &[sock.to_str().unwrap()]);
    assert!(out.stderr.contains("did not answer within"), "{out}");
    c.assert_clean();
    assert_scope_gone(&unit, &dir);
}
