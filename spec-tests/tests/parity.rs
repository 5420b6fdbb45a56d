//! Leftover differences from runc 1.1.5: the owner of the process's stdio, `help` and the usage
//! errors, `state`'s ociVersion, `exec --process` without PATH, and `update` of an unknown id.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::json;
use spec_tests::{proc, Container, Runtime, WAIT};

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (m.uid(), m.gid())
}

/// runc's init gives the files on its stdout and stderr (made by the caller, owned by root) to
/// the container's user before it drops root (fixStdioPermissions), so that the user can reopen
/// /proc/self/fd/1 as containerd's fifos need; the group stays. Its stdin, /dev/null, is left
/// alone: the host's /dev/null must never change owner.
#[test]
fn stdio_given_to_the_user_but_not_dev_null() {
    let null_before = owner(Path::new("/dev/null"));
    let mut c = Container::new("stdio_owner");
    c.bundle.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.bundle.set_script(
        "stat -L -c %u /proc/self/fd/1 /proc/self/fd/2; echo reopened >>/proc/self/fd/1",
    );
    let out = c.create();
    out.assert_success();
    assert_eq!(owner(&out.stdout_path), (1000, 0), "stdout after create");
    assert_eq!(owner(&out.stderr_path), (1000, 0), "stderr after create");
    c.start_ok();
    c.wait_exited();
    assert_eq!(out.stdout_now(), "1000\n1000\nreopened\n");
    assert_eq!(owner(Path::new("/dev/null")), null_before, "host /dev/null");
    c.delete_ok();
}

/// `exec --detach` hands its own stdio to the process as the init does, and chowns it too.
#[test]
fn exec_detached_stdio_given_to_the_user() {
    let null_before = owner(Path::new("/dev/null"));
    let mut c = Container::new("exec_stdio_owner");
    c.bundle.set_args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    let pid_file = c.bundle.path().join("exec.pid");
    let out = c.rt.run_args(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--user",
        "1000:1000",
        &c.id,
        "sh",
        "-c",
        "stat -L -c %u /proc/self/fd/1; echo reopened >>/proc/self/fd/1",
    ]);
    out.assert_success();
    assert_eq!(owner(&out.stdout_path), (1000, 0), "exec's stdout");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    proc::reap(pid, WAIT);
    assert_eq!(out.stdout_now(), "1000\nreopened\n");
    assert_eq!(owner(Path::new("/dev/null")), null_before, "host /dev/null");
    c.delete_force_ok();
}

/// A foreground `run` does not give the caller's files (or terminal) to the container's user:
/// runc relays them through pipes of its own, which it chowns instead.
#[test]
fn foreground_run_leaves_the_callers_stdio_alone() {
    let mut c = Container::new("fg_stdio_owner");
    c.bundle.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.bundle.set_script("echo out; echo err >&2");
    let out = c.run();
    out.assert_success();
    assert_eq!(out.stdout, "out\n");
    assert_eq!(owner(&out.stdout_path), (0, 0), "the caller's stdout");
    assert_eq!(owner(&out.stderr_path), (0, 0), "the caller's stderr");
    c.assert_clean();
}

/// `help` and `help CMD` print help and succeed (urfave/cli's help command); an unknown topic
/// is the unknown-command error, status 3.
#[test]
fn help_command() {
    let rt = Runtime::new();
    for args in [
        &["help"][..],
        &["help", "create"],
        &["h", "state"],
        &["help", "help"],
    ] {
        let out = rt.run_args(args);
        out.assert_success();
        assert!(out.stderr.is_empty(), "{out}");
        assert!(!out.stdout.is_empty(), "{out}");
        if let Some(cmd) = args.get(1).filter(|c| **c != "help") {
            assert!(out.stdout.contains(cmd), "help of {cmd}:\n{out}");
        }
    }
    let out = rt.run_args(&["help", "nosuch"]);
    assert_eq!(out.code(), 3, "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("No help topic for 'nosuch'"), "{out}");
}

/// A wrong argument count or an unknown flag: urfave/cli prints `Incorrect Usage…`, a blank line
/// and the command's help on stdout, and runc logs the error on stderr, status 1.
#[test]
fn usage_errors_print_incorrect_usage_and_help() {
    let rt = Runtime::new();
    for (args, head, log) in [
        (
            &["create"][..],
            "Incorrect Usage.",
            "requires exactly 1 argument(s)",
        ),
        (
            &["create", "a", "b"],
            "Incorrect Usage.",
            "requires exactly 1 argument(s)",
        ),
        (
            &["kill"],
            "Incorrect Usage.",
            "requires a minimum of 1 argument(s)",
        ),
        (
            &["kill", "a", "b", "c"],
            "Incorrect Usage.",
            "requires a maximum of 2 argument(s)",
        ),
        (
            &["list", "x"],
            "Incorrect Usage.",
            "requires exactly 0 argument(s)",
        ),
        (
            &["create", "-x", "a"],
            "Incorrect Usage: flag provided but not defined: -x",
            "msg=\"flag provided but not defined: -x\"",
        ),
        (
            &["delete", "--xyz", "a"],
            "Incorrect Usage: flag provided but not defined: -xyz",
            "msg=\"flag provided but not defined: -xyz\"",
        ),
        (
            &["-x", "list"],
            "Incorrect Usage. flag provided but not defined: -x",
            "msg=\"flag provided but not defined: -x\"",
        ),
        (
            &["create", "-b"],
            "Incorrect Usage: flag needs an argument: -b",
            "msg=\"flag needs an argument: -b\"",
        ),
    ] {
        let out = rt.run_args(args);
        assert_eq!(out.code(), 1, "{out}");
        let mut lines = out.stdout.lines();
        assert_eq!(lines.next(), Some(head), "{out}");
        assert_eq!(lines.next(), Some(""), "{out}");
        assert!(lines.next().is_some(), "help after the blank line:\n{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(out.stderr.contains("level=error"), "{out}");
        assert!(out.stderr.contains(log), "{out}");
    }
}

/// `state`, `list` and the hooks' state carry the runtime's own runtime-spec version (runc sets
/// its config's Version to specs.Version), not the bundle's ociVersion: runc 1.1.5 says
/// "1.0.2-dev", runc 1.2 and husk "1.2.0".
#[test]
fn state_oci_version_is_the_runtimes() {
    let mut c = Container::new("state_version");
    c.bundle.config["ociVersion"] = json!("9.9.9");
    let saved = c.bundle.path().join("hook-state");
    c.bundle.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", saved.display())]
    }]});
    c.bundle.set_args(&["sleep", "60"]);
    c.create_ok();
    let want = if spec_tests::runtime::is_runc_1_1() {
        "1.0.2-dev"
    } else {
        "1.2.0"
    };
    assert_eq!(c.state()["ociVersion"], want);
    let list = c.rt.list(&["--format", "json"]);
    list.assert_success();
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list[0]["ociVersion"], want, "{list}");
    let hook: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(hook["ociVersion"], want, "{hook}");
    c.delete_force_ok();
}

/// args[0] is looked up in the process's own PATH only (Go's exec.LookPath in runc's init):
/// without PATH in `env`, a bare name is not found, for the init as for `exec --process`.
#[test]
fn no_path_in_env_means_bare_names_are_not_found() {
    let mut c = Container::new("no_path");
    c.bundle.config["process"]["env"] = json!(["TERM=xterm"]);
    let out = c.create();
    assert_eq!(out.code(), 1, "{out}");
    spec_tests::assert_one_line_naming(
        &out.stderr,
        &[r#"exec: \"sh\": executable file not found in $PATH"#],
    );
    c.assert_clean();

    let mut c = Container::new("exec_no_path");
    c.bundle.set_args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    let process = c.bundle.path().join("process.json");
    for (args, works) in [
        (json!(["cat", "/proc/sys/kernel/hostname"]), false),
        (json!(["/bin/cat", "/proc/sys/kernel/hostname"]), true),
    ] {
        let p =
            json!({"args": args, "cwd": "/", "env": ["TERM=xterm"], "user": {"uid": 0, "gid": 0}});
        std::fs::write(&process, p.to_string()).unwrap();
        let out =
            c.rt.run_args(&["exec", "--process", process.to_str().unwrap(), &c.id]);
        if works {
            out.assert_success();
            assert_eq!(out.stdout, "runc\n", "{out}");
        } else {
            assert_eq!(out.code(), 255, "{out}");
            spec_tests::assert_one_line_naming(
                &out.stderr,
                &[r#"exec: \"cat\": executable file not found in $PATH"#],
            );
        }
    }
    c.delete_force_ok();
}

/// `update` looks the container up before it reads any value (runc's getContainer comes first):
/// an unknown id with a bad size, a missing or bad -r file, or an Intel RDT schema is `container
/// does not exist`, and a bad id is `invalid container ID format`.
#[test]
fn update_of_unknown_id_checks_the_container_first() {
    let rt = Runtime::new();
    let missing = rt.root().with_file_name("no-such-resources.json");
    let missing = missing.to_str().unwrap();
    for (args, want) in [
        (
            &["--memory", "nan", "nosuch"][..],
            "container does not exist",
        ),
        (&["--memory", "8192p", "nosuch"], "container does not exist"),
        (
            &["--memory-swap", "1.2.3m", "nosuch"],
            "container does not exist",
        ),
        (&["-r", missing, "nosuch"], "container does not exist"),
        (
            &["--l3-cache-schema", "L3:0=f", "nosuch"],
            "container does not exist",
        ),
        (&["--memory", "nan", "a/b"], "invalid container ID format"),
    ] {
        let mut a = vec!["update"];
        a.extend_from_slice(args);
        let out = rt.run_args(&a);
        assert_eq!(out.code(), 1, "{out}");
        assert!(out.stdout.is_empty(), "{out}");
        spec_tests::assert_one_line_naming(&out.stderr, &[&format!("msg=\"{want}\"")]);
    }
}

/// An id that cannot name a container is refused as such by every command that looks one up,
/// before anything else (runc's getContainer): `invalid container ID format`, or `container id
/// cannot be empty`; `delete --force` too.
#[test]
fn bad_ids_are_refused_before_the_lookup() {
    let rt = Runtime::new();
    for cmd in [
        &["state"][..],
        &["start"],
        &["kill"],
        &["delete"],
        &["delete", "--force"],
        &["pause"],
        &["resume"],
        &["ps"],
        &["events", "--stats"],
        &["update", "--memory", "1m"],
    ] {
        for (id, want) in [
            ("a/b", "invalid container ID format"),
            ("..", "invalid container ID format"),
            ("", "container id cannot be empty"),
        ] {
            let mut a = cmd.to_vec();
            a.push(id);
            let out = rt.run_args(&a);
            assert_eq!(out.code(), 1, "{out}");
            spec_tests::assert_one_line_naming(&out.stderr, &[&format!("msg=\"{want}\"")]);
        }
    }
}

/// runc prefixes every `exec` failure with `exec failed: ` (status 255), the lookup of the
/// container and the reading of --process included.
#[test]
fn exec_failures_all_say_exec_failed() {
    let mut c = Container::new("exec_failed");
    c.bundle.set_args(&["sleep", "60"]);
    c.create_ok();
    let missing = c.bundle.path().join("no-process.json");
    for (args, want) in [
        (
            vec!["exec", "nosuch", "true"],
            "exec failed: container does not exist",
        ),
        (
            vec!["exec", "a/b", "true"],
            "exec failed: invalid container ID format",
        ),
        (
            vec!["exec", &c.id],
            "exec failed: process args cannot be empty",
        ),
        (
            vec!["exec", "--process", missing.to_str().unwrap(), &c.id],
            "exec failed: ",
        ),
    ] {
        let out = c.rt.run_args(&args);
        assert_eq!(out.code(), 255, "{out}");
        spec_tests::assert_one_line_naming(&out.stderr, &[&format!("msg=\"{want}")]);
    }
    c.delete_force_ok();
}
