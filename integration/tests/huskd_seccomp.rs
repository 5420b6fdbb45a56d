//! huskd applies Docker's default seccomp profile, cut to the container's capabilities, and
//! none for `seccomp=unconfined`; the behaviour compared is the one Debian's dockerd 20.10 with
//! runc shows on this machine (notes/huskd.md). The other security options too:
//! no-new-privileges, and AppArmor and SELinux, which this host lacks. Needs what
//! integration/tests/huskd.rs needs.

use integration::huskd::{stream_of, Huskd};
use integration::{busybox_archive, IMAGE};
use serde_json::{json, Value};

fn huskd_with_busybox(name: &str) -> Huskd {
    let h = Huskd::start(name);
    let archive = busybox_archive(&h.dir.join("image"));
    let r = h.load(&archive);
    assert_eq!(r.status, 200, "load: {}", r.text());
    h
}

struct Ran {
    code: i64,
    out: String,
    err: String,
}

/// Runs `sh -c cmd` to its end in a container with `host` as its HostConfig.
fn run(h: &Huskd, name: &str, host: Value, cmd: &str) -> Ran {
    let id = h.create(
        name,
        &json!({"Image": IMAGE, "Cmd": ["sh", "-c", cmd], "HostConfig": host}),
    );
    h.start_ctr(&id);
    let code = h.wait_exit(&id);
    let logs = h.get(&format!("/containers/{id}/logs?stdout=1&stderr=1"));
    assert_eq!(logs.status, 200, "logs: {}", logs.text());
    let ran = Ran {
        code,
        out: stream_of(&logs.body, 1),
        err: stream_of(&logs.body, 2),
    };
    assert_eq!(h.delete(&format!("/containers/{id}")).status, 204);
    ran
}

// The image has few applet links: the others are run through busybox itself.
const MODE: &str = "busybox grep '^Seccomp:' /proc/1/status";

/// Whether a process may make a user namespace here without seccomp in the way: it needs no
/// capability, so only the profile tells the default and unconfined containers apart.
fn userns_allowed() -> bool {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .is_ok_and(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
}

#[test]
fn default_profile_follows_capabilities() {
    let h = huskd_with_busybox("seccomp-default");

    let r = run(
        &h,
        "dflt",
        json!({}),
        &format!("{MODE}; busybox mount -t tmpfs none /dev/shm"),
    );
    assert_eq!(r.out, "Seccomp:\t2\n", "{}", r.err);
    assert_ne!(r.code, 0, "mount worked without CAP_SYS_ADMIN: {}", r.err);

    // CAP_SYS_ADMIN unlocks mount, unshare and a clone with namespace flags, as in Docker.
    let r = run(
        &h,
        "admin",
        json!({"CapAdd": ["SYS_ADMIN"]}),
        &format!("{MODE}; busybox mount -t tmpfs none /dev/shm && busybox umount /dev/shm && busybox unshare -n true && echo ok"),
    );
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "Seccomp:\t2\nok\n"),
        "{}",
        r.err
    );

    if !userns_allowed() {
        eprintln!("skipped the user namespace half: user.max_user_namespaces is 0 here");
    } else {
        let r = run(&h, "userns", json!({}), "busybox unshare -U true");
        assert_eq!(r.code, 1, "unshare -U worked under the profile");
        assert!(r.err.contains("Operation not permitted"), "{}", r.err);
        let r = run(
            &h,
            "unconfined",
            json!({"SecurityOpt": ["seccomp=unconfined"]}),
            &format!("{MODE}; busybox unshare -U true && echo ok"),
        );
        assert_eq!(
            (r.code, r.out.as_str()),
            (0, "Seccomp:\t0\nok\n"),
            "{}",
            r.err
        );
    }
    h.assert_nothing_left(&[]);
}

#[test]
fn custom_profile_and_bad_option() {
    let h = huskd_with_busybox("seccomp-custom");
    // What docker's CLI sends for `--security-opt seccomp=file.json`: the file's JSON.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    });
    let r = run(
        &h,
        "custom",
        json!({"SecurityOpt": [format!("seccomp={profile}")]}),
        &format!("{MODE}; busybox mkdir /x"),
    );
    assert_eq!(r.out, "Seccomp:\t2\n", "{}", r.err);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("Permission denied"), "{}", r.err);

    let r = h.post(
        "/containers/create?name=bad",
        &json!({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["seccomp=/etc/profile.json"]}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().contains("seccomp=/etc/profile.json"),
        "{}",
        r.message()
    );
    assert_eq!(h.get("/containers/bad/json").status, 404);
    h.assert_nothing_left(&[]);
}

#[test]
fn no_new_privileges_reaches_the_process_and_its_execs() {
    let h = huskd_with_busybox("security-opts");
    const NNP: &str = "busybox grep '^NoNewPrivs:' /proc/self/status";
    let r = run(&h, "plain", json!({}), NNP);
    assert_eq!(r.out, "NoNewPrivs:\t0\n", "{}", r.err);
    for opt in [
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:true",
    ] {
        let r = run(&h, "nnp", json!({"SecurityOpt": [opt]}), NNP);
        assert_eq!(r.out, "NoNewPrivs:\t1\n", "{opt}: {}", r.err);
    }

    // An exec is as confined as the container's process.
    let id = h.create(
        "box",
        &json!({"Image": IMAGE, "Cmd": ["sleep", "1000"], "HostConfig": {"SecurityOpt": ["no-new-privileges"]}}),
    );
    h.start_ctr(&id);
    let exec = h.post(
        "/containers/box/exec",
        &json!({"Cmd": ["sh", "-c", NNP], "AttachStdout": true, "AttachStderr": true}),
    );
    assert_eq!(exec.status, 201, "{}", exec.text());
    let eid = exec.json()["Id"].as_str().unwrap().to_string();
    let (status, out) = h.hijack(&format!("/exec/{eid}/start"), r#"{"Detach":false}"#, b"");
    assert!(status.contains("101"), "{status}");
    assert_eq!(
        stream_of(&out, 1),
        "NoNewPrivs:\t1\n",
        "{}",
        stream_of(&out, 2)
    );
    assert_eq!(h.delete("/containers/box?force=1").status, 204);
    h.assert_nothing_left(&[]);
}

#[test]
fn confinement_this_host_cannot_give_is_refused() {
    let h = huskd_with_busybox("security-refused");
    // Asking for none of it is fine.
    let r = run(
        &h,
        "none",
        json!({"SecurityOpt": ["apparmor=unconfined", "label=disable"]}),
        "true",
    );
    assert_eq!(r.code, 0, "{}", r.err);

    for (opt, names) in [
        ("label=type:svirt_apache_t", "label=type:svirt_apache_t"),
        ("bogus=1", "bogus=1"),
        ("no-new-privileges=maybe", "no-new-privileges=maybe"),
    ] {
        let r = h.post(
            "/containers/create?name=bad",
            &json!({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"SecurityOpt": [opt]}}),
        );
        assert_eq!(r.status, 400, "{opt}: {}", r.text());
        assert!(r.message().contains(names), "{opt}: {}", r.message());
        assert_eq!(h.get("/containers/bad/json").status, 404, "{opt}");
    }

    // A profile goes to the runtime, which fails naming AppArmor where the kernel has none.
    if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        eprintln!("skipped the AppArmor refusal: this host has AppArmor");
    } else {
        let id = h.create(
            "aa",
            &json!({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["apparmor=docker-default"]}}),
        );
        let r = h.post_empty(&format!("/containers/{id}/start"));
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(
            r.message().to_lowercase().contains("apparmor"),
            "{}",
            r.message()
        );
        assert_eq!(h.delete(&format!("/containers/{id}")).status, 204);
    }
    h.assert_nothing_left(&[]);
}
