//! One shim, two runtimes: runc's options type (BinaryName, Root) makes containerd-shim-husk-v2
//! drive runc or crun instead of husk.
//!
//! ctr sends runc's options (`--runc-binary`, `--runc-root`) only to the runtime named
//! io.containerd.runc.v2, so that name is served by our shim here (the harness's
//! `runc_v2_is_husk_shim`); each test checks that the shim that ran is ours.

use std::{fs, path::Path, time::Duration};

use integration::{wait_for, Containerd, IMAGE};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why crun 1.8 cannot run on this host, when it cannot: on a cgroup v1 host with a cgroup2 at
/// /sys/fs/cgroup/unified, it refuses while any controller (here hugetlb, which no v1 hierarchy
/// holds) is available on that cgroup2.
fn crun_refusal(stderr: &str) -> Option<String> {
    if !stderr.contains("hybrid mode not supported") {
        return None;
    }
    let controllers =
        fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    Some(format!(
        "crun refuses this cgroup hybrid host (\"{}\"): controllers on the cgroup2 at \
         /sys/fs/cgroup/unified: {:?}; mounting a v1 hierarchy for them (mkdir \
         /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb) \
         lets it run",
        stderr.trim(),
        controllers.trim()
    ))
}

/// Runs, execs in, kills and deletes containers with `binary` chosen by runc's options, and
/// checks that the runtime's state (`state_file` of its container directory) was under `Root`.
fn drives(name: &str, binary: &str, state_file: &str) {
    if !Path::new(binary).exists() {
        println!("skipped: {binary} is not installed");
        return;
    }
    let c = Containerd::start(name);
    let root = c.dir.join(format!("{name}-root"));
    let root_s = root.to_str().unwrap();
    let rt = [
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        binary,
        "--runc-root",
        root_s,
    ];
    let with = |head: &[&'static str], tail: &[&str]| -> Vec<String> {
        head.iter()
            .chain(rt.iter())
            .chain(std::iter::once(&IMAGE))
            .chain(tail.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| c.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let out = run(with(
        &["run", "--rm"],
        &["r1", "sh", "-c", "echo hi; exit 4"],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    // crun 1.8 knows runtime-spec versions up to 1.1; containerd 1.7 writes ociVersion 1.2.0.
    if err.contains("unknown version specified") {
        println!(
            "skipped: {binary} refuses the spec's ociVersion: {}",
            err.trim()
        );
        return;
    }
    if let Some(why) = crun_refusal(&err) {
        println!("skipped: {why}");
        return;
    }
    assert_eq!(stdout(&out), "hi\n", "stderr: {err}");
    assert_eq!(out.status.code(), Some(4), "stderr: {err}");

    let out = run(with(&["run", "-d"], &["r2", "sleep", "1000"]));
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_task_status("r2", "RUNNING");
    let shims = c.shims();
    assert_eq!(shims.len(), 1, "shims: {shims:?}");
    assert_eq!(
        fs::read_link(format!("/proc/{}/exe", shims[0])).unwrap(),
        fs::canonicalize(integration::shim_bin()).unwrap(),
        "the shim is ours"
    );
    // The chosen runtime keeps its state under Root/<namespace>/<id>, in its own format.
    let state = root.join(&c.ns).join("r2");
    assert!(
        state.join(state_file).exists(),
        "no {state_file} in {}: {:?}",
        state.display(),
        fs::read_dir(&state).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );

    let out = c.ctr(&["task", "exec", "--exec-id", "e1", "r2", "echo", "from-exec"]);
    assert_eq!(stdout(&out), "from-exec\n");
    assert_eq!(out.status.code(), Some(0));
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e2",
        "r2",
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));

    c.ctr_ok(&["task", "kill", "-s", "KILL", "r2"]);
    c.wait_task_status("r2", "STOPPED");
    c.ctr_ok(&["task", "delete", "r2"]);
    assert!(!state.exists(), "{} left after delete", state.display());
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shim left after delete: {:?}",
        c.shims()
    );
}

#[test]
fn the_shim_drives_runc_by_binary_name() {
    drives("runc", "/usr/sbin/runc", "state.json");
}

#[test]
fn the_shim_drives_crun_by_binary_name() {
    drives("crun", "/usr/bin/crun", "status");
}
