//! `--no-pivot` must not open a way around maskedPaths.
//!
//! The kernel lets a process mount a fresh procfs (or sysfs) in a user namespace it owns only if
//! its mount namespace already holds a "fully visible" one: mounted from the filesystem's root,
//! with no locked mount covering anything but an empty directory (mount_too_revealing in
//! fs/namespace.c). A container's /proc has the masks over it, so it does not qualify once a
//! nested namespace locks them. pivot_root leaves nothing else; MS_MOVE + chroot (`--no-pivot`)
//! leaves the host's /proc and /sys mounted, out of the chroot's reach but in the namespace,
//! and a process that makes itself a user, mount and pid namespace could mount a procfs in
//! which /proc/keys is the real file again. runc (libcontainer's msMoveRoot) unmounts every full
//! procfs and sysfs mount outside the rootfs before the move; its container is refused with
//! "mount: permission denied". All verified with runc 1.1.5 on this machine.

use std::path::Path;

use serde_json::json;
use spec_tests::{Container, Output};

/// Runs `script` as uid 1000 (so that its own user namespace may map its uid to root without
/// CAP_SETFCAP) with the base config's capabilities and maskedPaths, through `run` with
/// `--no-pivot` or without it; `configure` adjusts the bundle first.
fn run_as_user(
    name: &str,
    no_pivot: bool,
    script: &str,
    configure: impl Fn(&mut Container),
) -> Output {
    let mut c = Container::new(name);
    c.bundle.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    configure(&mut c);
    c.bundle.set_script(script);
    c.bundle.write_config();
    let bundle = c.bundle.path().to_str().unwrap().to_owned();
    let mut args = vec!["run"];
    if no_pivot {
        args.push("--no-pivot");
    }
    args.extend(["--bundle", &bundle, &c.id]);
    let out = c.rt.run_args(&args);
    c.assert_clean();
    out
}

/// In a nested user, mount, pid (and for sysfs, network) namespace: proves that mounting works
/// there at all (a tmpfs), then tries `fstype` on /tmp and says whether /tmp/`probe` is the
/// real file (`-e` on the fresh mount).
fn nested_mount_script(fstype: &str, probe: &str) -> String {
    let net = if fstype == "sysfs" { "n" } else { "" };
    format!(
        "[ -e /{probe_in_container} ] || echo no-{probe}; \
         busybox unshare -Urmpf{net} sh -c '\
           mount -t tmpfs tmpfs /tmp && echo tmpfs-ok && umount /tmp; \
           if mount -t {fstype} {fstype} /tmp 2>/dev/null; then echo {fstype}-mounted; \
             [ -e /tmp/{probe} ] && echo {probe}-reached; \
           else echo {fstype}-denied; fi'",
        probe_in_container = if fstype == "proc" {
            format!("proc/{probe}")
        } else {
            format!("sys/{probe}")
        },
    )
}

#[track_caller]
fn assert_denied(what: &str, out: &Output, fstype: &str) {
    out.assert_success();
    assert!(
        out.stdout.contains("tmpfs-ok\n"),
        "{what}: the nested namespace could not mount anything, so the test proves nothing:\n{out}"
    );
    assert!(
        out.stdout.contains(&format!("{fstype}-denied\n")),
        "{what}: a process in the container mounted a fresh {fstype} around the masks:\n{out}"
    );
}

fn proc_refused(name: &str, no_pivot: bool, configure: impl Fn(&mut Container)) {
    let out = run_as_user(
        name,
        no_pivot,
        &nested_mount_script("proc", "keys"),
        configure,
    );
    assert!(
        !out.stdout.contains("no-keys"),
        "/proc/keys is missing in the container:\n{out}"
    );
    assert_denied(name, &out, "proc");
}

fn sysfs_refused(name: &str, no_pivot: bool) {
    let out = run_as_user(
        name,
        no_pivot,
        &nested_mount_script("sysfs", "kernel"),
        |_| {},
    );
    assert_denied(name, &out, "sysfs");
}

#[test]
fn no_pivot_fresh_procfs_refused() {
    proc_refused("np_proc", true, |_| {});
}

#[test]
fn pivot_fresh_procfs_refused() {
    proc_refused("pivot_proc", false, |_| {});
}

#[test]
fn no_pivot_fresh_sysfs_refused() {
    sysfs_refused("np_sysfs", true);
}

#[test]
fn pivot_fresh_sysfs_refused() {
    sysfs_refused("pivot_sysfs", false);
}

#[test]
fn no_pivot_fresh_procfs_refused_in_user_namespace() {
    // In a user namespace the host's /proc is locked and cannot be unmounted; runc covers it
    // with a tmpfs instead, which the nested namespace then finds locked over it.
    proc_refused("np_proc_userns", true, |c| {
        c.bundle.add_user_namespace(100000, 100000);
    });
}

/// The host's own /proc and /sys as mount points of this process's mount namespace.
fn host_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|mp| Path::new(mp) == Path::new("/proc") || Path::new(mp) == Path::new("/sys"))
        .collect()
}

#[test]
fn no_pivot_with_shared_propagation_leaves_host_proc_mounted() {
    // The unmounts happen in the container's mount namespace; with rootfsPropagation "shared"
    // they would reach the host's if the runtime did not make each mount a slave first.
    let before = host_mounts();
    assert_eq!(before.len(), 2, "the host has no /proc or /sys: {before:?}");
    let out = run_as_user("np_shared", true, "echo ok", |c| {
        c.bundle.config["linux"]["rootfsPropagation"] = json!("shared");
    });
    assert_eq!(host_mounts(), before, "the host lost a mount:\n{out}");
    out.assert_success();
    assert_eq!(out.stdout, "ok\n");
}
