//! The `process` section of config.json, checked from inside the container.

use serde_json::json;
use spec_tests::caps::{self, mask};
use spec_tests::console::{read_until, ConsoleSocket};
use spec_tests::fds::{as_listen_pid, ExtraFds};
use spec_tests::{Container, WAIT};

/// Runs `script` in a container configured by `tweak`; returns its stdout.
fn run_script(name: &str, script: &str, tweak: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut c = Container::new(name);
    c.bundle.set_script(script);
    tweak(&mut c.bundle.config);
    let out = c.run_ok();
    c.assert_clean();
    out
}

#[test]
fn args_are_passed_verbatim() {
    let mut c = Container::new("args_verbatim");
    c.bundle.set_args(&[
        "sh",
        "-c",
        "printf '[%s]' \"$0\" \"$@\"",
        "zero",
        "a b",
        "",
        "c'd",
    ]);
    assert_eq!(c.run_ok(), "[zero][a b][][c'd]");
    c.assert_clean();
}

#[test]
fn args0_is_looked_up_in_path() {
    let out = run_script("args0_path", "", |cfg| {
        cfg["process"]["args"] = json!(["echo", "found"])
    });
    assert_eq!(out, "found\n");
}

#[test]
fn env_is_set_and_home_defaults_from_passwd() {
    let out = run_script("env", "env | sort", |cfg| {
        cfg["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("CUSTOM_VAR=with space=and equals"));
    });
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"CUSTOM_VAR=with space=and equals"), "{out}");
    assert!(lines.contains(&"TERM=xterm"), "{out}");
    assert!(
        lines.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "{out}"
    );
    // runc adds HOME from the rootfs's /etc/passwd when the config has none.
    assert!(lines.contains(&"HOME=/root"), "{out}");
}

#[test]
fn explicit_home_is_kept() {
    let out = run_script("explicit_home", "echo $HOME", |cfg| {
        cfg["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HOME=/elsewhere"));
    });
    assert_eq!(out, "/elsewhere\n");
}

#[test]
fn cwd_is_used() {
    let out = run_script("cwd", "pwd", |cfg| cfg["process"]["cwd"] = json!("/tmp"));
    assert_eq!(out, "/tmp\n");
}

#[test]
fn cwd_is_created_if_missing() {
    // runc creates a missing cwd (here inside a writable tmpfs).
    let out = run_script("cwd_created", "pwd", |cfg| {
        cfg["process"]["cwd"] = json!("/scratch/new/dir");
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]
        }));
    });
    assert_eq!(out, "/scratch/new/dir\n");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let out = run_script(
        "user_ids",
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo HOME=$HOME; id -u; id -g",
        |cfg| {
            cfg["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 27]});
        },
    );
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "Uid: 1000 1000 1000 1000",
            "Gid: 1001 1001 1001 1001",
            "Groups: 5 27",
            "HOME=/home/alice", // from /etc/passwd of the rootfs
            "1000",
            "1001"
        ],
        "{out}"
    );
}

#[test]
fn root_user_has_no_supplementary_groups() {
    let out = run_script(
        "root_groups",
        "grep -E '^Groups:' /proc/self/status",
        |_| {},
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["Groups:"]);
}

#[test]
fn unknown_uid_gets_home_slash() {
    // No passwd entry for the uid: runc sets HOME=/.
    let out = run_script("unknown_uid", "echo $HOME; id -u", |cfg| {
        cfg["process"]["user"] = json!({"uid": 4242, "gid": 4242});
    });
    assert_eq!(out, "/\n4242\n");
}

#[test]
fn umask_default_and_explicit() {
    assert_eq!(run_script("umask_default", "umask", |_| {}), "0022\n");
    let out = run_script("umask_explicit", "umask", |cfg| {
        cfg["process"]["user"]["umask"] = json!(0o077);
    });
    assert_eq!(out, "0077\n");
}

/// (soft, hard) of a /proc/self/limits row such as "Max open files".
fn limit(limits: &str, row: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no {row} in {limits}"));
    let f: Vec<&str> = line[row.len()..].split_whitespace().collect();
    (f[0].to_owned(), f[1].to_owned())
}

#[test]
fn rlimits_are_applied() {
    let out = run_script("rlimits", "cat /proc/self/limits", |cfg| {
        cfg["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
            {"type": "RLIMIT_NPROC", "soft": 50, "hard": 100},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ]);
    });
    assert_eq!(limit(&out, "Max open files"), ("512".into(), "2048".into()));
    assert_eq!(limit(&out, "Max processes"), ("50".into(), "100".into()));
    assert_eq!(limit(&out, "Max core file size"), ("0".into(), "0".into()));
}

#[test]
fn default_rlimit_nofile_is_1024() {
    let out = run_script("rlimit_default", "cat /proc/self/limits", |_| {});
    assert_eq!(
        limit(&out, "Max open files"),
        ("1024".into(), "1024".into())
    );
}

#[test]
fn rlimit_above_host_hard_limit_fails() {
    // The bounding set here lacks CAP_SYS_RESOURCE: raising a hard limit fails.
    let mut c = Container::new("rlimit_too_high");
    c.bundle.set_args(&["true"]);
    c.bundle.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1u64 << 40}
    ]);
    let out = c.run();
    assert_eq!(out.code(), 1, "{out}");
    // runc: ... error setting rlimit type 7: operation not permitted
    spec_tests::assert_one_line_naming(&out.stderr, &["rlimit"]);
    c.assert_clean();
}

#[test]
fn oom_score_adj() {
    let out = run_script("oom_score_adj", "cat /proc/self/oom_score_adj", |cfg| {
        cfg["process"]["oomScoreAdj"] = json!(123);
    });
    assert_eq!(out, "123\n");
}

#[test]
fn default_capabilities() {
    let out = run_script("caps_default", "cat /proc/self/status", |_| {});
    let want = mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(
        caps::from_status(&out),
        [
            // runc asks for these as ambient too, but a capability can only be ambient if it
            // is inheritable, and runc spec sets no inheritable set: so none.
            ("CapInh".to_owned(), 0),
            ("CapPrm".to_owned(), want),
            ("CapEff".to_owned(), want),
            ("CapBnd".to_owned(), want),
            ("CapAmb".to_owned(), 0),
        ]
    );
}

fn custom_caps(cfg: &mut serde_json::Value) {
    cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_NET_RAW"],
        "ambient": ["CAP_NET_RAW"]
    });
}

#[test]
fn custom_capabilities_as_root() {
    let out = run_script("caps_root", "cat /proc/self/status", custom_caps);
    let raw = mask(&["CAP_NET_RAW"]);
    let kill_raw = mask(&["CAP_KILL", "CAP_NET_RAW"]);
    assert_eq!(
        caps::from_status(&out),
        [
            ("CapInh".to_owned(), raw),
            // execve as uid 0 makes effective = permitted; no_new_privs keeps the bounding
            // set's CAP_SYS_ADMIN out of permitted.
            ("CapPrm".to_owned(), kill_raw),
            ("CapEff".to_owned(), kill_raw),
            (
                "CapBnd".to_owned(),
                mask(&["CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"])
            ),
            ("CapAmb".to_owned(), raw),
        ]
    );
}

#[test]
fn custom_capabilities_as_non_root() {
    let out = run_script("caps_nonroot", "cat /proc/self/status", |cfg| {
        custom_caps(cfg);
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let raw = mask(&["CAP_NET_RAW"]);
    assert_eq!(
        caps::from_status(&out),
        [
            ("CapInh".to_owned(), raw),
            // After execve a non-root process keeps only its ambient capabilities.
            ("CapPrm".to_owned(), raw),
            ("CapEff".to_owned(), raw),
            (
                "CapBnd".to_owned(),
                mask(&["CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"])
            ),
            ("CapAmb".to_owned(), raw),
        ]
    );
}

#[test]
fn unknown_capability_is_ignored() {
    // runc warns ("ignoring unknown or unavailable capabilities: [CAP_BOGUS]") and goes on.
    let mut c = Container::new("caps_unknown");
    c.bundle.set_script("grep CapBnd /proc/self/status");
    c.bundle.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_BOGUS"));
    let out = c.run();
    out.assert_success();
    let want = mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(out.stdout, format!("CapBnd:\t{want:016x}\n"));
    assert!(out.stderr.contains("CAP_BOGUS"), "{out}");
    c.assert_clean();
}

#[test]
fn no_new_privileges() {
    let on = run_script("nnp_on", "cat /proc/self/status", |_| {});
    assert_eq!(caps::status_field(&on, "NoNewPrivs"), "1");
    let off = run_script("nnp_off", "cat /proc/self/status", |cfg| {
        cfg["process"]["noNewPrivileges"] = json!(false);
    });
    assert_eq!(caps::status_field(&off, "NoNewPrivs"), "0");
}

#[test]
fn no_seccomp_without_config() {
    let out = run_script("no_seccomp", "cat /proc/self/status", |_| {});
    assert_eq!(caps::status_field(&out, "Seccomp"), "0");
}

#[test]
fn preserve_fds() {
    let mut c = Container::new("preserve_fds");
    // With --preserve-fds 1, fd 3 is passed and fd 4 is not.
    c.bundle.set_script(
        "echo via-fd3 >&3; if [ -e /proc/self/fd/4 ]; then echo fd4-leaked; else echo no-fd4; fi",
    );
    c.bundle.write_config();
    let fds = ExtraFds::new(2);
    let mut cmd = c.rt.command(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        c.bundle.path().to_str().unwrap(),
        &c.id,
    ]);
    fds.install(&mut cmd);
    let out = c.rt.output(cmd);
    out.assert_success();
    assert_eq!(out.stdout, "no-fd4\n");
    assert_eq!(fds.collect(), ["via-fd3\n", ""]);
    c.assert_clean();
}

#[test]
fn listen_fds_are_passed() {
    // Socket activation: with LISTEN_FDS=n and LISTEN_PID=<runtime pid> in the runtime's
    // environment, fds 3..3+n go to the container, with LISTEN_FDS=n and LISTEN_PID=1.
    let mut c = Container::new("listen_fds");
    c.bundle.set_script(
        "echo \"LISTEN_FDS=$LISTEN_FDS LISTEN_PID=$LISTEN_PID\"; echo via-listen-fd >&3",
    );
    c.bundle.write_config();
    let rt_cmd =
        c.rt.command(&["run", "--bundle", c.bundle.path().to_str().unwrap(), &c.id]);
    let mut cmd = as_listen_pid(&rt_cmd);
    cmd.env("LISTEN_FDS", "1");
    let fds = ExtraFds::new(1);
    fds.install(&mut cmd);
    let out = c.rt.output(cmd);
    out.assert_success();
    assert_eq!(out.stdout, "LISTEN_FDS=1 LISTEN_PID=1\n");
    assert_eq!(fds.collect(), ["via-listen-fd\n"]);
    c.assert_clean();
}

#[test]
fn terminal_via_console_socket() {
    let mut c = Container::new("console_socket");
    c.bundle.config["process"]["terminal"] = json!(true);
    c.bundle.set_script(
        "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo stdio-is-tty; \
         stat -c 'console=%t:%T' /dev/console; echo the-end",
    );
    let sock = ConsoleSocket::new();
    c.create_with_console(&sock).assert_success();
    let master = sock.receive(WAIT);
    c.start_ok();
    let got = read_until(&master, "the-end", WAIT);
    let lines: Vec<&str> = got.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines[0], "/dev/pts/0", "{got:?}");
    assert_eq!(lines[1], "stdio-is-tty", "{got:?}");
    // /dev/console is the pty (unix98 pty slaves are major 136 = 0x88).
    assert_eq!(lines[2], "console=88:0", "{got:?}");
    c.wait_exited();
    c.delete_ok();
}

/// Stdio that is the host's /dev/null (`run -d` with stdin /dev/null, which runc passes
/// through, as husk does) is reopened as the container's own /dev/null, on a mount the container
/// has (runc's reOpenDevNull). CRIU cannot dump a descriptor on a mount outside the container.
#[test]
fn host_dev_null_stdio_becomes_the_containers_own() {
    let mut c = Container::new("devnull_stdio");
    let shared = c.bundle.shared_dir();
    let mut fifo = spec_tests::Fifo::new(&shared.join("fifo"));
    c.bundle.set_script(
        "m=$(sed -n 's/^mnt_id:[[:space:]]*//p' /proc/self/fdinfo/0); \
         echo $(grep -c \"^$m \" /proc/self/mountinfo) $(readlink /proc/self/fd/0) \
         > /shared/fifo; exec sleep 1000",
    );
    c.run_detached_ok();
    fifo.expect_line("1 /dev/null");
    c.delete_force_ok();
}
