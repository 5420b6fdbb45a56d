//! containerd 1.7 (Debian 13's, unpacked by scripts/install-containerd17.sh beside Debian 12's
//! 1.6) running containers through containerd-shim-husk-v2. The whole containerd.rs suite runs
//! against it too with CONTAINERD_BIN=/var/cache/husk/containerd-1.7/usr/bin/containerd.

use std::{path::PathBuf, time::Duration};

use integration::{wait_for, Containerd, Options, CONTAINERD17, IMAGE, RUNTIME};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start(name: &str) -> Option<Containerd> {
    if !std::path::Path::new(CONTAINERD17).exists() {
        println!("skipped: no containerd 1.7 at {CONTAINERD17} (scripts/install-containerd17.sh)");
        return None;
    }
    let c = Containerd::start_with(
        name,
        Options {
            containerd: Some(PathBuf::from(CONTAINERD17)),
            ..Options::default()
        },
    );
    let version = c.ctr_ok(&["version"]);
    assert!(version.contains("Version:  1.7."), "{version}");
    Some(c)
}

#[test]
fn containerd17_runs_execs_kills_and_deletes_with_events_in_order() {
    let Some(mut c) = start("c17") else { return };
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "r1",
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(
        stdout(&out),
        "hi\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3));

    c.watch_events();
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        "d1",
        "sleep",
        "1000",
    ]);
    c.wait_task_status("d1", "RUNNING");
    let out = c.ctr(&["task", "exec", "--exec-id", "e1", "d1", "echo", "from-exec"]);
    assert_eq!(stdout(&out), "from-exec\n");
    assert_eq!(out.status.code(), Some(0));
    c.ctr_ok(&["task", "pause", "d1"]);
    c.wait_task_status("d1", "PAUSED");
    c.ctr_ok(&["task", "resume", "d1"]);
    c.wait_task_status("d1", "RUNNING");
    c.ctr_ok(&["task", "kill", "-s", "KILL", "d1"]);
    c.wait_task_status("d1", "STOPPED");
    c.ctr_ok(&["task", "delete", "d1"]);
    let expected = [
        "/tasks/create",
        "/tasks/start",
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

#[test]
fn containerd17_terminal_run_gets_a_pty() {
    let Some(c) = start("c17tty") else { return };
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
    assert!(!text.contains("resize"), "output: {text:?}");
    assert_eq!(out.status.code(), Some(7), "output: {text:?}");
}
