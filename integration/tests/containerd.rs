//! containerd 1.6 (Debian's) running containers through containerd-shim-husk-v2 with ctr.

use std::{fs, path::Path, time::Duration};

use integration::{wait_for, Containerd, Options, IMAGE, RUNTIME};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn run_rm_prints_output_and_returns_exit_code() {
    let c = Containerd::start("runrm");
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "t1",
        "echo",
        "hi",
    ]);
    assert_eq!(
        stdout(&out),
        "hi\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "t2",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Output written right before a quick exit is all there.
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "t4",
        "sh",
        "-c",
        "seq 1 20000",
    ]);
    assert_eq!(stdout(&out).lines().count(), 20000);
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shims left after --rm: {:?}",
        c.shims()
    );
}

#[test]
fn stdin_reaches_the_container_and_its_end_is_eof() {
    let c = Containerd::start("stdin");
    let out = c.ctr_stdin(
        &["run", "--rm", "--runtime", RUNTIME, IMAGE, "s1", "cat"],
        b"line one\nline two\n",
    );
    assert_eq!(
        stdout(&out),
        "line one\nline two\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    c.run_sleep("s2");
    let out = c.ctr_stdin(
        &[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "s2",
            "sh",
            "-c",
            "cat; echo end",
        ],
        b"via exec\n",
    );
    assert_eq!(
        stdout(&out),
        "via exec\nend\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn detached_task_exec_ps_pause_resume_kill_delete_with_events_in_order() {
    let mut c = Containerd::start("detached");
    c.watch_events();
    c.run_sleep("d1");
    c.wait_task_status("d1", "RUNNING");

    let out = c.ctr(&["task", "exec", "--exec-id", "e1", "d1", "echo", "from-exec"]);
    assert_eq!(stdout(&out), "from-exec\n");
    assert_eq!(out.status.code(), Some(0));
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e2",
        "d1",
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    // Killed by a signal: 128 + signal.
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e3",
        "d1",
        "sh",
        "-c",
        "kill -9 $$",
    ]);
    assert_eq!(out.status.code(), Some(137));

    let ps = c.ctr_ok(&["task", "ps", "d1"]);
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let task_pid = c
        .ctr_ok(&["task", "ls"])
        .lines()
        .find(|l| l.starts_with("d1"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(pids, [task_pid.as_str()], "ps: {ps}");

    // Stats, as ctr decodes them: cgroup v1's metrics type on a v1 host, v2's on a v2 host
    // (whose table has no memory.usage_in_bytes but memory.usage).
    let metrics = c.ctr_ok(&["task", "metrics", "d1"]);
    println!("ctr task metrics:\n{metrics}");
    let value = |key: &str| integration::metric(&metrics, key);
    assert_eq!(
        value("pids.current").as_deref(),
        Some("1"),
        "metrics: {metrics}"
    );
    let usage = if cgroup_v2() {
        assert!(value("cpu.usage_usec").is_some(), "metrics: {metrics}");
        value("memory.usage")
    } else {
        value("memory.usage_in_bytes")
    };
    let usage: u64 = usage
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no memory usage in the metrics: {metrics}"));
    assert!(usage > 0, "metrics: {metrics}");

    c.ctr_ok(&["task", "pause", "d1"]);
    c.wait_task_status("d1", "PAUSED");
    c.ctr_ok(&["task", "resume", "d1"]);
    c.wait_task_status("d1", "RUNNING");

    c.ctr_ok(&["task", "kill", "-s", "KILL", "d1"]);
    c.wait_task_status("d1", "STOPPED");
    c.ctr_ok(&["task", "delete", "d1"]);
    c.ctr_ok(&["container", "delete", "d1"]);

    let expected = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    assert!(
        wait_for(Duration::from_secs(10), || c.task_events("d1").len()
            >= expected.len()),
        "events: {:?}",
        c.task_events("d1")
    );
    assert_eq!(c.task_events("d1"), expected);
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shim left after delete: {:?}",
        c.shims()
    );
}

/// A container in the host's pid namespace: its init's exit does not end its other processes,
/// so the shim kills them (as the Go shim does) and reports their exits.
#[test]
fn processes_outliving_init_without_a_pid_namespace_are_killed() {
    let mut c = Containerd::start("sharedpid");
    // Not /proc/1's: this machine's PID 1 holds a capability root lacks, so it cannot be opened.
    let host_pid_ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    c.ctr_ok(&[
        "run",
        "-d",
        "--with-ns",
        &host_pid_ns,
        "--runtime",
        RUNTIME,
        IMAGE,
        "h1",
        "sleep",
        "1000",
    ]);
    c.wait_task_status("h1", "RUNNING");
    c.ctr_ok(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "e1",
        "h1",
        "sleep",
        "1001",
    ]);
    let pids = || -> Vec<String> {
        c.ctr_ok(&["task", "ps", "h1"])
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    assert!(wait_for(Duration::from_secs(10), || pids().len() == 2));
    let init = c.ctr_ok(&["task", "ls"]);
    let init_pid = init
        .lines()
        .find(|l| l.starts_with("h1 "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    let exec_pid = pids().into_iter().find(|p| *p != init_pid).unwrap();
    c.watch_events();
    c.ctr_ok(&["task", "kill", "-s", "KILL", "h1"]);
    c.wait_task_status("h1", "STOPPED");
    assert!(
        wait_for(Duration::from_secs(10), || !std::path::Path::new(&format!(
            "/proc/{exec_pid}"
        ))
        .exists()),
        "exec {exec_pid} outlived init: {:?}",
        fs::read_to_string(format!("/proc/{exec_pid}/cmdline"))
    );
    assert!(
        wait_for(Duration::from_secs(10), || c.task_events("h1").len() == 2),
        "events: {:?}",
        c.task_events("h1")
    );
    c.ctr_ok(&["task", "delete", "h1"]);
}

#[test]
fn kill_all_reaches_every_process_and_exec_kill_one() {
    let c = Containerd::start("killall");
    c.run_sleep("k1");
    c.wait_task_status("k1", "RUNNING");
    // A detached exec that ignores nothing: killed on its own, then the rest with --all.
    c.ctr_ok(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "e1",
        "k1",
        "sleep",
        "1000",
    ]);
    assert!(
        wait_for(Duration::from_secs(10), || c
            .ctr_ok(&["task", "ps", "k1"])
            .lines()
            .count()
            == 3),
        "ps: {}",
        c.ctr_ok(&["task", "ps", "k1"])
    );
    c.ctr_ok(&["task", "kill", "-s", "KILL", "--exec-id", "e1", "k1"]);
    assert!(
        wait_for(Duration::from_secs(10), || c
            .ctr_ok(&["task", "ps", "k1"])
            .lines()
            .count()
            == 2),
        "ps: {}",
        c.ctr_ok(&["task", "ps", "k1"])
    );
    c.ctr_ok(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "e2",
        "k1",
        "sleep",
        "1000",
    ]);
    c.ctr_ok(&["task", "kill", "-a", "-s", "KILL", "k1"]);
    c.wait_task_status("k1", "STOPPED");
    c.ctr_ok(&["task", "delete", "k1"]);
}

#[test]
fn terminal_run_gets_a_pty() {
    let c = Containerd::start("tty");
    let fifo = format!("{}/fifo", c.dir.display());
    let out = c.ctr_in_terminal(&[
        "run",
        "--fifo-dir",
        &fifo,
        "-t",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "t1",
        "sh",
        "-c",
        "tty; exit 7",
    ]);
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/0"), "output: {text:?}");
    // ctr resizes the terminal to its own (ResizePty) and logs a failure.
    assert!(!text.contains("resize"), "output: {text:?}");
    assert_eq!(out.status.code(), Some(7), "output: {text:?}");

    c.run_sleep("t2");
    let out = c.ctr_in_terminal(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifo,
        "-t",
        "--exec-id",
        "e1",
        "t2",
        "sh",
        "-c",
        "tty; exit 9",
    ]);
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "output: {text:?}");
    assert!(!text.contains("resize"), "output: {text:?}");
    assert_eq!(out.status.code(), Some(9), "output: {text:?}");
}

#[test]
fn containers_of_one_group_share_one_shim() {
    let c = Containerd::start("group");
    let group = "io.containerd.runc.v2.group=pod1";
    for id in ["g1", "g2"] {
        c.ctr_ok(&[
            "run",
            "-d",
            "--annotation",
            group,
            "--runtime",
            RUNTIME,
            IMAGE,
            id,
            "sleep",
            "1000",
        ]);
        c.wait_task_status(id, "RUNNING");
    }
    assert_eq!(c.shims().len(), 1, "shims: {:?}", c.shims());
    // `start` wrote the one shim's address into each bundle.
    let address = |id: &str| {
        let bundle = c
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&c.ns)
            .join(id);
        fs::read_to_string(bundle.join("address")).unwrap()
    };
    assert!(
        address("g1").starts_with("unix:///run/containerd/s/"),
        "{}",
        address("g1")
    );
    assert_eq!(address("g1"), address("g2"));
    let out = c.ctr(&["task", "exec", "--exec-id", "x", "g2", "echo", "in-g2"]);
    assert_eq!(stdout(&out), "in-g2\n");
    // A third container without the annotation gets its own.
    c.run_sleep("solo");
    c.wait_task_status("solo", "RUNNING");
    assert_eq!(c.shims().len(), 2, "shims: {:?}", c.shims());
    for id in ["g1", "g2", "solo"] {
        c.ctr_ok(&["task", "kill", "-s", "KILL", id]);
        c.wait_task_status(id, "STOPPED");
        c.ctr_ok(&["task", "delete", id]);
    }
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shims left: {:?}",
        c.shims()
    );
}

/// runc's options (BinaryName, Root) reach the shim: ctr sends them only to the runtime named
/// io.containerd.runc.v2, which this containerd serves with our shim.
#[test]
fn runc_options_binary_name_and_root_drive_runc() {
    let c = Containerd::start_with(
        "runc",
        Options {
            runc_v2_is_husk_shim: true,
            ..Options::default()
        },
    );
    let runc_root = c.dir.join("runc-root");
    let root = runc_root.to_str().unwrap();
    let runc = [
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        "runc",
        "--runc-root",
        root,
    ];

    let mut args = vec!["run", "--rm"];
    args.extend(runc);
    args.extend([IMAGE, "r1", "sh", "-c", "echo hi; exit 4"]);
    let out = c.ctr(&args);
    assert_eq!(
        stdout(&out),
        "hi\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(4));

    // A wrapper as BinaryName shows the command lines the shim gives the runtime.
    let wrapper = c.dir.join("bin/runc-logged");
    let log = c.dir.join("runc-args.log");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec runc \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut args = vec!["run", "-d"];
    args.extend([
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        wrapper.to_str().unwrap(),
        "--runc-root",
        root,
    ]);
    args.extend([IMAGE, "r2", "sleep", "1000"]);
    c.ctr_ok(&args);
    c.wait_task_status("r2", "RUNNING");
    let shims = c.shims();
    assert_eq!(shims.len(), 1);
    let exe = fs::read_link(format!("/proc/{}/exe", shims[0])).unwrap();
    assert_eq!(
        exe,
        fs::canonicalize(integration::shim_bin()).unwrap(),
        "the shim is ours"
    );
    let out = c.ctr(&["task", "exec", "--exec-id", "e1", "r2", "echo", "exec-runc"]);
    assert_eq!(stdout(&out), "exec-runc\n");
    c.ctr_ok(&["task", "pause", "r2"]);
    c.ctr_ok(&["task", "resume", "r2"]);
    c.ctr_ok(&["task", "kill", "-s", "KILL", "r2"]);
    c.wait_task_status("r2", "STOPPED");
    c.ctr_ok(&["task", "delete", "r2"]);

    let logged = fs::read_to_string(&log).unwrap();
    let bundle = c
        .dir
        .join("state/io.containerd.runtime.v2.task")
        .join(&c.ns)
        .join("r2");
    let prefix = format!(
        "--root {root}/{} --log {}/log.json --log-format json",
        c.ns,
        bundle.display()
    );
    let commands: Vec<&str> = logged
        .lines()
        .map(|l| {
            assert!(
                l.starts_with(&prefix),
                "{l:?} does not start with {prefix:?}"
            );
            l[prefix.len()..].split_whitespace().next().unwrap_or("")
        })
        .collect();
    // containerd 1.6 then runs the shim's `delete` action (as it does with the Go shim), whose
    // `delete --force` finds nothing left.
    let n = if logged.trim_end().ends_with("delete --force r2") {
        commands.len() - 1
    } else {
        commands.len()
    };
    assert_eq!(
        commands[..n],
        ["create", "start", "exec", "pause", "resume", "kill", "delete"],
        "{logged}"
    );
    assert!(
        logged.contains(&format!("create --bundle {} --pid-file", bundle.display())),
        "{logged}"
    );
    assert!(logged.contains("exec --process"), "{logged}");
    assert!(logged.contains("--detach --pid-file"), "{logged}");
}

#[test]
fn missing_runtime_binary_is_an_error_and_leaves_nothing() {
    let c = Containerd::start("badbin");
    let args = [
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        "no-such-runtime",
        IMAGE,
        "b1",
        "true",
    ];
    let out = c.ctr(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no-such-runtime") && err.contains("not found"),
        "stderr: {err}"
    );
    c.assert_no_shim_or_mount_left();
}

/// Short-lived exec processes often exit before the runtime's `exec` has returned: each exit
/// must still reach its own process.
#[test]
fn quick_execs_each_get_their_own_exit_status() {
    let c = Containerd::start("quickexec");
    c.run_sleep("q1");
    c.wait_task_status("q1", "RUNNING");
    for i in 0..20 {
        let (id, script) = (format!("x{i}"), format!("exit {i}"));
        let out = c.ctr(&["task", "exec", "--exec-id", &id, "q1", "sh", "-c", &script]);
        assert_eq!(
            out.status.code(),
            Some(i),
            "exec {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    c.ctr_ok(&["task", "kill", "-s", "KILL", "q1"]);
    c.wait_task_status("q1", "STOPPED");
    c.ctr_ok(&["task", "delete", "q1"]);
}

/// A shim killed with SIGKILL: containerd runs the shim binary's `delete`, which force-deletes
/// the container with its runtime (the container's init, orphaned, would run on) and unmounts
/// its rootfs; containerd then publishes the exit and the delete in the shim's place.
#[test]
fn a_killed_shim_is_cleaned_up_by_its_delete() {
    let mut c = Containerd::start("deadshim");
    c.run_sleep("ds1");
    c.wait_task_status("ds1", "RUNNING");
    let pid: i32 = c
        .ctr_ok(&["task", "ls"])
        .lines()
        .find_map(|l| {
            l.strip_prefix("ds1 ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .expect("the task's pid");
    let state = format!("/run/containerd/husk/{}/ds1", c.ns);
    assert!(Path::new(&state).is_dir(), "{state}");
    c.watch_events();
    for shim in c.shims() {
        // SAFETY: kill of a pid just read from /proc; a stale one fails harmlessly.
        unsafe { libc::kill(shim, libc::SIGKILL) };
    }
    assert!(
        wait_for(Duration::from_secs(20), || c.task_events("ds1")
            == ["/tasks/exit", "/tasks/delete"]),
        "events: {:?}",
        c.task_events("ds1")
    );
    // The orphaned init came to this process, a subreaper: killed, it is reaped here.
    assert!(
        wait_for(Duration::from_secs(10), || {
            integration::reap_all();
            !Path::new(&format!("/proc/{pid}")).exists()
        }),
        "the container's init {pid} still runs"
    );
    assert!(!Path::new(&state).exists(), "{state} left behind");
    assert_eq!(c.task_status("ds1"), None);
    c.assert_no_shim_or_mount_left();
    c.ctr_ok(&["container", "delete", "ds1"]);
}

/// containerd killed with SIGKILL: the container keeps running under its shim, and a new
/// containerd finds it, execs in it, sees its exit and deletes it.
#[test]
fn containers_survive_containerd_kill9_and_a_new_containerd_reconnects() {
    let mut c = Containerd::start("restart");
    c.run_sleep("r1");
    c.wait_task_status("r1", "RUNNING");
    let shims = c.shims();
    c.kill9_and_restart();
    assert_eq!(c.shims(), shims, "the shim lives on");
    c.wait_task_status("r1", "RUNNING");
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "r1",
        "echo",
        "after-restart",
    ]);
    assert_eq!(
        stdout(&out),
        "after-restart\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    c.watch_events();
    c.ctr_ok(&["task", "kill", "-s", "KILL", "r1"]);
    c.wait_task_status("r1", "STOPPED");
    c.ctr_ok(&["task", "delete", "r1"]);
    // The shim publishes to the new containerd too.
    assert!(
        wait_for(Duration::from_secs(10), || c.task_events("r1").ends_with(
            &["/tasks/exit".to_string(), "/tasks/delete".to_string()]
        )),
        "events: {:?}",
        c.task_events("r1")
    );
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shim left: {:?}",
        c.shims()
    );
}

/// `ctr --runtime-config-path` sends the CRI plugin's options type with a ConfigPath: the shim
/// reads runc's options from that TOML file. A missing file, or a key that is not one of runc's
/// options, is refused with a line ctr shows, naming the file and the key, and nothing is left.
#[test]
fn runtime_config_path_is_read_and_bad_options_are_refused_leaving_nothing() {
    let c = Containerd::start("badopts");
    let cfg = c.dir.join("runtime.toml");
    let run = |id: &str, cmd: &str| {
        c.ctr(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            "--runtime-config-path",
            cfg.to_str().unwrap(),
            IMAGE,
            id,
            "sh",
            "-c",
            cmd,
        ])
    };
    let assert_nothing_left = || {
        c.assert_no_shim_or_mount_left();
        assert!(
            fs::read_dir(format!("/run/containerd/husk/{}", c.ns))
                .map_or(true, |mut d| d.next().is_none()),
            "runtime state left"
        );
    };
    let refused = |id: &str, want: &str| {
        let out = run(id, "true");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(want), "stderr: {err}");
        assert_nothing_left();
    };
    refused(
        "o1",
        &format!(
            "runtime options: ConfigPath {}: No such file or directory",
            cfg.display()
        ),
    );
    fs::write(&cfg, "SystemdCgroup = true\nNoPivot = true\n").unwrap();
    refused(
        "o2",
        &format!(
            "runtime options: ConfigPath {}: unknown option \"NoPivot\"",
            cfg.display()
        ),
    );
    // Root from the file: husk keeps the container's state there while it runs.
    let root = c.dir.join("alt-root");
    fs::write(&cfg, format!("Root = \"{}\"\n", root.display())).unwrap();
    let state = root.join(&c.ns).join("o3");
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        cfg.to_str().unwrap(),
        IMAGE,
        "o3",
        "sleep",
        "1000",
    ]);
    c.wait_task_status("o3", "RUNNING");
    assert!(state.is_dir(), "husk keeps no state in {}", state.display());
    c.ctr_ok(&["task", "kill", "-s", "KILL", "o3"]);
    c.wait_task_status("o3", "STOPPED");
    c.ctr_ok(&["task", "delete", "o3"]);
    c.ctr_ok(&["container", "delete", "o3"]);
    assert!(!state.exists(), "state left in {}", state.display());
    assert_nothing_left();
}

/// A runtime that hangs is killed after the shim's timeout; ctr shows why, and nothing is left.
#[test]
fn a_hanging_runtime_is_killed_and_reported() {
    let c = Containerd::start_with(
        "hang",
        Options {
            env: vec![("HUSK_SHIM_RUNTIME_TIMEOUT", "3")],
            runc_v2_is_husk_shim: true,
            ..Options::default()
        },
    );
    let hanging = c.dir.join("bin/husk-hangs-in-create");
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in *\" create \"*) exec sleep 1000;; esac\nexec {} \"$@\"\n",
        integration::husk_bin().display()
    );
    fs::write(&hanging, script).unwrap();
    fs::set_permissions(
        &hanging,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let args = [
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        hanging.to_str().unwrap(),
        IMAGE,
        "h1",
        "true",
    ];
    let out = c.ctr(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("did not finish within 3s"), "stderr: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    c.assert_no_shim_or_mount_left();
}

/// `--log-uri file://...`: stdout and stderr appended to the file, as the Go shim does.
#[test]
fn file_log_uri_gets_stdout_and_stderr() {
    let c = Containerd::start("filelog");
    let log = c.dir.join("logs/f1.log");
    let uri = format!("file://{}", log.display());
    c.ctr_ok(&[
        "run",
        "-d",
        "--log-uri",
        &uri,
        "--runtime",
        RUNTIME,
        IMAGE,
        "f1",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    c.wait_task_status("f1", "STOPPED");
    c.ctr_ok(&["task", "delete", "f1"]);
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("out\n") && text.contains("err\n"),
        "log: {text:?}"
    );
}

/// `--log-uri binary://...` (Docker's and nerdctl's loggers): the binary gets stdout on fd 3,
/// stderr on fd 4, the query as arguments and the container's id and namespace in its
/// environment, and the container starts once it has closed fd 5.
#[test]
fn binary_log_uri_runs_the_logger() {
    let c = Containerd::start("binlog");
    let dir = c.dir.join("logger");
    fs::create_dir_all(&dir).unwrap();
    let logger = dir.join("logger.sh");
    let d = dir.display();
    fs::write(
        &logger,
        format!(
            "#!/bin/sh\necho \"$* $CONTAINER_ID $CONTAINER_NAMESPACE\" > {d}/args\nexec 5>&-\n\
             cat <&3 > {d}/out.tmp & cat <&4 > {d}/err.tmp\nwait\n\
             mv {d}/out.tmp {d}/out; mv {d}/err.tmp {d}/err\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uri = format!("binary://{}?--tag=web", logger.display());
    c.ctr_ok(&[
        "run",
        "-d",
        "--log-uri",
        &uri,
        "--runtime",
        RUNTIME,
        IMAGE,
        "b1",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    c.wait_task_status("b1", "STOPPED");
    c.ctr_ok(&["task", "delete", "b1"]);
    assert!(
        wait_for(Duration::from_secs(10), || dir.join("out").exists()
            && dir.join("err").exists()),
        "the logger never saw EOF"
    );
    assert_eq!(fs::read_to_string(dir.join("out")).unwrap(), "out\n");
    assert_eq!(fs::read_to_string(dir.join("err")).unwrap(), "err\n");
    assert_eq!(
        fs::read_to_string(dir.join("args")).unwrap(),
        format!("--tag web b1 {}\n", c.ns)
    );
}

/// A container killed by its memory limit: exit status 137 and a /tasks/oom event (cgroup v1:
/// memory.oom_control's eventfd; v2: memory.events' oom_kill).
#[test]
fn oom_kill_is_an_oom_event() {
    if !cgroup_v2() && !Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists() {
        println!("skipped: neither cgroup v2 nor a cgroup v1 memory controller");
        return;
    }
    let mut c = Containerd::start("oom");
    c.watch_events();
    let args = [
        "run",
        "--rm",
        "--memory-limit",
        "33554432",
        "--runtime",
        RUNTIME,
        IMAGE,
        "m1",
        "sh",
        "-c",
        "a=x; while :; do a=$a$a; done",
    ];
    let out = c.ctr(&args);
    assert_eq!(
        out.status.code(),
        Some(137),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_for(Duration::from_secs(10), || c
            .task_events("m1")
            .contains(&"/tasks/oom".to_string())),
        "events: {:?}",
        c.task_events("m1")
    );
    println!("events: {:?}", c.task_events("m1"));
}

/// The shim's own answers, over its socket (what ctr cannot send): Connect, Update, and "not
/// implemented" (not NOT_FOUND, the generated stubs' answer) for what the shim lacks.
#[test]
fn the_shims_rpcs_answer_as_the_protocol_requires() {
    use containerd_shim_protos::{
        shim::shim::{CheckpointTaskRequest, ConnectRequest, StateRequest, UpdateTaskRequest},
        ttrpc::{self, context::with_timeout, Code},
        TaskClient,
    };
    let c = Containerd::start("rpcs");
    c.run_sleep("p1");
    c.wait_task_status("p1", "RUNNING");
    let bundle = c
        .dir
        .join("state/io.containerd.runtime.v2.task")
        .join(&c.ns)
        .join("p1");
    let address = fs::read_to_string(bundle.join("address")).unwrap();
    let client = TaskClient::new(ttrpc::Client::connect(&address).unwrap());
    let ctx = || with_timeout(10_000_000_000);
    let code = |r: ttrpc::Error| match r {
        ttrpc::Error::RpcStatus(s) => s.code(),
        e => panic!("not a status: {e:?}"),
    };

    let task_pid: u32 = c
        .ctr_ok(&["task", "ls"])
        .lines()
        .find(|l| l.starts_with("p1"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let r = client
        .connect(
            ctx(),
            &ConnectRequest {
                id: "p1".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(c.shims(), [r.shim_pid as i32]);
    assert_eq!(r.task_pid, task_pid);

    // Without an image directory, from containerd or from runc's options.
    let req = CheckpointTaskRequest {
        id: "p1".into(),
        ..Default::default()
    };
    assert_eq!(
        code(client.checkpoint(ctx(), &req).unwrap_err()),
        Code::INVALID_ARGUMENT
    );

    // Update: containerd's Any of a runtime-spec LinuxResources, in JSON.
    let resources = containerd_shim_protos::protobuf::well_known_types::any::Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
        value: br#"{"memory":{"limit":67108864},"pids":{"limit":99}}"#.to_vec(),
        ..Default::default()
    };
    let req = UpdateTaskRequest {
        id: "p1".into(),
        resources: Some(resources).into(),
        ..Default::default()
    };
    client.update(ctx(), &req).unwrap();
    let cgroup = |controller: &str| {
        let lines = fs::read_to_string(format!("/proc/{task_pid}/cgroup")).unwrap();
        lines.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            controllers
                .split(',')
                .any(|x| x == controller)
                .then(|| format!("/sys/fs/cgroup/{controller}{path}"))
        })
    };
    if let Some(mem) = cgroup("memory") {
        assert_eq!(
            fs::read_to_string(format!("{mem}/memory.limit_in_bytes"))
                .unwrap()
                .trim(),
            "67108864"
        );
        let pids = cgroup("pids").unwrap();
        assert_eq!(
            fs::read_to_string(format!("{pids}/pids.max"))
                .unwrap()
                .trim(),
            "99"
        );
    } else {
        println!("skipped the cgroup check of Update: no cgroup v1 memory controller");
    }

    let req = StateRequest {
        id: "nope".into(),
        ..Default::default()
    };
    assert_eq!(
        code(client.state(ctx(), &req).unwrap_err()),
        Code::NOT_FOUND
    );
    let req = StateRequest {
        id: "p1".into(),
        exec_id: "nope".into(),
        ..Default::default()
    };
    assert_eq!(
        code(client.state(ctx(), &req).unwrap_err()),
        Code::NOT_FOUND
    );
}

/// runc's options' IoUid/IoGid: the container's stdio pipes belong to them, as with the Go shim
/// (for user-namespaced containers, whose root is not the host's). Without them the container
/// writes straight into the FIFOs that ctr made, root's. Either way the runtime then gives its
/// process's user the files (runc's fixStdioPermissions), keeping their group.
#[test]
fn io_uid_and_gid_own_the_containers_stdio() {
    use containerd_shim_protos::{protobuf::Message, shim::oci::Options as RuncOptions};
    let c = Containerd::start("iouid");
    let script = "stat -L -c %u:%g /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2 >&2; cat";
    for (id, (uid, gid), want) in [
        ("u1", (2000, 3000), "1000:3000\n1000:3000\n1000:3000\nin\n"),
        ("u2", (0, 0), "1000:0\n1000:0\n1000:0\nin\n"),
    ] {
        let options = RuncOptions {
            io_uid: uid,
            io_gid: gid,
            ..Default::default()
        };
        c.create_with_options(id, &options.write_to_bytes().unwrap(), |spec| {
            spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
            spec["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        });
        let out = c.ctr_stdin(&["task", "start", id], b"in\n");
        // ctr copies the container's stderr to its own.
        let both = String::from_utf8_lossy(&out.stderr).into_owned() + &stdout(&out);
        assert_eq!(
            both,
            want,
            "{id} stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `task start` without -d deleted the task once it exited.
        c.ctr_ok(&["container", "delete", id]);
    }
}

/// A pure cgroup v2 host (cgroup2 at /sys/fs/cgroup), where the shim answers with v2's types.
fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
