//! Loading archives the tests build (docker save and OCI layout), the store's commands, bad
//! archives leaving the store as it was, and a container run on the unpacked layers.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use husk_image::{Error, Progress, Removed, Store};

fn load(store: &mut Store, archive: &[u8]) -> husk_image::Result<Vec<husk_image::Loaded>> {
    store.load(archive, None, &mut |_| {})
}

fn busybox_image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (l1, l2) = (busybox_layer(), upper_layer());
    let cfg = config(&[&l1, &l2]);
    (l1, l2, cfg)
}

#[test]
fn docker_save_archive_loads() {
    let (l1, l2, cfg) = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut events = Vec::new();
    let loaded = store
        .load(
            docker_save("busybox:latest", &[&l1, &l2], &cfg).as_slice(),
            None,
            &mut |p| events.push(format!("{p:?}")),
        )
        .unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, sha256(&cfg));
    assert_eq!(loaded[0].tags, ["busybox:latest"]);
    assert!(events.iter().any(|e| e.starts_with("Read")), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.starts_with("Layer")).count(), 2);

    let images = store.images().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags, ["busybox:latest"]);
    assert_eq!(images[0].size, (l1.len() + l2.len()) as u64);

    let inspect = store.inspect("docker.io/library/busybox").unwrap();
    assert_eq!(inspect.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(inspect.config.env, ["PATH=/bin"]);
    assert_eq!(inspect.config.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(inspect.config.user.as_deref(), Some("0:0"));
    assert_eq!(inspect.config.exposed_ports, ["8080/tcp"]);
    assert_eq!(inspect.config.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(inspect.root_fs.layers, [sha256(&l1), sha256(&l2)]);
    // Top layer first, as lowerdir= wants them.
    assert_eq!(
        inspect.layer_dirs,
        [store.layer_dir(&sha256(&l2)), store.layer_dir(&sha256(&l1))]
    );
    let busybox = inspect.layer_dirs[1].join("bin/busybox");
    assert_eq!(
        fs::read(&busybox).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(fs::metadata(&busybox).unwrap().mode() & 0o7777, 0o755);
    let whiteout = fs::symlink_metadata(inspect.layer_dirs[0].join("etc/gone")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    // By id too, whole or a prefix.
    assert_eq!(store.inspect(&sha256(&cfg)).unwrap().id, sha256(&cfg));
    assert_eq!(
        store.inspect(&hex(&sha256(&cfg))[..12]).unwrap().id,
        sha256(&cfg)
    );
    assert!(matches!(store.inspect("nothere"), Err(Error::NotFound(_))));

    // Loading it again reuses every layer and changes nothing.
    let before = snapshot(dir.path());
    let mut reused = 0;
    store
        .load(
            docker_save("busybox:latest", &[&l1, &l2], &cfg).as_slice(),
            None,
            &mut |p| {
                if let Progress::Layer { reused: true, .. } = p {
                    reused += 1;
                }
            },
        )
        .unwrap();
    assert_eq!(reused, 2);
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn oci_layout_with_gzip_layers_loads() {
    let (l1, l2, cfg) = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let archive = oci_layout(Some("busybox:gz"), &[gzip(&l1), gzip(&l2)], &cfg);
    let loaded = load(&mut store, &archive).unwrap();
    assert_eq!(loaded[0].tags, ["busybox:gz"]);
    let inspect = store.inspect("busybox:gz").unwrap();
    assert_eq!(inspect.root_fs.layers, [sha256(&l1), sha256(&l2)]);
    assert!(inspect.layer_dirs[1].join("bin/busybox").is_file());
    // The blobs are kept as loaded (compressed), under their own digests.
    assert!(dir
        .path()
        .join("blobs/sha256")
        .join(hex(&sha256(&gzip(&l1))))
        .is_file());

    // The same image uncompressed, with a bare tag for a name (no repository, so no tag):
    // one image still (one config), its tag kept, its layers the ones already unpacked,
    // its blobs now the uncompressed ones.
    let archive = oci_layout(Some("latest"), &[l1.clone(), l2.clone()], &cfg);
    let loaded = load(&mut store, &archive).unwrap();
    assert!(loaded[0].tags.is_empty());
    let images = store.images().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags, ["busybox:gz"]);
    assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 2);
    assert!(!dir
        .path()
        .join("blobs/sha256")
        .join(hex(&sha256(&gzip(&l1))))
        .exists());
    assert!(dir
        .path()
        .join("blobs/sha256")
        .join(hex(&sha256(&l1)))
        .is_file());

    // A config under a new name is a new image.
    let cfg2 = config(&[&l1]);
    load(
        &mut store,
        &oci_layout(Some("other:1"), &[gzip(&l1)], &cfg2),
    )
    .unwrap();
    assert_eq!(
        store.images().unwrap()[0].repo_tags,
        ["other:1"],
        "newest first"
    );
}

#[test]
fn tag_and_rmi() {
    let (l1, l2, cfg) = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    load(
        &mut store,
        &docker_save("busybox:latest", &[&l1, &l2], &cfg),
    )
    .unwrap();
    // A second image sharing the bottom layer.
    let cfg2 = config(&[&l1]);
    load(&mut store, &docker_save("base:1", &[&l1], &cfg2)).unwrap();

    store.tag("busybox", "mine/bb:v1").unwrap();
    assert!(matches!(
        store.tag("busybox", "Bad Name"),
        Err(Error::Reference(_))
    ));
    assert_eq!(
        store.inspect("mine/bb:v1").unwrap().repo_tags,
        ["busybox:latest", "mine/bb:v1"]
    );
    // By id, an image with two tags needs force.
    let err = store.rmi(&sha256(&cfg), false).unwrap_err().to_string();
    assert!(err.contains("must be forced"), "{err}");

    assert_eq!(
        store.rmi("busybox", false).unwrap(),
        [Removed::Untagged("busybox:latest".into())]
    );
    assert_eq!(
        store.rmi("mine/bb:v1", false).unwrap(),
        [
            Removed::Untagged("mine/bb:v1".into()),
            Removed::Deleted(sha256(&cfg))
        ]
    );
    // The upper layer and busybox's blobs are gone; the shared layer stays for base:1.
    assert!(!store.layer_dir(&sha256(&l2)).exists());
    assert!(store.layer_dir(&sha256(&l1)).join("bin/busybox").exists());
    assert!(!dir
        .path()
        .join("blobs/sha256")
        .join(hex(&sha256(&cfg)))
        .exists());
    assert!(matches!(
        store.rmi("busybox", false),
        Err(Error::NotFound(_))
    ));

    store.rmi("base:1", false).unwrap();
    assert!(store.images().unwrap().is_empty());
    assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );

    // The store survives reopening.
    load(
        &mut store,
        &docker_save("busybox:latest", &[&l1, &l2], &cfg),
    )
    .unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.images().unwrap()[0].repo_tags, ["busybox:latest"]);
}

/// Each bad archive gets one error naming what is wrong, and the store (already holding an
/// image) is left exactly as it was.
#[test]
fn malformed_archives_leave_the_store_as_it_was() {
    let (l1, l2, cfg) = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    load(
        &mut store,
        &docker_save("busybox:latest", &[&l1], &config(&[&l1])),
    )
    .unwrap();
    let before = snapshot(dir.path());
    let images = format!("{:?}", store.images().unwrap());

    let good = oci_layout(Some("x:1"), &[gzip(&l1), gzip(&l2)], &cfg);
    let evil = layer(&[
        E::File("etc/ok", b"fine", 0o644),
        E::File("../x", b"x", 0o644),
    ]);
    let cfg_evil = config(&[&l2, &evil]);
    let wrong_cfg = config(&[&l2, &l1]);
    let mut cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "malformed archive".into(),
        ),
        (
            "not a tar",
            b"hello".repeat(200),
            "malformed archive".into(),
        ),
        (
            "no manifest",
            outer_tar(&[Outer::File("x".into(), vec![1])]),
            "neither manifest.json".into(),
        ),
        (
            "layer with ..",
            docker_save("evil:1", &[&l2, &evil], &cfg_evil),
            format!(
                "layer {}: entry ../x: path escapes the layer",
                sha256(&evil)
            ),
        ),
        (
            "diff_id mismatch",
            docker_save("wrong:1", &[&l2, &l2], &wrong_cfg),
            "the config's diff_id".into(),
        ),
    ];
    // A blob whose content is not its digest: one byte of the config changed.
    let mut tampered = good.clone();
    let at = find(&tampered, br#""Labels""#);
    tampered[at + 1] = b'l';
    cases.push((
        "wrong digest",
        tampered,
        format!("does not match digest {}", sha256(&cfg)),
    ));
    // A blob the manifest names, missing.
    let missing = {
        let (l3, cfg3) = (upper_layer(), config(&[&l1, &upper_layer()]));
        let full = oci_layout(Some("m:1"), &[l1.clone(), l3.clone()], &cfg3);
        let mut ar = tar::Archive::new(full.as_slice());
        let mut files = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            if name.ends_with(hex(&sha256(&l3))) {
                continue;
            }
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            files.push(Outer::File(name, data));
        }
        outer_tar(&files)
    };
    cases.push((
        "missing blob",
        missing,
        format!("layer blob {} is missing", sha256(&upper_layer())),
    ));

    for (what, archive, want) in cases {
        let err = load(&mut store, &archive).expect_err(what).to_string();
        assert!(
            err.contains(&want),
            "{what}: {err:?} should contain {want:?}"
        );
        assert_eq!(snapshot(dir.path()), before, "{what}: the store changed");
        assert_eq!(format!("{:?}", store.images().unwrap()), images, "{what}");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

fn husk_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HUSK_BIN") {
        return Some(p.into());
    }
    let target =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/x86_64-unknown-linux-gnu");
    ["debug/husk", "release/husk"]
        .iter()
        .map(|p| target.join(p))
        .find(|p| p.is_file())
}

/// The layers as overlayfs lower directories under a writable upper one, seen merged, and
/// a container run on them by husk printing a file of the image through busybox.
#[test]
fn unpacked_layers_run_under_overlayfs() {
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap();
    if !filesystems.lines().any(|l| l.ends_with("\toverlay")) {
        eprintln!("SKIP: overlayfs is not available on this kernel");
        return;
    }
    let (l1, l2, cfg) = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("store")).unwrap();
    load(
        &mut store,
        &docker_save("busybox:latest", &[&l1, &l2], &cfg),
    )
    .unwrap();
    let lower: Vec<String> = store
        .inspect("busybox")
        .unwrap()
        .layer_dirs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let bundle = dir.path().join("bundle");
    for d in ["rootfs", "upper", "work"] {
        fs::create_dir_all(bundle.join(d)).unwrap();
    }
    let mount = format!(
        "mount -t overlay overlay -o lowerdir={},upperdir={b}/upper,workdir={b}/work {b}/rootfs",
        lower.join(":"),
        b = bundle.display()
    );
    // The merged view: the whiteout hides etc/gone, the opaque opt/keep shows only the upper.
    let script = format!(
        "{mount} && cd {}/rootfs && ls etc opt/keep && test ! -e etc/gone && test ! -e opt/keep/old",
        bundle.display()
    );
    let out = in_private_mounts(&script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("motd") && listing.contains("new"),
        "{listing}"
    );
    assert!(
        !listing.contains("gone") && !listing.contains("old"),
        "{listing}"
    );

    let Some(husk) = husk_bin() else {
        eprintln!(
            "SKIP: no husk binary (set HUSK_BIN or cargo build -p husk); merged view checked"
        );
        return;
    };
    let spec = Command::new(&husk)
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        spec.status.success(),
        "{}",
        String::from_utf8_lossy(&spec.stderr)
    );
    let path = bundle.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["cat", "/etc/motd"]);
    config["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let state = dir.path().join("state");
    let id = format!("husk-image-test-{}", std::process::id());
    let script = format!(
        "{mount} && {} --root {} run --bundle {} {id}",
        husk.display(),
        state.display(),
        bundle.display()
    );
    let out = in_private_mounts(&script);
    assert!(
        out.status.success(),
        "husk run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the image\n"
    );
}

/// Runs `script` in a mount namespace of its own, so the overlay goes away with it.
fn in_private_mounts(script: &str) -> std::process::Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc", script])
        .output()
        .unwrap()
}

/// Archives written by the real tools: an image made by umoci from /bin/busybox, copied by
/// skopeo into a `docker save` archive (layers linked by symlinks, as Docker writes them)
/// and into an OCI archive (gzip layers): both load, as one image.
#[test]
fn skopeo_archives_load() {
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if !have("skopeo") || !have("umoci") {
        eprintln!("SKIP: skopeo or umoci missing (Debian's packages skopeo, umoci)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!(
        "cd {d} && umoci init --layout oci && umoci new --image oci:bb \
         && umoci unpack --image oci:bb bundle >/dev/null \
         && mkdir -p bundle/rootfs/bin bundle/rootfs/etc && cp /bin/busybox bundle/rootfs/bin/ \
         && ln -s busybox bundle/rootfs/bin/sh && echo hi > bundle/rootfs/etc/motd \
         && umoci repack --image oci:bb bundle && rm -rf bundle \
         && umoci config --image oci:bb --config.cmd sh --config.env PATH=/bin \
         && umoci unpack --image oci:bb bundle >/dev/null && rm bundle/rootfs/etc/motd \
         && umoci repack --image oci:bb bundle \
         && skopeo copy -q oci:oci:bb docker-archive:docker.tar:busybox:latest \
         && skopeo copy -q oci:oci:bb oci-archive:oci.tar:busybox:oci"
    );
    let out = Command::new("sh").args(["-ec", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut store = Store::open(dir.path().join("store")).unwrap();
    let noop = &mut |_: Progress| {};
    let a = store
        .load_file(&dir.path().join("docker.tar"), noop)
        .unwrap();
    let b = store.load_file(&dir.path().join("oci.tar"), noop).unwrap();
    assert_eq!(a[0].id, b[0].id);
    let images = store.images().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags, ["busybox:latest", "busybox:oci"]);
    let inspect = store.inspect("busybox:oci").unwrap();
    assert_eq!(inspect.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    let motd = fs::symlink_metadata(inspect.layer_dirs[0].join("etc/motd")).unwrap();
    assert!(
        motd.file_type().is_char_device(),
        "umoci's whiteout of etc/motd"
    );
    assert!(inspect.layer_dirs[1].join("bin/busybox").is_file());
}

/// The archive's files but index.json, and index.json parsed.
fn split_index(archive: &[u8]) -> (Vec<Outer>, serde_json::Value) {
    let mut files = Vec::new();
    let mut index = None;
    for e in tar::Archive::new(archive).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == "index.json" {
            index = Some(serde_json::from_slice(&data).unwrap());
        } else {
            files.push(Outer::File(name, data));
        }
    }
    (files, index.unwrap())
}

/// A gzipped archive (`docker save | gzip`), and an OCI layout whose index.json points to a
/// multi-platform index: this platform's manifest is the one loaded (the other one's blobs
/// are not even in the archive), named by containerd's annotation.
#[test]
fn gzipped_archive_and_nested_index_load() {
    let (l1, l2, cfg) = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let gz = gzip(&docker_save("busybox:gz", &[&l1, &l2], &cfg));
    let mut total = None;
    store
        .load(gz.as_slice(), Some(gz.len() as u64), &mut |p| {
            if let Progress::Read { done, total: t } = p {
                total = Some((done, t));
            }
        })
        .unwrap();
    assert_eq!(
        total,
        Some((gz.len() as u64, Some(gz.len() as u64))),
        "counted compressed"
    );
    assert_eq!(store.inspect("busybox:gz").unwrap().id, sha256(&cfg));

    let cfg2 = config(&[&l1]);
    let (mut files, index) = split_index(&oci_layout(None, &[gzip(&l1)], &cfg2));
    let (arch, other) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", "arm64"),
        _ => ("arm64", "amd64"),
    };
    let mut ours = index["manifests"][0].clone();
    ours["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
    let theirs = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "0".repeat(64)), "size": 1,
        "platform": {"architecture": other, "os": "linux"},
    });
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [theirs, ours],
    }))
    .unwrap();
    files.push(Outer::File(
        format!("blobs/sha256/{}", hex(&sha256(&nested))),
        nested.clone(),
    ));
    files.push(Outer::File(
        "index.json".into(),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha256(&nested), "size": nested.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"},
        }]}))
        .unwrap(),
    ));
    let loaded = load(&mut store, &outer_tar(&files)).unwrap();
    assert_eq!(loaded[0].id, sha256(&cfg2));
    assert_eq!(loaded[0].tags, ["multi:1"]);
}

/// Archives with bytes changed at random places (a fixed seed): each load fails cleanly or
/// loads, never panics, and a failed one leaves the store as it was.
#[test]
fn mutated_archives_fail_cleanly() {
    let l1 = layer(&[
        E::Dir("bin/", 0o755),
        E::File("bin/x", b"#!/bin/sh\necho x\n", 0o755),
        E::Symlink("bin/y", "x"),
        E::Hardlink("bin/z", "bin/x"),
        E::File("bin/.wh.gone", b"", 0o644),
    ]);
    let cfg = config(&[&l1]);
    let archives = [
        docker_save("m:1", &[&l1], &cfg),
        oci_layout(Some("m:2"), &[gzip(&l1)], &cfg),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut failed, mut loaded) = (0, 0);
    for round in 0..300 {
        let mut a = archives[round % 2].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % a.len() as u64) as usize;
            a[at] = next() as u8;
        }
        let before = snapshot(dir.path());
        match load(&mut store, &a) {
            Ok(_) => {
                loaded += 1;
                for i in store.images().unwrap() {
                    store.rmi(&i.id, true).unwrap();
                }
            }
            Err(_) => {
                failed += 1;
                assert_eq!(snapshot(dir.path()), before, "round {round}");
            }
        }
    }
    eprintln!("{failed} mutated archives refused, {loaded} loaded (bytes that matter to no check)");
    assert!(failed > 100, "{failed}");
}
