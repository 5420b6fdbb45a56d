//! Checkpoint and restore through containerd and the shim (`ctr containers checkpoint --task`
//! and `ctr containers restore --live`): containerd asks the shim's Checkpoint for an image
//! directory it then stores as a checkpoint image, and a Create given that checkpoint, which
//! the shim turns into the runtime's `restore` at Start.
//!
//! Skipped, saying why, without a CRIU 4 that passes `criu check` (scripts/install-criu.sh).

use std::{process::Command, time::Duration};

use integration::{wait_for, Containerd, IMAGE, RUNTIME};

fn criu_missing() -> Option<String> {
    let out = Command::new("criu").arg("check").output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "criu check failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("criu: {e} (scripts/install-criu.sh installs it)")),
    }
}

fn counter(c: &Containerd, id: &str) -> u64 {
    let out = c.ctr_ok(&["task", "exec", "--exec-id", "read", id, "cat", "/n"]);
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("counter {out:?}: {e}"))
}

/// A counter that runs on after a checkpoint, in a new container restored from it after the
/// first was removed: it goes on from where it was, not from 0.
fn counter_goes_on(name: &str, runtime: &str, runtime_args: &[&str]) {
    if let Some(why) = criu_missing() {
        println!("skipped: {why}");
        return;
    }
    let mut c = Containerd::start(name);
    let mut run = vec!["run", "-d", "--runtime", runtime];
    run.extend(runtime_args);
    run.extend([
        IMAGE,
        "k1",
        "sh",
        "-c",
        // Renamed into place: a reader never sees the file truncated half-way.
        "i=0; while :; do i=$((i+1)); echo $i > /n.new; mv /n.new /n; sleep 0.05; done",
    ]);
    c.ctr_ok(&run);
    c.wait_task_status("k1", "RUNNING");
    c.watch_events();
    // Far from 0, so that a container started afresh instead of restored shows.
    assert!(wait_for(Duration::from_secs(20), || {
        let out = c.ctr(&["task", "exec", "--exec-id", "r0", "k1", "cat", "/n"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .is_ok_and(|n| n >= 40)
    }));
    let out = c.ctr(&[
        "container",
        "checkpoint",
        "--task",
        "--rw",
        "k1",
        "husk.test/ckpt:1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The shim keeps CRIU's log in the bundle and names it.
    let log = err
        .split("path= ")
        .nth(1)
        .and_then(|p| p.split(':').next())
        .and_then(|p| std::fs::read_to_string(p.trim()).ok())
        .unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    assert!(
        out.status.success(),
        "{err}\nCRIU's log ends:\n{}",
        tail.join("\n")
    );
    let at_checkpoint = counter(&c, "k1");
    assert!(
        wait_for(Duration::from_secs(10), || c
            .task_events("k1")
            .contains(&"/tasks/checkpointed".to_string())),
        "events: {:?}",
        c.task_events("k1")
    );
    c.ctr_ok(&["task", "kill", "-s", "KILL", "k1"]);
    c.wait_task_status("k1", "STOPPED");
    c.ctr_ok(&["task", "delete", "k1"]);
    c.ctr_ok(&["container", "delete", "k1"]);

    c.ctr_ok(&[
        "container",
        "restore",
        "--live",
        "--rw",
        "k1",
        "husk.test/ckpt:1",
    ]);
    c.wait_task_status("k1", "RUNNING");
    let restored = counter(&c, "k1");
    // It counts on from its checkpoint (each step takes 50 ms; 400 of them is 20 s).
    assert!(
        (40..=at_checkpoint + 400).contains(&restored),
        "restored counter {restored}, {at_checkpoint} just after the checkpoint"
    );
    // It runs on.
    assert!(
        wait_for(Duration::from_secs(10), || counter(&c, "k1") > restored),
        "the restored counter is stuck at {restored}"
    );
    c.ctr_ok(&["task", "kill", "-s", "KILL", "k1"]);
    c.wait_task_status("k1", "STOPPED");
    c.ctr_ok(&["task", "delete", "k1"]);
}

#[test]
fn checkpoint_and_restore_through_the_shim_with_husk() {
    counter_goes_on("ckpt-husk", RUNTIME, &[]);
}

/// runc's options reach the shim under the runtime name io.containerd.runc.v2 (the harness
/// serves it with our shim too), and with them containerd sends runc's CheckpointOptions.
#[test]
fn checkpoint_and_restore_through_the_shim_with_runc() {
    counter_goes_on(
        "ckpt-runc",
        "io.containerd.runc.v2",
        &["--runc-binary", "/usr/sbin/runc"],
    );
}

/// runc options' CriuPath reaches the runtime as `--criu` (go-runc's way), so the CRIU that
/// checkpoints is the one named.
#[test]
fn criu_path_names_the_criu_that_checkpoints() {
    if let Some(why) = criu_missing() {
        println!("skipped: {why}");
        return;
    }
    let c = Containerd::start("ckpt-criupath");
    let criu = Command::new("sh")
        .args(["-c", "command -v criu"])
        .output()
        .unwrap();
    let criu = String::from_utf8_lossy(&criu.stdout).trim().to_string();
    let wrapper = c.dir.join("criu-logged");
    let log = c.dir.join("criu-args.log");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec {criu} \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // criu_path is field 8 of runc's options, gone from the protos of containerd 2.0.
    let mut options = vec![0x42, wrapper.as_os_str().len() as u8];
    options.extend(wrapper.as_os_str().as_encoded_bytes());
    c.create_with_options("w1", &options, |spec| {
        spec["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    });
    c.ctr_ok(&["task", "start", "-d", "w1"]);
    c.wait_task_status("w1", "RUNNING");
    c.ctr_ok(&["task", "checkpoint", "w1"]);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("swrk"), "criu wrapper log: {logged:?}");
    c.ctr_ok(&["task", "kill", "-s", "KILL", "w1"]);
    c.wait_task_status("w1", "STOPPED");
    c.ctr_ok(&["task", "delete", "w1"]);
}

/// runc options' CriuWorkPath is where CRIU works and logs when the shim restores (the Go
/// shim's way). A checkpoint without CheckpointOptions' WorkPath works below the bundle's
/// `work` instead, and leaves nothing in CriuWorkPath.
#[test]
fn criu_work_path_holds_the_restores_log() {
    if let Some(why) = criu_missing() {
        println!("skipped: {why}");
        return;
    }
    let c = Containerd::start("ckpt-workpath");
    let work = c.dir.join("criu-work");
    std::fs::create_dir(&work).unwrap();
    let listing = || -> Vec<String> {
        std::fs::read_dir(&work)
            .map(|d| {
                d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    // criu_work_path is field 11 of runc's options. ctr's checkpoint keeps them with the image,
    // and its restore gives them to the new container.
    let mut options = vec![0x5a, work.as_os_str().len() as u8];
    options.extend(work.as_os_str().as_encoded_bytes());
    c.create_with_options("w1", &options, |spec| {
        spec["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    });
    c.ctr_ok(&["task", "start", "-d", "w1"]);
    c.wait_task_status("w1", "RUNNING");
    c.ctr_ok(&["container", "checkpoint", "--task", "w1", "husk.test/wp:1"]);
    assert_eq!(listing(), Vec::<String>::new(), "after the checkpoint");
    c.ctr_ok(&["task", "kill", "-s", "KILL", "w1"]);
    c.wait_task_status("w1", "STOPPED");
    c.ctr_ok(&["task", "delete", "w1"]);
    c.ctr_ok(&["container", "delete", "w1"]);

    c.ctr_ok(&["container", "restore", "--live", "w1", "husk.test/wp:1"]);
    c.wait_task_status("w1", "RUNNING");
    assert!(
        listing().contains(&"restore.log".to_string()),
        "CriuWorkPath holds {:?}",
        listing()
    );
    c.ctr_ok(&["task", "kill", "-s", "KILL", "w1"]);
    c.wait_task_status("w1", "STOPPED");
    c.ctr_ok(&["task", "delete", "w1"]);
}
