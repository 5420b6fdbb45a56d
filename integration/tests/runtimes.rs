//! One shim, three runtimes: runc's options type (`containerd.runc.v1.Options`: BinaryName,
//! Root) makes the shim of `io.containerd.husk.v2` drive runc or crun instead of husk.
//!
//! ctr sends runc's options only to the runtime named io.containerd.runc.v2, so the container
//! is made through containerd's Containers API (Containerd::create_with_runc_options), and ctr
//! starts, execs in, kills and deletes its task. That name stays the Go shim's here.

use std::{fs, path::Path, time::Duration};

use integration::{wait_for, Containerd, Options};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why the runtime cannot run here, when it says so: crun 1.8 refuses a cgroup v1 host whose
/// cgroup2 at /sys/fs/cgroup/unified still holds a controller (hugetlb, unless a v1 hierarchy
/// has it), and runtime-spec versions after 1.1 (containerd 1.7 writes 1.2.0).
fn refusal(stderr: &str) -> Option<String> {
    if stderr.contains("hybrid mode not supported") {
        let controllers =
            fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
        return Some(format!(
            "the runtime refuses this cgroup hybrid host ({}): controllers on the cgroup2 at \
             /sys/fs/cgroup/unified: {:?}; a v1 hierarchy for them (mkdir \
             /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup \
             /sys/fs/cgroup/hugetlb) lets it run",
            stderr.trim(),
            controllers.trim()
        ));
    }
    stderr.contains("unknown version specified").then(|| {
        format!(
            "the runtime refuses the spec's ociVersion: {}",
            stderr.trim()
        )
    })
}

/// Runs a container to its exit, then one that it execs in, kills and deletes, with `binary`
/// chosen by runc's options, and checks that the runtime's own state (`state_file` in its
/// container directory) was under the Root it was given.
fn drives(name: &str, binary: &str, state_file: &str) {
    if !Path::new(binary).exists() {
        println!("skipped: {binary} is not installed");
        return;
    }
    let c = Containerd::start_with(
        name,
        Options {
            runc_v2_is_husk_shim: false,
            ..Options::default()
        },
    );
    let root = c.dir.join(format!("{name}-root"));
    let root_s = root.to_str().unwrap();

    c.create_with_runc_options("r1", binary, root_s, &["sh", "-c", "echo hi; exit 4"]);
    let out = c.ctr(&["task", "start", "r1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if let Some(why) = refusal(&err) {
        println!("skipped: {binary}: {why}");
        return;
    }
    assert_eq!(stdout(&out), "hi\n", "stderr: {err}");
    assert_eq!(out.status.code(), Some(4), "stderr: {err}");
    c.ctr_ok(&["container", "delete", "r1"]);

    c.create_with_runc_options("r2", binary, root_s, &["sleep", "1000"]);
    c.ctr_ok(&["task", "start", "-d", "r2"]);
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
    c.ctr_ok(&["container", "delete", "r2"]);
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shim left after delete: {:?}",
        c.shims()
    );
}

#[test]
fn the_husk_shim_drives_runc_by_binary_name() {
    drives("runc", "/usr/sbin/runc", "state.json");
}

#[test]
fn the_husk_shim_drives_crun_by_binary_name() {
    drives("crun", "/usr/bin/crun", "status");
}
