//! Pull from Debian's docker-registry serving on loopback, with an image pushed there by
//! skopeo from an OCI archive the test builds.
#![cfg(feature = "pull")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use husk_image::{Error, PullOptions, Store};

const REGISTRY: &str = "/usr/bin/docker-registry";

/// The registry process, killed and reaped when dropped.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        // Already gone is fine: the wait below reaps it either way.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a registry on a free loopback port; returns it with its `host:port` once it says
/// it listens.
fn start_registry(dir: &std::path::Path) -> (Registry, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("registry").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(REGISTRY)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let registry = Registry(child);
    let (tx, rx) = mpsc::channel();
    // The registry logs to stderr until it exits; this thread reads it to the end, so the
    // registry never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("docker-registry did not say it listens within 20 s");
    (registry, addr)
}

#[test]
fn pull_from_a_loopback_registry() {
    for tool in [REGISTRY, "/usr/bin/skopeo"] {
        if !std::path::Path::new(tool).exists() {
            eprintln!("SKIP: {tool} missing (Debian's packages docker-registry, skopeo)");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (_registry, addr) = start_registry(dir.path());

    let (l1, l2) = (busybox_layer(), upper_layer());
    let cfg = config(&[&l1, &l2]);
    let archive = dir.path().join("busybox.tar");
    std::fs::write(
        &archive,
        oci_layout(Some("busybox:latest"), &[gzip(&l1), gzip(&l2)], &cfg),
    )
    .unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}:busybox:latest", archive.display()))
        .arg(format!("docker://{addr}/husk/busybox:v1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut store = Store::open(dir.path().join("store")).unwrap();
    let options = PullOptions {
        insecure: vec![addr.clone()],
        auth: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut reads = 0;
    let reference = format!("{addr}/husk/busybox:v1");
    let loaded = rt
        .block_on(store.pull(&reference, &options, &mut |p| {
            if let husk_image::Progress::Read { .. } = p {
                reads += 1;
            }
        }))
        .unwrap();
    assert_eq!(loaded.id, sha256(&cfg));
    assert_eq!(loaded.tags, [reference.as_str()]);
    assert_eq!(reads, 3, "config and two layers");
    let inspect = store.inspect(&reference).unwrap();
    assert_eq!(inspect.root_fs.layers, [sha256(&l1), sha256(&l2)]);
    assert!(inspect.layer_dirs[1].join("bin/busybox").is_file());
    assert_eq!(inspect.config.cmd.as_deref(), Some(&["sh".to_string()][..]));

    // A tag the registry lacks: an error naming it, and the store as it was.
    let before = snapshot(&dir.path().join("store"));
    let missing = format!("{addr}/husk/busybox:nope");
    let err = rt
        .block_on(store.pull(&missing, &options, &mut |_| {}))
        .unwrap_err();
    assert!(matches!(err, Error::Pull(_)), "{err}");
    assert!(err.to_string().contains(&missing), "{err}");
    assert_eq!(snapshot(&dir.path().join("store")), before);
}

/// huskd spawns pulls on a multi-threaded runtime: the future must be Send.
#[allow(dead_code)]
fn pull_is_send(store: &mut Store, options: &PullOptions) {
    fn send<T: Send>(_: T) {}
    send(store.pull("busybox", options, &mut |_| {}));
}
