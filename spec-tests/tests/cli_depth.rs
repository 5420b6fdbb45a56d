//! runc's command line where husk was seen to differ: `--debug` logging, `kill` with signal 0,
//! `ps` of a stopped container, `exec --cgroup`, `-h` after an unknown command or an id, and
//! the working directory of each kind of hook.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use spec_tests::bundle::sh_hook;
use spec_tests::cgroup::dir_of_pid;
use spec_tests::tmp::TempDir;
use spec_tests::{assert_one_line_naming, Container, Output, Runtime};

/// `bin <globals> --root <root> <args>`, run in `cwd` if given.
fn with_globals(rt: &Runtime, globals: &[&str], args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(rt.bin());
    cmd.args(globals).arg("--root").arg(rt.root()).args(args);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    rt.output(cmd)
}

/// A container whose config raises no ambient capabilities (a runtime may log at debug level
/// why it cannot raise them, which is not what these tests look for).
fn quiet_container(name: &str, args: &[&str]) -> Container {
    let mut c = Container::new(name);
    c.bundle.config["process"]["capabilities"]
        .as_object_mut()
        .unwrap()
        .remove("ambient");
    c.bundle.set_args(args);
    c.bundle.write_config();
    c
}

/// The logrus text lines of `text` at level `level`.
fn text_lines_at<'a>(text: &'a str, level: &str) -> Vec<&'a str> {
    let tag = format!(" level={level} msg=");
    text.lines().filter(|l| l.contains(&tag)).collect()
}

/// Asserts that `text` holds at least one debug line in logrus's text form.
#[track_caller]
fn assert_text_debug(text: &str, what: &str) {
    let debug = text_lines_at(text, "debug");
    assert!(!debug.is_empty(), "{what}: no level=debug line in {text:?}");
    for l in debug {
        assert!(
            l.starts_with("time=\"") && l.contains("\" level=debug msg="),
            "{what}: not a logrus text line: {l:?}"
        );
    }
}

/// Asserts that `text` is JSON log lines, at least one of them at level debug.
#[track_caller]
fn assert_json_debug(text: &str, what: &str) {
    let mut debug = 0;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("{what}: log line {l:?} is not JSON: {e}"));
        assert!(v["msg"].is_string() && v["time"].is_string(), "{what}: {l}");
        if v["level"] == "debug" {
            debug += 1;
        }
    }
    assert!(debug > 0, "{what}: no debug line in {text:?}");
}

#[test]
fn debug_logs_run_in_text_on_stderr() {
    // runc 1.1.5: `--debug run` logs nsexec's and the init's progress at debug level, e.g.
    // time="..." level=debug msg="nsexec[14370]: => nsexec container setup"
    let mut c = quiet_container("debug_run_text", &["true"]);
    let b = c.bundle.path().to_str().unwrap().to_owned();
    let out = with_globals(&c.rt, &["--debug"], &["run", "-b", &b, &c.id], None);
    out.assert_success();
    assert_text_debug(&out.stderr, "--debug run");
    // Without --debug, nothing at debug level.
    let out = c.rt.run(c.bundle.path(), &c.id);
    out.assert_success();
    assert!(text_lines_at(&out.stderr, "debug").is_empty(), "{out}");
    c.assert_clean();
}

/// `args` with `--debug --log <bundle>/<file> --log-format json`, asserted to succeed; its
/// output and what it logged.
#[track_caller]
fn with_json_debug_log(c: &Container, file: &str, args: &[&str]) -> (Output, String) {
    let log = c.bundle.path().join(file);
    let globals = [
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
    ];
    let out = with_globals(&c.rt, &globals, args, None);
    out.assert_success();
    (out, std::fs::read_to_string(&log).unwrap())
}

#[test]
fn debug_logs_create_and_exec_as_json_into_the_log_file() {
    // containerd's form: --log FILE --log-format json. The debug lines go to the file, not to
    // stderr, which stays empty on success.
    let mut c = quiet_container("debug_json_log", &["sleep", "1000"]);
    let b = c.bundle.path().to_str().unwrap().to_owned();
    let (out, log) = with_json_debug_log(&c, "create-log.json", &["create", "-b", &b, &c.id]);
    c.observe();
    assert_eq!(out.stderr, "", "{out}");
    assert_json_debug(&log, "--debug create");

    let (out, log) = with_json_debug_log(&c, "exec-log.json", &["exec", &c.id, "true"]);
    assert_eq!(out.stderr, "", "{out}");
    assert_json_debug(&log, "--debug exec");
    c.delete_force_ok();
}

#[test]
fn debug_logs_exec_in_text_into_the_log_file_and_json_on_stderr() {
    let mut c = quiet_container("debug_exec_text", &["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let log = c.bundle.path().join("exec.log");
    let out = with_globals(
        &c.rt,
        &["--debug", "--log", log.to_str().unwrap()],
        &["exec", &c.id, "true"],
        None,
    );
    out.assert_success();
    assert!(text_lines_at(&out.stderr, "debug").is_empty(), "{out}");
    assert_text_debug(
        &std::fs::read_to_string(&log).unwrap(),
        "--debug --log exec",
    );

    let out = with_globals(
        &c.rt,
        &["--debug", "--log-format", "json"],
        &["exec", &c.id, "true"],
        None,
    );
    out.assert_success();
    assert_json_debug(&out.stderr, "--debug --log-format json exec");
    c.delete_force_ok();
}

#[test]
fn kill_with_signal_0_checks_liveness() {
    // Signal 0 sends nothing: `kill ID 0` and `kill --all ID 0` succeed while the container
    // runs. Once it has stopped, `kill --all ID 0` still succeeds (as any `kill --all` of a
    // stopped container) and `kill ID 0` says "container not running".
    let mut c = Container::new("kill_zero");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    c.rt.run_args(&["kill", "--all", &c.id, "0"])
        .assert_success();
    c.kill("0").assert_success();
    assert_eq!(c.status(), "running");
    c.kill("KILL").assert_success();
    c.wait_exited();
    c.rt.run_args(&["kill", "--all", &c.id, "0"])
        .assert_success();
    let out = c.kill("0");
    assert_eq!(out.code(), 1, "{out}");
    assert_one_line_naming(&out.stderr, &["container not running"]);
    c.delete_ok();
}

/// The header line the host's `ps` prints for `args`.
fn host_ps_header(args: &[&str]) -> String {
    let out = Command::new("ps").args(args).output().expect("run ps");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    format!("{}\n", text.lines().next().expect("ps prints a header"))
}

#[test]
fn ps_of_a_stopped_container_lists_nothing() {
    // runc 1.1.5 runs ps(1) and keeps the lines of the container's pids: none once stopped,
    // leaving the header; JSON is Go's nil slice, `null`.
    let mut c = Container::new("ps_stopped");
    c.bundle.set_args(&["true"]);
    c.create_ok();
    c.start_ok();
    c.wait_exited();
    assert_eq!(c.status(), "stopped");
    let out = c.rt.run_args(&["ps", &c.id]);
    out.assert_success();
    assert_eq!(out.stdout, host_ps_header(&["-ef"]), "{out}");
    assert_eq!(out.stderr, "", "{out}");
    let out = c.rt.run_args(&["ps", "-f", "json", &c.id]);
    out.assert_success();
    assert_eq!(out.stdout, "null\n", "{out}");
    let out = c.rt.run_args(&["ps", "--", &c.id, "-o", "pid,comm"]);
    out.assert_success();
    assert_eq!(out.stdout, host_ps_header(&["-o", "pid,comm"]), "{out}");
    c.delete_ok();
}

/// The path of `controller`'s cgroup in /proc/self/cgroup as printed by `cat` in `out`.
fn cgroup_line<'a>(out: &'a str, controller: &str) -> &'a str {
    out.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("no {controller} line in {out:?}"))
}

#[test]
fn exec_cgroup_must_stay_below_the_container_cgroup() {
    // runc 1.1.5: exec failed: unable to create new parent process: .. is not a sub cgroup path
    let mut c = Container::new("exec_cgroup");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    c.start_ok();
    // On pure v2 there is one hierarchy: a path named for a controller is refused.
    let v2 = spec_tests::cgroup::is_v2();
    for bad in [
        "..",
        "../x",
        "a/../../x",
        "/..",
        "memory:..",
        "memory,pids:../x",
    ] {
        let out = c.rt.run_args(&["exec", "--cgroup", bad, &c.id, "true"]);
        assert_eq!(out.code(), 255, "{out}");
        let path = bad.rsplit(':').next().unwrap();
        // On v2, runc names whichever controller its map yields first: memory or pids.
        let want = if v2 && bad.contains(':') {
            "unknown controller ".to_owned()
        } else {
            format!("{path} is not a sub cgroup path")
        };
        assert_one_line_naming(&out.stderr, &[&want]);
    }
    // A controller the host does not have.
    let out =
        c.rt.run_args(&["exec", "--cgroup", "whaaat:/", &c.id, "true"]);
    assert_eq!(out.code(), 255, "{out}");
    assert_one_line_naming(&out.stderr, &["unknown controller whaaat"]);
    // A sub-cgroup that does not exist: the write into its cgroup.procs fails.
    let out = c.rt.run_args(&["exec", "--cgroup", "nosub", &c.id, "true"]);
    assert_eq!(out.code(), 255, "{out}");
    assert_one_line_naming(&out.stderr, &["nosub/cgroup.procs"]);
    // Paths that stay inside: the container's own cgroup, and one made below it.
    let memory = dir_of_pid(pid, "memory");
    let ctrl = if v2 { "" } else { "memory" };
    let own = cgroup_line(&c.exec(&["cat", "/proc/self/cgroup"]).stdout, ctrl).to_owned();
    let inside: &[&str] = if v2 {
        &["/", "a/.."]
    } else {
        &["/", "a/..", "memory:/"]
    };
    for arg in inside {
        let out =
            c.rt.run_args(&["exec", "--cgroup", arg, &c.id, "cat", "/proc/self/cgroup"]);
        out.assert_success();
        assert_eq!(cgroup_line(&out.stdout, ctrl), own, "--cgroup {arg}");
    }
    std::fs::create_dir(memory.join("sub")).unwrap();
    if v2 {
        let out =
            c.rt.run_args(&["exec", "--cgroup", "sub", &c.id, "cat", "/proc/self/cgroup"]);
        out.assert_success();
        assert_eq!(cgroup_line(&out.stdout, ""), format!("{own}/sub"));
        c.delete_force_ok();
        return;
    }
    let out = c.rt.run_args(&[
        "exec",
        "--cgroup",
        "memory:sub",
        &c.id,
        "cat",
        "/proc/self/cgroup",
    ]);
    out.assert_success();
    assert_eq!(cgroup_line(&out.stdout, "memory"), format!("{own}/sub"));
    assert!(
        !cgroup_line(&out.stdout, "pids").ends_with("/sub"),
        "only memory was asked for:\n{out}"
    );
    c.delete_force_ok();
}

/// runc's commands that husk implements.
const COMMANDS: &[&str] = &[
    "create", "start", "state", "kill", "delete", "list", "run", "exec", "pause", "resume", "ps",
    "update", "events", "spec", "features",
];

#[test]
fn help_flag_of_each_command() {
    // runc prints the command's help on stdout and exits 0, with nothing on stderr.
    let rt = Runtime::new();
    for cmd in COMMANDS {
        for flag in ["-h", "--help"] {
            let out = rt.run_args(&[cmd, flag]);
            assert_eq!(out.code(), 0, "{out}");
            assert!(out.stdout.contains(cmd), "{out}");
            assert_eq!(out.stderr, "", "{out}");
        }
    }
}

#[test]
fn help_flag_of_an_unknown_command() {
    // runc: exit 3, nothing on stdout, one log line on stderr:
    // time="..." level=error msg="No help topic for 'nosuch'\n"
    let rt = Runtime::new();
    for args in [&["nosuch", "-h"][..], &["nosuch", "--help"], &["nosuch"]] {
        let out = rt.run_args(args);
        assert_eq!(out.code(), 3, "{out}");
        assert_eq!(out.stdout, "", "{out}");
        assert_one_line_naming(&out.stderr, &["'nosuch'"]);
        let line = out.stderr.trim_end();
        assert!(
            line.starts_with("time=\"") && line.contains(" level=error msg="),
            "not a log line: {out}"
        );
    }
    // It goes through the logger like any error: JSON with --log-format json, into --log.
    let out = with_globals(&rt, &["--log-format", "json"], &["nosuch", "-h"], None);
    assert_eq!(out.code(), 3, "{out}");
    let v: Value = serde_json::from_str(out.stderr.trim_end())
        .unwrap_or_else(|e| panic!("stderr is not one JSON line ({e}): {out}"));
    assert_eq!(v["level"], "error", "{out}");
    assert!(v["msg"].as_str().unwrap().contains("'nosuch'"), "{out}");
    let log = rt.root().with_file_name("usage.log");
    let out = with_globals(
        &rt,
        &["--log", log.to_str().unwrap()],
        &["nosuch", "-h"],
        None,
    );
    assert_eq!(out.code(), 3, "{out}");
    // With --log, stderr gets the bare message.
    assert_one_line_naming(&out.stderr, &["'nosuch'"]);
    assert!(!out.stderr.starts_with("time="), "{out}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text_lines_at(&text, "error").len(), 1, "{text}");
}

#[test]
fn help_flag_after_the_id_of_exec_is_an_argument() {
    // exec passes everything after the id to the process, -h and --help included.
    let mut c = Container::new("help_after_id");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let out = c.exec(&["echo", "-h"]);
    out.assert_success();
    assert_eq!(out.stdout, "-h\n", "{out}");
    let out = c.exec(&["sh", "-c", "echo \"$@\"", "sh", "--help"]);
    out.assert_success();
    assert_eq!(out.stdout, "--help\n", "{out}");
    // Right after the id it is the program to run, which does not exist:
    // exec failed: unable to start container process: exec: "-h": executable file not found in $PATH
    let out = c.exec(&["-h"]);
    assert_eq!(out.code(), 255, "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert_one_line_naming(&out.stderr, &["-h"]);
    c.delete_force_ok();
}

/// A hook script that writes its working directory to `<dir>/cwd-<kind>`.
fn pwd_script(kind: &str, dir: &str) -> String {
    format!("pwd -P > {dir}/cwd-{kind}")
}

fn read_cwd(shared: &Path, kind: &str) -> PathBuf {
    let p = shared.join(format!("cwd-{kind}"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{kind} hook: {e}"));
    PathBuf::from(text.trim_end())
}

#[test]
fn hooks_run_in_the_directories_runc_gives_them() {
    // runc runs every hook in its own working directory: create and run first change into
    // the bundle, start and delete do not. createContainer runs in the init, in the rootfs
    // before pivot_root; startContainer in the process's cwd. runc 1.1 runs poststart at
    // the end of create, in the bundle; husk runs it in `start`, also in the bundle.
    let mut c = Container::new("hooks_cwd");
    let shared = c.bundle.hook_every_kind(pwd_script);
    c.bundle.config["process"]["cwd"] = json!("/tmp");
    c.bundle.set_args(&["sleep", "1000"]);
    c.bundle.write_config();
    let bundle = std::fs::canonicalize(c.bundle.path()).unwrap();
    let b = bundle.to_str().unwrap().to_owned();
    let (d1, d2, d3) = (
        TempDir::new("cwd1"),
        TempDir::new("cwd2"),
        TempDir::new("cwd3"),
    );
    with_globals(&c.rt, &[], &["create", "-b", &b, &c.id], Some(d1.path())).assert_success();
    c.observe();
    with_globals(&c.rt, &[], &["start", &c.id], Some(d2.path())).assert_success();
    c.kill("KILL").assert_success();
    c.wait_exited();
    with_globals(&c.rt, &[], &["delete", &c.id], Some(d3.path())).assert_success();
    spec_tests::proc::reap(c.pid(), spec_tests::WAIT);
    c.assert_clean();
    let want = [
        ("prestart", bundle.clone()),
        ("createRuntime", bundle.clone()),
        ("createContainer", bundle.join("rootfs")),
        ("startContainer", PathBuf::from("/tmp")),
        ("poststart", bundle.clone()),
        ("poststop", std::fs::canonicalize(d3.path()).unwrap()),
    ];
    for (kind, dir) in want {
        assert_eq!(
            read_cwd(&shared, kind),
            dir,
            "{kind} hook's working directory"
        );
    }
}

#[test]
fn poststop_of_a_foreground_run_runs_in_the_bundle() {
    let mut c = Container::new("poststop_cwd");
    let shared = c.bundle.shared_dir();
    c.bundle.config["hooks"] =
        json!({"poststop": [sh_hook(&pwd_script("poststop", shared.to_str().unwrap()))]});
    c.bundle.set_args(&["true"]);
    c.bundle.write_config();
    let bundle = std::fs::canonicalize(c.bundle.path()).unwrap();
    let elsewhere = TempDir::new("cwd");
    with_globals(
        &c.rt,
        &[],
        &["run", "-b", bundle.to_str().unwrap(), &c.id],
        Some(elsewhere.path()),
    )
    .assert_success();
    c.assert_clean();
    assert_eq!(read_cwd(&shared, "poststop"), bundle);
}
