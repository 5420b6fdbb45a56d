//! OCI hooks: when each runs, what it gets on stdin, args, env, timeouts and failures.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec_tests::bundle::sh_hook;
use spec_tests::runtime::is_runc_1_1;
use spec_tests::{Container, Fifo};

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("hook output {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()))
}

/// Sets up every hook kind to save its stdin to `<shared>/<kind>.json` and to append its kind
/// to `<shared>/order`; the user process appends "user" and reports "started" on a fifo.
fn all_hooks(c: &mut Container) -> (std::path::PathBuf, Fifo) {
    let shared = c
        .bundle
        .hook_every_kind(|kind, d| format!("cat > {d}/{kind}.json; echo {kind} >> {d}/order"));
    let fifo = Fifo::new(&shared.join("fifo"));
    c.bundle
        .set_script("echo user >> /shared/order; echo started > /shared/fifo; sleep 1000");
    (shared, fifo)
}

#[test]
fn hooks_get_state_on_stdin() {
    let mut c = Container::new("hooks_state");
    let (shared, mut fifo) = all_hooks(&mut c);
    let pid = c.create_ok() as i64;
    c.start_ok();
    fifo.expect_line("started");
    c.kill("KILL").assert_success();
    c.wait_exited();
    c.delete_ok();

    let bundle = c.bundle.path().to_str().unwrap();
    let poststart_status = if is_runc_1_1() { "created" } else { "running" };
    for (kind, status, want_pid) in [
        ("createRuntime", "creating", Some(pid)),
        ("prestart", "creating", Some(pid)),
        // runc runs these two from the container's init, which reports its pid as seen in
        // its own pid namespace.
        ("createContainer", "creating", Some(1)),
        ("startContainer", "created", Some(1)),
        // runc bug opencontainers/runc#4347 (fixed by #5186): poststart runs at the end of
        // `create` (status "created"); the spec runs it in `start`, after the user process.
        ("poststart", poststart_status, Some(pid)),
        // No pid once stopped (omitted, not 0).
        ("poststop", "stopped", None),
    ] {
        let v = read_json(&shared.join(format!("{kind}.json")));
        assert!(
            v["ociVersion"].as_str().is_some_and(|s| !s.is_empty()),
            "{kind}: {v}"
        );
        assert_eq!(v["id"].as_str(), Some(c.id.as_str()), "{kind}: {v}");
        assert_eq!(v["status"], status, "{kind}: {v}");
        assert_eq!(v["bundle"], bundle, "{kind}: {v}");
        assert_eq!(
            v.get("pid").and_then(Value::as_i64),
            want_pid,
            "{kind}: {v}"
        );
    }
}

#[test]
fn hook_order() {
    let mut c = Container::new("hooks_order");
    let (shared, mut fifo) = all_hooks(&mut c);
    c.create_ok();
    let order = || std::fs::read_to_string(shared.join("order")).unwrap();
    if is_runc_1_1() {
        // runc bug opencontainers/runc#4347 (fixed by #5186): poststart runs before `create`
        // returns; startContainer only after `start`.
        assert_eq!(
            order(),
            "prestart\ncreateRuntime\ncreateContainer\npoststart\n"
        );
        c.start_ok();
        fifo.expect_line("started");
        assert_eq!(
            order(),
            "prestart\ncreateRuntime\ncreateContainer\npoststart\nstartContainer\nuser\n"
        );
    } else {
        // The spec: poststart runs during `start`, after the user process was started.
        assert_eq!(order(), "prestart\ncreateRuntime\ncreateContainer\n");
        c.start_ok();
        fifo.expect_line("started");
        // `start` has returned (so poststart has run) and the user process has written its
        // line; the two race with each other, so only their set is fixed.
        assert_started_order(&order());
    }
    c.kill("KILL").assert_success();
    c.wait_exited();
    c.delete_ok();
    let order = order();
    assert!(order.ends_with("\npoststop\n"), "{order}");
    if is_runc_1_1() {
        assert!(order.ends_with("user\npoststop\n"), "{order}");
    } else {
        assert_started_order(order.strip_suffix("poststop\n").unwrap());
    }
}

/// `order` is the create-time hooks, then startContainer, then poststart and the user
/// process's line in either order.
#[track_caller]
fn assert_started_order(order: &str) {
    let head = "prestart\ncreateRuntime\ncreateContainer\nstartContainer\n";
    let rest = order
        .strip_prefix(head)
        .unwrap_or_else(|| panic!("order {order:?} does not start with {head:?}"));
    let mut rest: Vec<&str> = rest.lines().collect();
    rest.sort_unstable();
    assert_eq!(rest, ["poststart", "user"], "order {order:?}");
}

#[test]
fn hook_args_and_env() {
    let mut c = Container::new("hook_args_env");
    let shared = c.bundle.shared_dir();
    let out = shared.join("out");
    c.bundle.config["hooks"] = json!({"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$0|$1|$HOOKVAR|${{ST_MARKER:-unset}}\" > {}", out.display()), "zero", "one"],
        "env": ["HOOKVAR=from-config"]
    }]});
    c.bundle.set_args(&["true"]);
    c.bundle.write_config();
    // A variable of the runtime's own environment: not passed when the hook has `env`.
    let mut cmd =
        c.rt.command(&["run", "--bundle", c.bundle.path().to_str().unwrap(), &c.id]);
    cmd.env("ST_MARKER", "leaked");
    c.rt.output(cmd).assert_success();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "zero|one|from-config|unset\n"
    );
    c.assert_clean();
}

#[test]
fn hook_without_env_inherits_the_runtime_environment() {
    // runc (Go's exec with a nil Env) passes its own environment to a hook without `env`.
    let mut c = Container::new("hook_env_inherit");
    let shared = c.bundle.shared_dir();
    let out = shared.join("out");
    c.bundle.config["hooks"] = json!({"prestart": [sh_hook(&format!("echo \"${{ST_MARKER:-unset}}\" > {}", out.display()))]});
    c.bundle.set_args(&["true"]);
    c.bundle.write_config();
    let mut cmd =
        c.rt.command(&["run", "--bundle", c.bundle.path().to_str().unwrap(), &c.id]);
    cmd.env("ST_MARKER", "inherited");
    c.rt.output(cmd).assert_success();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "inherited\n");
    c.assert_clean();
}

#[test]
fn hook_timeout_kills_the_hook_and_fails_create() {
    let mut c = Container::new("hook_timeout");
    let shared = c.bundle.shared_dir();
    let pid_file = shared.join("hook.pid");
    c.bundle.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 1000", pid_file.display())],
        "timeout": 1
    }]});
    c.bundle.set_args(&["true"]);
    let t0 = Instant::now();
    let out = c.create();
    let took = t0.elapsed();
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        took < Duration::from_secs(10),
        "create took {took:?} with a 1 s hook timeout"
    );
    // runc: ... error running hook #0: hook ran past specified timeout of 1.0s
    spec_tests::assert_one_line_naming(&out.stderr, &["timeout", "timed out"]);
    let hook_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !spec_tests::proc::alive(hook_pid),
        "the timed-out hook {hook_pid} is still alive"
    );
    c.assert_clean();
}

#[test]
fn failing_prestart_hook_fails_create() {
    let mut c = Container::new("hook_fails");
    c.bundle.config["hooks"] =
        json!({"prestart": [sh_hook("echo hook-stdout; echo hook-stderr >&2; exit 7")]});
    c.bundle.set_args(&["true"]);
    let out = c.create();
    assert_eq!(out.code(), 1, "{out}");
    // runc: ... error running hook #0: error running hook: exit status 7, stdout: hook-stdout\n,
    // stderr: hook-stderr\n   (one line: the hook's output is quoted with escaped newlines)
    spec_tests::assert_one_line_naming(&out.stderr, &["hook"]);
    assert!(out.stderr.contains("hook-stderr"), "{out}");
    c.assert_clean();
}

#[test]
fn failing_poststop_hook_does_not_fail_delete() {
    // runc logs the poststop failure but deletes the container and exits 0. (runc 1.1.5 runs
    // no poststop hook after a failed one, although the spec says the remaining hooks run.)
    let mut c = Container::new("poststop_fails");
    let shared = c.bundle.shared_dir();
    let d = shared.display();
    c.bundle.config["hooks"] =
        json!({"poststop": [sh_hook(&format!("cat > {d}/poststop.json; exit 7"))]});
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.delete_force_ok();
    let v = read_json(&shared.join("poststop.json"));
    assert_eq!(v["status"], "stopped", "{v}");
    assert_eq!(v["id"].as_str(), Some(c.id.as_str()), "{v}");
}

#[test]
fn poststop_runs_on_foreground_run() {
    let mut c = Container::new("poststop_run");
    let shared = c.bundle.shared_dir();
    c.bundle.config["hooks"] =
        json!({"poststop": [sh_hook(&format!("cat > {}/poststop.json", shared.display()))]});
    c.bundle.set_args(&["true"]);
    c.run_ok();
    let v = read_json(&shared.join("poststop.json"));
    assert_eq!(v["status"], "stopped");
    assert_eq!(v["id"].as_str(), Some(c.id.as_str()));
    c.assert_clean();
}
