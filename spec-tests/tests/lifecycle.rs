//! create / start / state / kill / delete / run / list / pause / resume.

use spec_tests::{state, Container, Fifo};

#[test]
fn create_start_kill_delete() {
    let mut c = Container::new("create_start_kill_delete");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"].as_str(), Some(c.id.as_str()));
    assert!(
        spec_tests::proc::alive(pid),
        "init {pid} must exist while created"
    );

    c.start_ok();
    // `start` returns once the user process is released: no wait needed to see "running".
    let st = c.state();
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"], pid);

    c.kill("KILL").assert_success();
    c.wait_exited();
    let st = c.state();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0, "a stopped container reports pid 0");

    c.delete_ok();
    let out = c.rt.state(&c.id);
    assert!(out.stderr.contains("does not exist"), "{out}");
}

#[test]
fn run_foreground_returns_exit_status_and_output() {
    let mut c = Container::new("run_foreground");
    c.bundle
        .set_script("echo out-line; echo err-line >&2; exit 3");
    let out = c.run();
    assert_eq!(out.code(), 3, "{out}");
    assert_eq!(out.stdout, "out-line\n");
    assert_eq!(out.stderr, "err-line\n");
    c.assert_clean();
}

#[test]
fn run_foreground_success() {
    let mut c = Container::new("run_foreground_success");
    c.bundle.set_args(&["true"]);
    let out = c.run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "");
    c.assert_clean();
}

#[test]
fn run_detached() {
    let mut c = Container::new("run_detached");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.run_detached_ok();
    assert!(spec_tests::proc::alive(pid));
    assert_eq!(c.status(), "running");
    c.delete_force_ok();
}

#[test]
fn detached_container_stdio_is_inherited() {
    // With terminal:false the container writes to the stdio that `create` was given.
    let mut c = Container::new("detached_stdio");
    c.bundle.set_script("echo to-stdout; echo to-stderr >&2");
    c.bundle.write_config();
    let out = c.rt.create(c.bundle.path(), &c.id);
    out.assert_success();
    c.observe();
    c.start_ok();
    c.wait_exited();
    assert_eq!(out.stdout_now(), "to-stdout\n");
    assert_eq!(out.stderr_now(), "to-stderr\n");
    c.delete_ok();
}

#[test]
fn pid_file_matches_state_pid() {
    let mut c = Container::new("pid_file");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let pid_file = c.bundle.path().join("init.pid");
    c.rt.run_args(&[
        "create",
        "--bundle",
        c.bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
    ])
    .assert_success();
    c.observe();
    let state_pid = c.pid();
    // No trailing newline: runc writes the bare number (go-runc parses it with Atoi).
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        state_pid.to_string()
    );
    c.delete_force_ok();
}

#[test]
fn state_json_exact_shape() {
    let mut c = Container::new("state_shape");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.config["annotations"] = serde_json::json!({"org.b": "two", "org.a": "one"});
    c.create_ok();
    let out = c.rt.state(&c.id);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // Same bytes as Go's MarshalIndent: key order, 2-space indent, no trailing newline.
    assert_eq!(out.stdout, state::runc_text(&v));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), state::KEYS.len(), "keys: {keys:?}");
    assert!(v["ociVersion"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(v["bundle"].as_str(), c.bundle.path().to_str());
    assert_eq!(v["rootfs"].as_str(), c.bundle.rootfs().to_str());
    let created = v["created"].as_str().unwrap();
    assert!(state::is_rfc3339_nano_utc(created), "created = {created:?}");
    // runc 1.1.5 prints an empty owner in `state` (but "root" in `list`).
    assert_eq!(v["owner"], "");
    assert_eq!(
        v["annotations"],
        serde_json::json!({"org.a": "one", "org.b": "two"})
    );
    c.delete_force_ok();
}

#[test]
fn state_without_annotations_has_no_annotations_key() {
    let mut c = Container::new("state_no_annotations");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    let out = c.rt.state(&c.id);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v.get("annotations").is_none(), "{out}");
    assert_eq!(out.stdout, state::runc_text(&v));
    c.delete_force_ok();
}

#[test]
fn list_formats() {
    let mut c = Container::new("list_formats");
    c.bundle.set_args(&["sleep", "1000"]);

    // Empty root: a header only; JSON is `null` (Go's nil slice).
    let out = c.rt.list(&[]);
    out.assert_success();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let out = c.rt.list(&["-f", "json"]);
    assert_eq!(out.stdout, "null\n", "{out}");
    let out = c.rt.list(&["-q"]);
    assert_eq!(out.stdout, "");

    let pid = c.create_ok();
    let out = c.rt.list(&[]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], c.id);
    assert_eq!(row[1], pid.to_string());
    assert_eq!(row[2], "created");
    assert_eq!(row[3], c.bundle.path().to_str().unwrap());
    assert!(state::is_rfc3339_nano_utc(row[4]), "{out}");
    assert_eq!(row[5], "root");

    let out = c.rt.list(&["--quiet"]);
    assert_eq!(out.stdout, format!("{}\n", c.id));

    let out = c.rt.list(&["--format", "json"]);
    out.assert_success();
    assert!(out.stdout.ends_with("]\n"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let arr = v.as_array().expect("list -f json is an array");
    assert_eq!(arr.len(), 1);
    assert_eq!(arr[0]["id"].as_str(), Some(c.id.as_str()));
    assert_eq!(arr[0]["pid"], pid);
    assert_eq!(arr[0]["status"], "created");
    assert_eq!(arr[0]["bundle"].as_str(), c.bundle.path().to_str());
    assert_eq!(arr[0]["rootfs"].as_str(), c.bundle.rootfs().to_str());
    assert_eq!(arr[0]["owner"], "root");
    c.delete_force_ok();
}

/// A container that reports trapped signals into a fifo; returns the fifo, ready.
fn signal_reporter(c: &mut Container) -> Fifo {
    let shared = c.bundle.shared_dir();
    let fifo = Fifo::new(&shared.join("fifo"));
    // `wait` is interrupted by a trapped signal, which runs the trap; the loop waits again.
    c.bundle.set_script(
        "for s in HUP USR1 USR2 TERM; do trap \"echo $s > /shared/fifo\" $s; done; \
         sleep 1000 & echo ready > /shared/fifo; while :; do wait; done",
    );
    fifo
}

#[test]
fn kill_signal_forms() {
    let mut c = Container::new("kill_signal_forms");
    let mut fifo = signal_reporter(&mut c);
    c.create_ok();
    c.start_ok();
    fifo.expect_line("ready");
    for (sig, seen) in [
        ("HUP", "HUP"),
        ("SIGUSR1", "USR1"),
        ("12", "USR2"),
        ("sigterm", "TERM"), // runc upper-cases the name
        ("usr1", "USR1"),
    ] {
        c.kill(sig).assert_success();
        fifo.expect_line(seen);
    }
    // No signal argument means SIGTERM.
    c.rt.run_args(&["kill", &c.id]).assert_success();
    fifo.expect_line("TERM");
    assert_eq!(c.status(), "running");
    c.kill("9").assert_success();
    c.wait_exited();
    assert_eq!(c.status(), "stopped");
    c.delete_ok();
}

#[test]
fn kill_with_sigkill_name() {
    let mut c = Container::new("kill_sigkill_name");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    c.kill("SIGKILL").assert_success();
    c.wait_exited();
    assert_eq!(c.status(), "stopped");
    c.delete_ok();
}

#[test]
fn kill_unknown_signal_fails() {
    let mut c = Container::new("kill_unknown_signal");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let out = c.kill("NOTASIG");
    assert_eq!(out.code(), 1, "{out}");
    // runc: unknown signal "NOTASIG"
    spec_tests::assert_one_line_naming(&out.stderr, &["NOTASIG"]);
    assert_eq!(c.status(), "running");
    c.delete_force_ok();
}

#[test]
fn kill_created_container() {
    // A created container can be killed before start; it is then stopped.
    let mut c = Container::new("kill_created");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.kill("KILL").assert_success();
    c.wait_exited();
    assert_eq!(c.status(), "stopped");
    c.delete_ok();
}

#[test]
fn delete_created_container_without_force() {
    // runc deletes a created (never started) container without --force.
    let mut c = Container::new("delete_created");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.delete_ok();
}

#[test]
fn delete_force_running() {
    let mut c = Container::new("delete_force_running");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    c.delete_force_ok();
}

#[test]
fn delete_force_nonexistent_succeeds() {
    // runc: `delete --force` of an unknown id is not an error (containerd relies on it).
    let mut c = Container::new("delete_force_nonexistent");
    let out = c.rt.delete_force(&c.id);
    assert_eq!(out.code(), 0, "{out}");
    c.assert_clean();
}

#[test]
fn pause_and_resume() {
    let mut c = Container::new("pause_resume");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    c.bundle.set_script(
        "echo ready > /shared/fifo; read x < /shared/go; echo resumed > /shared/fifo; sleep 1000",
    );
    spec_tests::sync::mkfifo(&shared.join("go"));
    c.create_ok();
    c.start_ok();
    fifo.expect_line("ready");
    c.rt.run_args(&["pause", &c.id]).assert_success();
    assert_eq!(c.status(), "paused");
    // The freezer state, from the host: v1's freezer.state, v2's "frozen" in cgroup.events.
    let frozen = || {
        if spec_tests::cgroup::is_v2() {
            let d = spec_tests::cgroup::dir_of_pid(c.pid(), "");
            let events = spec_tests::cgroup::read(&d, "cgroup.events");
            match events.lines().find_map(|l| l.strip_prefix("frozen ")) {
                Some("1") => "FROZEN".to_owned(),
                Some("0") => "THAWED".to_owned(),
                _ => panic!("no frozen line in cgroup.events: {events:?}"),
            }
        } else {
            let d = spec_tests::cgroup::dir_of_pid(c.pid(), "freezer");
            spec_tests::cgroup::read(&d, "freezer.state")
        }
    };
    assert_eq!(frozen(), "FROZEN");
    let out = c.rt.start(&c.id);
    assert_eq!(out.code(), 1, "{out}");
    spec_tests::assert_one_line_naming(&out.stderr, &["paused"]);
    c.rt.run_args(&["resume", &c.id]).assert_success();
    assert_eq!(c.status(), "running");
    assert_eq!(frozen(), "THAWED");
    std::fs::write(shared.join("go"), "go\n").unwrap();
    fifo.expect_line("resumed");
    c.delete_force_ok();
}

#[test]
fn ps_lists_container_processes() {
    let mut c = Container::new("ps");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    c.start_ok();
    let out = c.rt.run_args(&["ps", "--format", "json", &c.id]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!([pid]));
    c.delete_force_ok();
}

#[test]
fn wait_for_exit_sees_stopped_without_kill() {
    let mut c = Container::new("natural_exit");
    c.bundle.set_script("exit 0");
    c.create_ok();
    c.start_ok();
    c.wait_exited();
    assert_eq!(c.status(), "stopped");
    c.delete_ok();
}
