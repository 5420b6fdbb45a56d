//! huskd end to end: each test starts its own huskd (private socket, root, state and runtime
//! namespace), drives its Docker-like API with curl (and a small client for hijacked
//! connections), and stops it. Needs root, overlayfs, busybox-static, curl; the debug builds of
//! huskd, the shim and husk (or $HUSKD_BIN, $SHIM_BIN, $HUSK_BIN).

use std::{fs, path::Path, path::PathBuf, process::Command, time::Duration};

use integration::dockerd::{docker_at, Dockerd};
use integration::huskd::{hijack_finish, stream_of, Huskd};
use integration::{busybox_archive, wait_for, IMAGE};
use serde_json::{json, Value};

/// A huskd with the test's busybox image loaded.
fn huskd_with_busybox(name: &str) -> Huskd {
    let h = Huskd::start(name);
    let archive = busybox_archive(&h.dir.join("image"));
    let r = h.load(&archive);
    assert_eq!(r.status, 200, "load: {}", r.text());
    assert!(
        r.text().contains(&format!("Loaded image: {IMAGE}")),
        "{}",
        r.text()
    );
    h
}

fn sh(cmd: &str) -> Value {
    json!({"Image": IMAGE, "Cmd": ["sh", "-c", cmd]})
}

#[test]
fn create_start_wait_logs() {
    let h = huskd_with_busybox("run");
    let images = h.get("/images/json").json();
    assert_eq!(images[0]["RepoTags"], json!([IMAGE]));
    assert_eq!(
        h.get(&format!("/images/{IMAGE}/json")).json()["Config"]["Cmd"],
        json!(["/bin/sh"])
    );

    let id = h.create("first", &sh("echo hello; echo oops >&2; exit 3"));
    assert_eq!(h.inspect("first")["State"]["Status"], "created");
    h.start_ctr(&id);
    assert_eq!(h.wait_exit(&id[..12]), 3);
    let state = &h.inspect(&id)["State"];
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["ExitCode"], 3);
    assert_eq!(state["Running"], false);
    assert_ne!(state["FinishedAt"], "0001-01-01T00:00:00Z");

    let logs = h.get("/containers/first/logs?stdout=1&stderr=1");
    assert_eq!(logs.status, 200);
    assert_eq!(stream_of(&logs.body, 1), "hello\n");
    assert_eq!(stream_of(&logs.body, 2), "oops\n");
    let only_err = h.get("/containers/first/logs?stderr=1");
    assert_eq!(stream_of(&only_err.body, 1), "");
    assert_eq!(h.get("/containers/first/logs").status, 400);

    // The json-file, as Docker's driver writes it.
    let file = h.inspect(&id)["LogPath"].as_str().unwrap().to_string();
    let lines: Vec<Value> = fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let out = lines.iter().find(|l| l["stream"] == "stdout").unwrap();
    assert_eq!(out["log"], "hello\n");
    let time = out["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.len() > 20 && time.contains('.'),
        "{time}"
    );
    assert_eq!(out.as_object().unwrap().len(), 3);

    // A start of a running container is 304, of an exited one runs it again.
    h.start_ctr(&id);
    assert_eq!(h.wait_exit(&id), 3);
    // tail counts lines of both streams before the stream filter, as Docker's does.
    let logs = h.get("/containers/first/logs?stdout=1&stderr=1&tail=2");
    assert_eq!(stream_of(&logs.body, 1), "hello\n");
    assert_eq!(stream_of(&logs.body, 2), "oops\n");
    let all = h.get("/containers/first/logs?stdout=1");
    assert_eq!(stream_of(&all.body, 1), "hello\nhello\n");
    let list = h.get("/containers/json").json();
    assert_eq!(list, json!([]));
    let list = h.get("/containers/json?all=1").json();
    assert_eq!(list[0]["Names"], json!(["/first"]));
    assert_eq!(list[0]["State"], "exited");

    assert_eq!(h.delete("/containers/first").status, 204);
    assert_eq!(h.get("/containers/first/json").status, 404);
    h.assert_nothing_left(&[]);
}

#[test]
fn detached_stop_and_remove() {
    let h = huskd_with_busybox("stop");
    let id = h.create(
        "sleeper",
        &sh("trap 'echo got term; exit 0' TERM; while :; do sleep 0.1; done"),
    );
    h.start_ctr(&id);
    let state = h.inspect(&id)["State"].clone();
    assert_eq!(state["Running"], true);
    let pid = state["Pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(h.post_empty(&format!("/containers/{id}/start")).status, 304);
    let r = h.delete(&format!("/containers/{id}"));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.message().contains("cannot remove a running container"),
        "{}",
        r.message()
    );

    assert_eq!(h.post_empty(&format!("/containers/{id}/pause")).status, 204);
    assert_eq!(h.inspect(&id)["State"]["Status"], "paused");
    assert_eq!(
        h.post_empty(&format!("/containers/{id}/unpause")).status,
        204
    );

    let r = h.post_empty("/containers/sleeper/stop?t=10");
    assert_eq!(r.status, 204, "{}", r.text());
    let state = h.inspect(&id)["State"].clone();
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["ExitCode"], 0);
    let logs = h.get("/containers/sleeper/logs?stdout=1");
    assert_eq!(stream_of(&logs.body, 1), "got term\n");
    assert_eq!(h.post_empty("/containers/sleeper/stop").status, 304);
    assert_eq!(h.delete("/containers/sleeper").status, 204);
    h.assert_nothing_left(&[]);

    // Without a trap, stop ends in SIGKILL after t seconds; kill sends what it is told.
    // (A pid namespace's init gets only the signals it handles.)
    let id = h.create(
        "stubborn",
        &sh("trap '' TERM; trap 'exit 10' USR1; while :; do sleep 0.1; done"),
    );
    h.start_ctr(&id);
    assert_eq!(h.post_empty("/containers/stubborn/stop?t=1").status, 204);
    assert_eq!(h.inspect(&id)["State"]["ExitCode"], 137);
    h.start_ctr(&id);
    assert_eq!(
        h.post_empty("/containers/stubborn/kill?signal=SIGUSR1")
            .status,
        204
    );
    assert_eq!(h.wait_exit(&id), 10);
    assert_eq!(h.post_empty("/containers/stubborn/kill").status, 409);
    h.start_ctr(&id);
    assert_eq!(h.delete("/containers/stubborn?force=1").status, 204);
    h.assert_nothing_left(&[]);
}

#[test]
fn attach_exec_and_follow() {
    let h = huskd_with_busybox("exec");
    let mut body = sh("read line; echo got $line; while :; do sleep 0.1; done");
    body["OpenStdin"] = json!(true);
    body["AttachStdin"] = json!(true);
    let id = h.create("box", &body);
    h.start_ctr(&id);

    let exec = h.post(
        "/containers/box/exec",
        &json!({"Cmd": ["sh", "-c", "echo out; echo err >&2; exit 7"], "AttachStdout": true, "AttachStderr": true}),
    );
    assert_eq!(exec.status, 201, "{}", exec.text());
    let eid = exec.json()["Id"].as_str().unwrap().to_string();
    let (status, out) = h.hijack(&format!("/exec/{eid}/start"), r#"{"Detach":false}"#, b"");
    assert!(status.contains("101"), "{status}");
    assert_eq!(stream_of(&out, 1), "out\n");
    assert_eq!(stream_of(&out, 2), "err\n");
    let ej = h.get(&format!("/exec/{eid}/json")).json();
    assert_eq!(ej["ExitCode"], 7);
    assert_eq!(ej["Running"], false);

    // Attached: stdin reaches the container, its output comes back; the stream ends with it.
    let h2 = &h;
    std::thread::scope(|s| {
        let attach = s.spawn(|| {
            h2.hijack(
                "/containers/box/attach?stream=1&stdin=1&stdout=1&stderr=1",
                "",
                b"world\n",
            )
        });
        assert!(wait_for(Duration::from_secs(20), || {
            stream_of(&h2.get("/containers/box/logs?stdout=1").body, 1).contains("got world")
        }));
        let follow = s.spawn(|| h2.get("/containers/box/logs?stdout=1&follow=1"));
        assert_eq!(
            h2.post_empty("/containers/box/kill?signal=KILL").status,
            204
        );
        let (status, out) = attach.join().unwrap();
        assert!(status.contains("101"), "{status}");
        assert_eq!(stream_of(&out, 1), "got world\n");
        assert_eq!(stream_of(&follow.join().unwrap().body, 1), "got world\n");
    });
    assert_eq!(h.wait_exit(&id), 137);
    assert_eq!(
        h.post("/containers/box/exec", &json!({"Cmd": ["true"]}))
            .status,
        409
    );
}

#[test]
fn kill9_and_restart_keeps_containers() {
    let mut h = huskd_with_busybox("restart");
    let ticker = h.create(
        "ticker",
        &sh("i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done"),
    );
    // Ends at once (its stdin is /dev/null).
    let quitter = h.create("quitter", &sh("read x; exit 42"));
    // Killed while huskd is away: its status must survive.
    let mut q = sh("read x; exit 42");
    q["OpenStdin"] = json!(true);
    let quitter2 = h.create("quitter2", &q);
    h.start_ctr(&ticker);
    h.start_ctr(&quitter);
    h.start_ctr(&quitter2);
    let pid = h.inspect(&ticker)["State"]["Pid"].as_i64().unwrap();
    assert_eq!(h.wait_exit(&quitter), 42);
    let qpid = h.inspect(&quitter2)["State"]["Pid"].as_i64().unwrap() as i32;

    let old = h.pid();
    h.kill9();
    // SAFETY: plain kill of a container process we started.
    assert_eq!(unsafe { libc::kill(qpid, libc::SIGKILL) }, 0);
    assert!(wait_for(Duration::from_secs(10), || !Path::new(&format!(
        "/proc/{qpid}"
    ))
    .exists()
        || fs::read_to_string(format!("/proc/{qpid}/stat"))
            .unwrap_or_default()
            .contains(") Z")));
    h.restart();
    assert_ne!(h.pid(), old);
    let state = h.inspect(&ticker)["State"].clone();
    assert_eq!(state["Status"], "running", "{state}");
    assert_eq!(state["Pid"], pid);
    assert_eq!(h.wait_exit(&quitter2), 137);
    assert_eq!(h.inspect(&quitter2)["State"]["Status"], "exited");
    assert_eq!(h.inspect(&quitter)["State"]["ExitCode"], 42);
    assert!(
        wait_for(Duration::from_secs(10), || h.shims().len() == 1),
        "{:?}",
        h.shims()
    );

    // No tick is lost or repeated across the restart.
    assert!(wait_for(Duration::from_secs(10), || {
        stream_of(&h.get("/containers/ticker/logs?stdout=1").body, 1)
            .lines()
            .count()
            > 40
    }));
    assert_eq!(h.post_empty("/containers/ticker/stop?t=1").status, 204);
    let logs = stream_of(&h.get("/containers/ticker/logs?stdout=1").body, 1);
    for (i, line) in logs.lines().enumerate() {
        assert_eq!(line, format!("tick {i}"), "{logs}");
    }
    assert_eq!(h.inspect(&ticker)["State"]["ExitCode"], 137);

    // Again, with the huskd killed while the container is stopped: nothing changes.
    h.kill9_and_restart();
    assert_eq!(h.inspect(&ticker)["State"]["Status"], "exited");
    for id in [&ticker, &quitter, &quitter2] {
        assert_eq!(h.delete(&format!("/containers/{id}")).status, 204);
    }
    h.assert_nothing_left(&[]);
}

#[test]
fn twenty_in_parallel() {
    let h = huskd_with_busybox("parallel");
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let h = &h;
                s.spawn(move || {
                    let id = h.create(&format!("p{i}"), &sh(&format!("echo number {i}; exit {i}")));
                    h.start_ctr(&id);
                    assert_eq!(h.wait_exit(&id), i);
                    let logs = h.get(&format!("/containers/p{i}/logs?stdout=1"));
                    assert_eq!(stream_of(&logs.body, 1), format!("number {i}\n"));
                    id
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        h.get("/containers/json?all=1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        20
    );
    std::thread::scope(|s| {
        for id in &ids {
            let h = &h;
            s.spawn(move || assert_eq!(h.delete(&format!("/containers/{id}")).status, 204));
        }
    });
    h.assert_nothing_left(&[]);
}

#[test]
fn host_config_reaches_the_container() {
    let h = huskd_with_busybox("hostconfig");
    let vol = h.dir.join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("f"), "from host\n").unwrap();
    let body = json!({
        "Image": IMAGE, "Hostname": "boxy", "Env": ["A=1"], "WorkingDir": "/tmp",
        "Cmd": ["sh", "-c", "cat /data/f; hostname; echo $A; pwd; touch /data/x 2>/dev/null || echo ro; \
                 touch /x 2>/dev/null || echo rootro; cat /sys/fs/cgroup/pids/pids.max; \
                 cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep CapEff /proc/self/status; \
                 mount | grep ' /scratch ' | cut -d' ' -f5"],
        "HostConfig": {"Binds": [format!("{}:/data:ro", vol.display())], "ReadonlyRootfs": true,
                       "PidsLimit": 50, "Memory": 67108864, "CapDrop": ["ALL"], "CapAdd": ["CHOWN"],
                       "Tmpfs": {"/scratch": "size=1m"}, "NetworkMode": "none", "AutoRemove": true},
    });
    let id = h.create("hc", &body);
    // Attach before start, as docker run does: the output comes through the attach.
    let (status, conn) = h.hijack_open(
        &format!("/containers/{id}/attach?stream=1&stdout=1&stderr=1"),
        "",
    );
    assert!(status.contains("101"), "{status}");
    h.start_ctr(&id);
    let out = hijack_finish(conn, b"");
    let out = stream_of(&out, 1);
    assert_eq!(
        out,
        "from host\nboxy\n1\n/tmp\nro\nrootro\n50\n67108864\nCapEff:\t0000000000000001\ntmpfs\n",
        "{out}"
    );
    // AutoRemove.
    assert!(wait_for(Duration::from_secs(10), || h
        .get(&format!("/containers/{id}/json"))
        .status
        == 404));
    h.assert_nothing_left(&[]);
}

/// An OCI archive (in `dir`) of one image whose only layer is `layer`.
fn oci_archive(dir: &Path, layer: &[u8], name: &str) -> PathBuf {
    let layout = dir.join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let tmp = layout.join("tmp");
        fs::write(&tmp, data).unwrap();
        let out = Command::new("sha256sum").arg(&tmp).output().unwrap();
        let hex = String::from_utf8_lossy(&out.stdout)[..64].to_string();
        fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).unwrap();
        (format!("sha256:{hex}"), data.len())
    };
    let (ld, ls) = put(layer);
    let config = json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                        "rootfs": {"type": "layers", "diff_ids": [ld]}});
    let (cd, cs) = put(config.to_string().as_bytes());
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]});
    let (md, ms) = put(manifest.to_string().as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {"io.containerd.image.name": name}}]});
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("evil.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    archive
}

/// A tar of one regular file named `name` (any name, `../` included), as tar(1) will not write.
fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], v: u64| {
        let s = format!("{:0w$o}\0", v, w = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    };
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| *b as u64).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let h = huskd_with_busybox("bad");
    let images_before = h.get("/images/json").json();
    let store_files = |h: &Huskd| -> Vec<String> {
        let out = Command::new("find")
            .arg(h.root.join("images"))
            .output()
            .unwrap();
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let files_before = store_files(&h);

    let r = h.post(
        "/containers/create",
        &json!({"Image": "nosuch:image", "Cmd": ["true"]}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "No such image: nosuch:image");

    h.create("taken", &sh("true"));
    let r = h.post("/containers/create?name=taken", &sh("true"));
    assert_eq!(r.status, 409);
    assert!(
        r.message()
            .contains("The container name \"/taken\" is already in use"),
        "{}",
        r.message()
    );

    let mut bind = sh("true");
    bind["HostConfig"] = json!({"Binds": ["/nonexistent/huskd-test:/data"]});
    let r = h.post("/containers/create?name=badbind", &bind);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/huskd-test"
    );
    for (field, value) in [
        ("CapAdd", json!(["CAP_NOPE"])),
        ("NetworkMode", json!("bridge")),
        ("RestartPolicy", json!({"Name": "sometimes"})),
        ("Binds", json!(["relative:/x"])),
    ] {
        let mut b = sh("true");
        b["HostConfig"] = json!({field: value});
        let r = h.post("/containers/create", &b);
        assert_eq!(r.status, 400, "{field}: {}", r.text());
    }
    let r = h.post("/containers/create?name=bad%20name", &sh("true"));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = h.curl(&[
        "-X",
        "POST",
        "-d",
        "{not json",
        "http://d/containers/create",
    ]);
    assert_eq!(r.status, 400);
    assert!(
        r.message().starts_with("malformed JSON body"),
        "{}",
        r.message()
    );

    let garbage = h.dir.join("garbage.tar");
    fs::write(&garbage, b"this is not a tar archive at all").unwrap();
    let r = h.load(&garbage);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().starts_with("malformed archive"),
        "{}",
        r.message()
    );

    let evil = oci_archive(
        &h.dir.join("evil"),
        &tar_with("../escape", b"x"),
        "evil:latest",
    );
    let r = h.load(&evil);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().contains("../escape") && r.message().contains("escapes"),
        "{}",
        r.message()
    );
    assert!(!h.root.join("images/escape").exists() && !h.root.join("escape").exists());

    assert_eq!(h.get("/images/json").json(), images_before);
    assert_eq!(store_files(&h), files_before);
    assert_eq!(
        h.get("/containers/json?all=1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let taken = h.inspect("taken")["Id"].as_str().unwrap().to_string();

    // A command that is not in the image: the start fails, nothing runs, the container stays.
    let id = h.create(
        "nocmd",
        &json!({"Image": IMAGE, "Cmd": ["/no/such/binary"]}),
    );
    let r = h.post_empty(&format!("/containers/{id}/start"));
    assert!(r.status >= 400, "{}", r.text());
    assert_eq!(h.inspect(&id)["State"]["Running"], false);
    h.assert_nothing_left(&[&taken, &id]);
    assert_eq!(h.get("/containers/nosuch/json").status, 404);
    // Odd paths and parameters: an answer, never a crash.
    assert_eq!(h.get("/containers/%C3%A9%/json").status, 404);
    assert_eq!(h.get("/no/such/endpoint").status, 404);
    assert_eq!(
        h.post_empty("/containers/taken/kill?signal=NOPE").status,
        400
    );
    assert_eq!(
        h.post_empty("/containers/taken/wait?condition=sometime")
            .status,
        400
    );
    assert_eq!(h.get("/containers/taken/logs?stdout=1&tail=x").status, 400);
    assert_eq!(h.get("/_ping").status, 200);
    let r = h.delete(&format!("/images/{IMAGE}"));
    assert_eq!(r.status, 409, "an image in use: {}", r.text());
}

#[test]
fn restart_policies() {
    let h = huskd_with_busybox("policy");
    let mut b = sh("echo run; exit 2");
    b["HostConfig"] = json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}});
    let id = h.create("flaky", &b);
    h.start_ctr(&id);
    // Three runs in all: the first and two restarts.
    assert!(
        wait_for(Duration::from_secs(30), || {
            let c = h.inspect(&id);
            c["RestartCount"] == 2 && c["State"]["Status"] == "exited"
        }),
        "{}",
        h.inspect(&id)
    );
    assert_eq!(
        stream_of(&h.get("/containers/flaky/logs?stdout=1").body, 1),
        "run\nrun\nrun\n"
    );
    assert_eq!(h.inspect(&id)["State"]["ExitCode"], 2);

    // `always` restarts a clean exit too, until the container is stopped through the API.
    let mut b = sh("sleep 0.2; exit 0");
    b["HostConfig"] = json!({"RestartPolicy": {"Name": "always"}});
    let id = h.create("always", &b);
    h.start_ctr(&id);
    assert!(wait_for(Duration::from_secs(30), || h.inspect(&id)
        ["RestartCount"]
        .as_u64()
        >= Some(2)));
    assert_eq!(h.post_empty("/containers/always/stop?t=1").status, 204);
    let count = h.inspect(&id)["RestartCount"].clone();
    assert_eq!(h.inspect(&id)["State"]["Status"], "exited");
    // Stopped stays stopped: a stop through the API keeps the policy from restarting it.
    assert_eq!(h.inspect(&id)["RestartCount"], count);
    assert_eq!(h.inspect(&id)["State"]["Restarting"], false);

    let mut b = sh("true");
    b["HostConfig"] = json!({"RestartPolicy": {"Name": "always"}, "AutoRemove": true});
    assert_eq!(h.post("/containers/create", &b).status, 400);
}

#[test]
fn pull_from_a_loopback_registry() {
    const REGISTRY: &str = "/usr/bin/docker-registry";
    for tool in [REGISTRY, "/usr/bin/skopeo"] {
        if !Path::new(tool).exists() {
            eprintln!("SKIP: {tool} missing (Debian's packages docker-registry, skopeo)");
            return;
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let h = Huskd::start_with("pull", &["--insecure-registry", &addr]);
    let config = h.dir.join("registry.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            h.dir.join("registry").display()
        ),
    )
    .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            // Gone already is fine: the wait reaps it either way.
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _registry = Kill(
        Command::new(REGISTRY)
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok()
    }));
    let archive = busybox_archive(&h.dir.join("image"));
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}:latest", archive.display()))
        .arg(format!("docker://{addr}/husk/busybox:v1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let r = h.post_empty(&format!(
        "/images/create?fromImage={addr}/husk/busybox&tag=v1"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.last().unwrap()["status"]
            .as_str()
            .unwrap()
            .starts_with("Status: Downloaded"),
        "{lines:?}"
    );
    assert_eq!(
        lines[0]["status"],
        format!("Pulling from {addr}/husk/busybox")
    );
    assert!(
        lines.iter().any(
            |l| l["status"] == "Downloading" && l["progressDetail"]["total"].as_u64() > Some(0)
        ),
        "{lines:?}"
    );
    let name = format!("{addr}/husk/busybox:v1");
    let id = h.create("pulled", &json!({"Image": name, "Cmd": ["echo", "pulled"]}));
    h.start_ctr(&id);
    assert_eq!(h.wait_exit(&id), 0);
    assert_eq!(
        stream_of(&h.get("/containers/pulled/logs?stdout=1").body, 1),
        "pulled\n"
    );

    let r = h.post_empty(&format!(
        "/images/create?fromImage={addr}/husk/busybox&tag=nosuch"
    ));
    assert_eq!(r.status, 404, "{}", r.text());
}

/// Docker's own CLI as the client: what a Docker user types works against huskd.
#[test]
fn docker_cli_drives_huskd() {
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("SKIP: no docker CLI on $PATH");
        return;
    }
    let h = huskd_with_busybox("cli");
    let docker = |args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let mut child = Command::new("timeout")
            .args(["-s", "KILL", "60", "docker"])
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", h.sock.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = docker(
        &[
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "echo hello; echo oops >&2; exit 3",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = docker(&["run", "-i", "--rm", IMAGE, "cat"], b"through stdin\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through stdin\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = docker(&["run", "-d", "--name", "bg", IMAGE, "sleep", "60"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = docker(&["exec", "bg", "sh", "-c", "echo in exec; exit 5"], b"");
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in exec\n");
    let out = docker(&["ps", "--format", "{{.Names}} {{.Status}}"], b"");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("bg Up"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(docker(&["stop", "-t", "1", "bg"], b"").status.success());
    let out = docker(
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "bg",
        ],
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exited 137\n");
    assert!(docker(&["rm", "bg"], b"").status.success());
    let out = docker(
        &["run", "--rm", "-v", "/nonexistent/huskd:/x", IMAGE, "true"],
        b"",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("bind source path does not exist: /nonexistent/huskd"));
    h.assert_nothing_left(&[]);
}

/// The same container run by Docker's CLI under dockerd (the reference) and under huskd: the
/// same output and exit code, the same json-file lines (but their times), the same `State`
/// fields, the same name-conflict message.
#[test]
fn matches_dockerd() {
    for tool in ["dockerd", "docker", "skopeo"] {
        if Command::new("which")
            .arg(tool)
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            eprintln!("SKIP: {tool} missing (Debian's docker.io, skopeo)");
            return;
        }
    }
    let h = huskd_with_busybox("ref");
    let dockerd = Dockerd::start(h.dir.join("docker")).unwrap_or_else(|e| panic!("{e}"));
    // dockerd 20.10 loads docker-save archives only.
    let oci = busybox_archive(&h.dir.join("image2"));
    let saved = h.dir.join("docker-save.tar");
    let out = Command::new("skopeo")
        .arg("copy")
        .arg("-q")
        .arg(format!("oci-archive:{}:latest", oci.display()))
        .arg(format!("docker-archive:{}:{IMAGE}", saved.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dockerd
        .docker(&["load", "-i", saved.to_str().unwrap()])
        .status
        .success());

    let huskd_host = format!("unix://{}", h.sock.display());
    let mut seen = Vec::new();
    for host in [dockerd.host(), huskd_host] {
        let run = docker_at(
            &host,
            &[
                "run",
                "--name",
                "jf",
                "--network",
                "none",
                IMAGE,
                "sh",
                "-c",
                "printf 'a\\nb'; printf 'x\\n' >&2; exit 3",
            ],
        );
        let logs = docker_at(&host, &["logs", "jf"]);
        let inspect: Value =
            serde_json::from_slice(&docker_at(&host, &["inspect", "jf"]).stdout).unwrap();
        let path = inspect[0]["LogPath"].as_str().unwrap().to_string();
        let mut lines: Vec<Value> = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                let t = v["time"].as_str().unwrap().to_string();
                assert!(chrono_like(&t), "{t}");
                v["time"] = json!("T");
                v
            })
            .collect();
        // The two streams are copied apart: only each one's order is defined.
        lines.sort_by_key(|l| l["stream"].as_str().unwrap().to_string());
        let state_keys: Vec<String> = inspect[0]["State"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "Health")
            .cloned()
            .collect();
        let conflict = docker_at(&host, &["create", "--name", "jf", IMAGE, "true"]);
        let id = inspect[0]["Id"].as_str().unwrap().to_string();
        let conflict = String::from_utf8_lossy(&conflict.stderr).replace(&id, "ID");
        seen.push((
            run.status.code(),
            run.stdout,
            run.stderr,
            logs.stdout,
            logs.stderr,
            lines,
            state_keys,
            conflict,
            inspect[0]["Name"].clone(),
        ));
        assert!(docker_at(&host, &["rm", "jf"]).status.success());
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1].0, Some(3));
    // dockerd's mounts are below the test's directory too.
    drop(dockerd);
    h.assert_nothing_left(&[]);
}

/// `2026-12-02T10:43:21.927807935Z`: RFC 3339 in UTC with a fraction, as Go's RFC3339Nano.
fn chrono_like(t: &str) -> bool {
    t.len() >= 21 && t.ends_with('Z') && t.as_bytes()[10] == b'T' && t[19..20] == *"."
}

/// husk-init beside the huskd under test, or None (the test then skips, saying so).
fn init_beside_huskd() -> Option<PathBuf> {
    let p = integration::huskd::huskd_bin().parent()?.join("husk-init");
    p.is_file().then_some(p)
}

#[test]
fn init_reaps_orphans_and_passes_the_exit_code() {
    let Some(init) = init_beside_huskd() else {
        eprintln!("skipped: no husk-init beside huskd (cargo build -p husk-init)");
        return;
    };
    let h = Huskd::start_with("init", &["--init-path", init.to_str().unwrap()]);
    let archive = busybox_archive(&h.dir.join("image"));
    assert_eq!(h.load(&archive).status, 200);
    // The orphan writes its pid, then exits once its parent (the subshell) is gone, so it is
    // pid 1's to reap; the command waits (bounded) for it to leave /proc, then counts zombies.
    let script =
        "mkfifo /dev/shm/f; (sh -c 'echo $$ > /dev/shm/f; exec true' &); read pid < /dev/shm/f; \
        i=0; while [ -e /proc/$pid ] && [ $i -lt 500 ]; do usleep 10000; i=$((i+1)); done; \
        [ -e /proc/$pid ] && echo orphan-left; \
        echo zombies=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l); \
        cat /proc/1/comm; touch /sbin/docker-init 2>/dev/null || echo init-ro; exit 7";
    let mut body = sh(script);
    body["HostConfig"] = json!({"Init": true, "NetworkMode": "none"});
    let id = h.create("init", &body);
    assert_eq!(
        h.inspect(&id)["Args"][0],
        "-c",
        "Path/Args are the command's, as Docker shows them"
    );
    h.start_ctr(&id);
    assert_eq!(h.wait_exit(&id), 7, "the child's exit code");
    let logs = h.get("/containers/init/logs?stdout=1&stderr=1");
    assert_eq!(
        stream_of(&logs.body, 1),
        "zombies=0\ndocker-init\ninit-ro\n",
        "stderr: {}",
        stream_of(&logs.body, 2)
    );
    assert_eq!(h.delete("/containers/init").status, 204);
    h.assert_nothing_left(&[]);
}

#[test]
fn init_missing_and_autoremove_of_a_failed_start_leave_nothing() {
    let h = Huskd::start_with("noinit", &["--init-path", "/nonexistent/husk-init"]);
    let archive = busybox_archive(&h.dir.join("image"));
    assert_eq!(h.load(&archive).status, 200);
    let mut body = sh("true");
    body["HostConfig"] = json!({"Init": true});
    let r = h.post("/containers/create?name=noinit", &body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().contains("/nonexistent/husk-init"),
        "{}",
        r.message()
    );
    assert!(!r.message().contains('\n'), "{}", r.message());
    assert_eq!(h.get("/containers/json?all=1").json(), json!([]));
    // A start that fails removes an AutoRemove container, as dockerd does.
    let body = json!({"Image": IMAGE, "Cmd": ["/nonexistent"], "HostConfig": {"AutoRemove": true}});
    let id = h.create("gone", &body);
    let r = h.post_empty(&format!("/containers/{id}/start"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(h.get(&format!("/containers/{id}/json")).status, 404);
    h.assert_nothing_left(&[]);
}
