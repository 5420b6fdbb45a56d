//! `exec`: extra processes in a running (or created) container.

use serde_json::json;
use spec_tests::proc::ns_link;
use spec_tests::{assert_one_line_naming, Container, Fifo, WAIT};

fn running(name: &str) -> Container {
    let mut c = Container::new(name);
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    c
}

#[test]
fn exec_joins_the_container_namespaces() {
    let mut c = running("exec_ns");
    let out = c.exec(&[
        "sh",
        "-c",
        "echo $$; for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done; hostname",
    ]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_ne!(
        lines[0], "1",
        "an exec'd process is not the container's init"
    );
    let init = c.pid().to_string();
    for (i, kind) in ["pid", "net", "ipc", "uts", "mnt"].iter().enumerate() {
        assert_eq!(lines[1 + i], ns_link(&init, kind), "{kind}");
    }
    assert_eq!(lines[6], "runc");
    c.delete_force_ok();
}

#[test]
fn exec_exit_status_and_output() {
    let mut c = running("exec_status");
    let out = c.exec(&["sh", "-c", "echo out; echo err >&2; exit 5"]);
    assert_eq!(out.code(), 5, "{out}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    c.delete_force_ok();
}

#[test]
fn exec_inherits_config_env_and_takes_flags() {
    let mut c = Container::new("exec_flags");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("FROM_CONFIG=yes"));
    c.create_ok();
    c.start_ok();
    let out = c.rt.run_args(&[
        "exec",
        "--env",
        "FROM_FLAG=1",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1001",
        "--additional-gids",
        "5",
        &c.id,
        "sh",
        "-c",
        "echo $FROM_CONFIG $FROM_FLAG $HOME; pwd; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    ]);
    out.assert_success();
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "yes 1 /home/alice",
            "/tmp",
            "Uid: 1000 1000 1000 1000",
            "Gid: 1001 1001 1001 1001",
            "Groups: 5"
        ]
    );
    c.delete_force_ok();
}

#[test]
fn exec_with_process_json() {
    // containerd's way: a whole OCI process object in a file. Only its env is used, and it
    // gets only the capabilities it lists (none here).
    let mut c = running("exec_process_json");
    let p = c.bundle.path().join("process.json");
    std::fs::write(
        &p,
        json!({
            "args": ["sh", "-c", "echo $FOO; pwd; id -u; grep -E '^Cap(Eff|Bnd):' /proc/self/status; env | grep -c TERM"],
            "env": ["FOO=from-json", "PATH=/bin"],
            "cwd": "/tmp",
            "user": {"uid": 1000, "gid": 1000},
            "terminal": false
        })
        .to_string(),
    )
    .unwrap();
    let out =
        c.rt.run_args(&["exec", "--process", p.to_str().unwrap(), &c.id]);
    // grep -c exits 1 when it counts 0.
    assert_eq!(out.code(), 1, "{out}");
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "from-json",
            "/tmp",
            "1000",
            "CapEff: 0000000000000000",
            "CapBnd: 0000000020000420",
            "0"
        ]
    );
    c.delete_force_ok();
}

#[test]
fn exec_detached_with_pid_file() {
    let mut c = Container::new("exec_detached");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let pid_file = c.bundle.path().join("exec.pid");
    c.rt.run_args(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "echo $$ > /shared/fifo; exec sleep 1000",
    ])
    .assert_success();
    let host_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let inside = fifo.read_line(WAIT);
    assert_ne!(inside, "1");
    assert!(spec_tests::proc::alive(host_pid));
    assert_eq!(
        ns_link(&host_pid.to_string(), "pid"),
        ns_link(&c.pid().to_string(), "pid")
    );
    // The exec'd process is in the container's cgroups too.
    assert_eq!(
        spec_tests::cgroup::dirs_of_pid(host_pid),
        spec_tests::cgroup::dirs_of_pid(c.pid())
    );
    c.delete_force_ok();
    // Killed with the container; it was reparented to us, so reap it.
    spec_tests::proc::reap(host_pid, WAIT);
}

#[test]
fn exec_in_created_container() {
    // runc allows exec before start: the process joins the created container's namespaces.
    let mut c = Container::new("exec_created");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    let out = c.exec(&["hostname"]);
    out.assert_success();
    assert_eq!(out.stdout, "runc\n");
    assert_eq!(c.status(), "created");
    c.delete_force_ok();
}

#[test]
fn exec_in_stopped_container_fails() {
    let mut c = Container::new("exec_stopped");
    c.bundle.set_args(&["true"]);
    c.create_ok();
    c.start_ok();
    c.wait_exited();
    let out = c.exec(&["true"]);
    // runc exits 255 when exec fails: exec failed: cannot exec in a stopped container
    assert_eq!(out.code(), 255, "{out}");
    assert_one_line_naming(&out.stderr, &["stopped"]);
    c.delete_ok();
}

#[test]
fn exec_in_nonexistent_container_fails() {
    let mut c = Container::new("exec_nonexistent");
    let out = c.exec(&["true"]);
    // runc: exec failed: container does not exist
    assert_eq!(out.code(), 255, "{out}");
    assert_one_line_naming(&out.stderr, &["does not exist", &c.id]);
    c.assert_clean();
}

#[test]
fn exec_of_missing_binary_fails() {
    let mut c = running("exec_missing_bin");
    let out = c.exec(&["/bin/nonexistent"]);
    // runc: exec failed: unable to start container process: exec: "/bin/nonexistent": stat ...
    assert_eq!(out.code(), 255, "{out}");
    assert_one_line_naming(&out.stderr, &["/bin/nonexistent"]);
    assert_eq!(c.status(), "running");
    c.delete_force_ok();
}

/// Without a pid namespace of its own, a container's other processes outlive its init; the
/// container is stopped, and `kill --all` still reaches them through its cgroup (runc does;
/// containerd's shim relies on it).
#[test]
fn kill_all_of_a_stopped_container_reaches_processes_that_outlived_init() {
    let mut c = Container::new("kill_all_stopped");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    let ns = c.bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap();
    ns.retain(|n| n["type"] != "pid");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let pid_file = c.bundle.path().join("exec.pid");
    c.rt.run_args(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "echo up > /shared/fifo; exec sleep 1000",
    ])
    .assert_success();
    fifo.expect_line("up");
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    c.rt.run_args(&["kill", &c.id, "KILL"]).assert_success();
    c.wait_exited();
    assert_eq!(c.status(), "stopped");
    assert!(
        !spec_tests::proc::wait_exit(exec_pid, std::time::Duration::ZERO),
        "exec'd process died with init"
    );
    c.rt.run_args(&["kill", "--all", &c.id, "KILL"])
        .assert_success();
    assert!(
        spec_tests::proc::wait_exit(exec_pid, WAIT),
        "exec'd process survived kill --all"
    );
    spec_tests::proc::reap(exec_pid, WAIT);
    c.delete_ok();
}

#[test]
fn kill_all_reaches_exec_processes() {
    let mut c = Container::new("kill_all");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let pid_file = c.bundle.path().join("exec.pid");
    c.rt.run_args(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "echo up > /shared/fifo; exec sleep 1000",
    ])
    .assert_success();
    fifo.expect_line("up");
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    c.rt.run_args(&["kill", "--all", &c.id, "KILL"])
        .assert_success();
    c.wait_exited();
    assert!(
        spec_tests::proc::wait_exit(exec_pid, WAIT),
        "exec'd process survived kill --all"
    );
    spec_tests::proc::reap(exec_pid, WAIT);
    assert_eq!(c.status(), "stopped");
    c.delete_ok();
}
