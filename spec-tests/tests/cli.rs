//! runc's command line as callers really use it: flag spellings, logs, spec, version.

use serde_json::{json, Value};
use spec_tests::runtime::is_runc_1_1;
use spec_tests::{assert_one_line_naming, bundle, Container, Runtime};

#[test]
fn single_dash_long_flags() {
    // Go's flag package (runc's CLI) takes -flag as well as --flag, and -flag=value.
    let mut c = Container::new("single_dash");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_owned();
    let pid_file = c.bundle.path().join("p.pid");
    let root = c.rt.root();
    let out = c.rt.output({
        let mut cmd = std::process::Command::new(c.rt.bin());
        cmd.args(["-root", root.to_str().unwrap(), "create", "-bundle", &b])
            .args(["-pid-file", pid_file.to_str().unwrap(), "-no-pivot", &c.id]);
        cmd
    });
    out.assert_success();
    c.observe();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        c.pid().to_string()
    );
    let out = c.rt.run_args(&["list", "-format", "json"]);
    out.assert_success();
    assert!(out.stdout.contains(&c.id), "{out}");
    c.rt.run_args(&["delete", "-force", &c.id]).assert_success();
    spec_tests::proc::reap(c.pid(), spec_tests::WAIT);
    c.assert_clean();
}

#[test]
fn single_dash_detach_and_equals_form() {
    let mut c = Container::new("dash_detach");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_owned();
    c.rt.run_args(&["run", "-detach", &format!("-bundle={b}"), &c.id])
        .assert_success();
    c.observe();
    assert_eq!(c.status(), "running");
    c.delete_force_ok();
}

#[test]
fn double_dash_equals_form() {
    let mut c = Container::new("dash_equals");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_owned();
    let pid_file = c.bundle.path().join("p.pid");
    c.rt.run_args(&[
        "create",
        &format!("--bundle={b}"),
        &format!("--pid-file={}", pid_file.display()),
        &c.id,
    ])
    .assert_success();
    c.observe();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        c.pid().to_string()
    );
    c.delete_force_ok();
}

#[test]
fn flags_after_the_container_id() {
    // runc 1.1 also accepts flags after the positional id.
    let mut c = Container::new("flags_after_id");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_owned();
    c.rt.run_args(&["create", &c.id, "--bundle", &b])
        .assert_success();
    c.observe();
    assert_eq!(c.state()["bundle"].as_str(), Some(b.as_str()));
    c.rt.run_args(&["delete", &c.id, "--force"])
        .assert_success();
    spec_tests::proc::reap(c.pid(), spec_tests::WAIT);
    c.assert_clean();
}

#[test]
fn short_flags() {
    let mut c = Container::new("short_flags");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_owned();
    c.rt.run_args(&["run", "-d", "-b", &b, &c.id])
        .assert_success();
    c.observe();
    let out = c.rt.run_args(&["list", "-q"]);
    assert_eq!(out.stdout, format!("{}\n", c.id));
    c.rt.run_args(&["kill", "-a", &c.id, "KILL"])
        .assert_success();
    c.wait_exited();
    c.rt.run_args(&["delete", "-f", &c.id]).assert_success();
    spec_tests::proc::reap(c.pid(), spec_tests::WAIT);
    c.assert_clean();
}

#[test]
fn json_log_file() {
    // containerd passes --log <file> --log-format json: errors go to the file as JSON lines,
    // and stderr gets the bare message (no logrus prefix).
    let rt = Runtime::new();
    let log = rt.root().with_file_name("runtime-log.json");
    let id = spec_tests::unique_id("json_log");
    let out = rt.output({
        let mut cmd = std::process::Command::new(rt.bin());
        cmd.args(["--root", rt.root().to_str().unwrap()]).args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            &id,
        ]);
        cmd
    });
    assert_eq!(out.code(), 1, "{out}");
    // runc: "container does not exist" on stderr, and in the log:
    // {"level":"error","msg":"container does not exist","time":"2026-11-23T12:08:56Z"}
    assert_one_line_naming(&out.stderr, &["does not exist"]);
    assert!(!out.stderr.starts_with("time="), "{out}");
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{text}");
    assert!(
        last["msg"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "{text}"
    );
    assert!(last["time"].is_string(), "{text}");
}

#[test]
fn default_stderr_format() {
    // Without --log, errors are logrus text lines: time="..." level=error msg="..."
    let rt = Runtime::new();
    let out = rt.state(&spec_tests::unique_id("stderr_format"));
    assert_eq!(out.code(), 1);
    assert_one_line_naming(&out.stderr, &["does not exist"]);
    let line = out.stderr.trim_end();
    assert!(line.starts_with("time=\""), "{line}");
    assert!(line.contains("\" level=error msg=\""), "{line}");
}

#[test]
fn version() {
    let rt = Runtime::new();
    let out = rt.run_args(&["--version"]);
    out.assert_success();
    let first = out.stdout.lines().next().unwrap_or("");
    assert!(first.contains("version"), "{out}");
    // runc prints the OCI spec version it implements on a line of its own.
    assert!(
        out.stdout.lines().any(|l| l.starts_with("spec: 1.")),
        "{out}"
    );
}

#[test]
fn missing_container_id() {
    let rt = Runtime::new();
    for cmd in ["create", "start", "state", "delete", "kill"] {
        let out = rt.run_args(&[cmd]);
        assert_eq!(out.code(), 1, "{out}");
        // runc: runc: "create" requires exactly 1 argument(s)  (and usage on stdout)
        assert_one_line_naming(&out.stderr, &["argument"]);
    }
}

#[test]
fn unknown_command() {
    let rt = Runtime::new();
    let out = rt.run_args(&["no-such-command"]);
    // runc exits 3 here ("No help topic for 'no-such-command'").
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("no-such-command"), "{out}");
}

#[test]
fn spec_writes_the_default_config() {
    let rt = Runtime::new();
    let dir = spec_tests::tmp::TempDir::new("spec");
    rt.run_args(&["spec", "--bundle", dir.path().to_str().unwrap()])
        .assert_success();
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let mut got: Value = serde_json::from_str(&text).unwrap();
    let mut want = bundle::base_config();
    want["process"]["terminal"] = json!(true);
    if !is_runc_1_1() {
        // runc 1.2 dropped ambient from the default spec (opencontainers/runc#4367) and writes
        // its own ociVersion ("1.2.0"): compare the rest.
        assert!(
            got["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
            "{got}"
        );
        for v in [&mut got, &mut want] {
            let v = v.as_object_mut().unwrap();
            v.remove("ociVersion");
            if let Some(caps) = v["process"]["capabilities"].as_object_mut() {
                caps.remove("ambient");
            }
        }
    }
    assert_eq!(got, want);
    // A second time it refuses to overwrite: File config.json exists. Remove it first
    let out = rt.run_args(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out}");
    assert_one_line_naming(&out.stderr, &["config.json"]);
}

#[test]
fn console_socket_without_terminal() {
    let mut c = Container::new("socket_no_tty");
    c.bundle.set_args(&["true"]);
    let sock = spec_tests::console::ConsoleSocket::new();
    let out = c.create_with_console(&sock);
    assert_eq!(out.code(), 1, "{out}");
    // runc: cannot use console socket if runc will not detach or allocate tty
    assert_one_line_naming(&out.stderr, &["console socket"]);
    c.assert_clean();
}

#[test]
fn terminal_detached_without_console_socket() {
    let mut c = Container::new("tty_no_socket");
    c.bundle.set_args(&["true"]);
    c.bundle.config["process"]["terminal"] = json!(true);
    c.bundle.write_config();
    let out = c.rt.run_detached(c.bundle.path(), &c.id);
    assert_eq!(out.code(), 1, "{out}");
    // runc: cannot allocate tty if runc will detach without setting console socket
    assert_one_line_naming(&out.stderr, &["console socket", "tty"]);
    c.assert_clean();
}
