//! Archives built by the tests: layers written entry by entry with the tar crate (names set
//! raw, so that hostile ones can be written too), wrapped as `docker save` or OCI layout.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// One entry of a layer.
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    /// A file with an owner, an mtime and xattrs.
    FileMeta {
        path: &'a str,
        data: &'a [u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        xattrs: &'a [(&'a str, &'a [u8])],
    },
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
}

fn header(name: &str, kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    let bytes = name.as_bytes();
    assert!(bytes.len() < 100, "test names are short");
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn set_link(h: &mut Header, target: &str) {
    let bytes = target.as_bytes();
    h.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
}

/// An uncompressed layer tar of `entries`, in order, names exactly as given.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(p, mode) => {
                let mut h = header(p, EntryType::Directory, *mode, 0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::File(p, data, mode) => {
                let mut h = header(p, EntryType::Regular, *mode, data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::FileMeta {
                path,
                data,
                mode,
                uid,
                gid,
                mtime,
                xattrs,
            } => {
                if !xattrs.is_empty() {
                    let pax: Vec<(String, &[u8])> = xattrs
                        .iter()
                        .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                        .collect();
                    b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                        .unwrap();
                }
                let mut h = header(path, EntryType::Regular, *mode, data.len() as u64);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_mtime(*mtime);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Symlink(p, target) => {
                let mut h = header(p, EntryType::Symlink, 0o777, 0);
                set_link(&mut h, target);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Hardlink(p, target) => {
                let mut h = header(p, EntryType::Link, 0o644, 0);
                set_link(&mut h, target);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Char(p, major, minor) => {
                let mut h = header(p, EntryType::Char, 0o666, 0);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Fifo(p) => {
                let mut h = header(p, EntryType::Fifo, 0o644, 0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A busybox root: /bin/busybox of the host and a few applet links, the directories a
/// runtime mounts over, and a file and a directory for an upper layer to hide.
pub fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut entries = vec![
        E::Dir("./", 0o755),
        E::Dir("bin/", 0o755),
        E::File("bin/busybox", &busybox, 0o755),
    ];
    for applet in ["sh", "echo", "cat", "ls", "true"] {
        entries.push(E::Symlink(
            Box::leak(format!("bin/{applet}").into_boxed_str()),
            "busybox",
        ));
    }
    for d in ["dev/", "proc/", "sys/", "tmp/", "etc/", "opt/", "opt/keep/"] {
        entries.push(E::Dir(d, 0o755));
    }
    entries.push(E::File("etc/hostname", b"busybox\n", 0o644));
    entries.push(E::File("etc/gone", b"to be whited out\n", 0o644));
    entries.push(E::File(
        "opt/keep/old",
        b"hidden by the opaque dir\n",
        0o644,
    ));
    layer(&entries)
}

/// The second layer: a whiteout for etc/gone, opt/keep made opaque with a new file in it.
pub fn upper_layer() -> Vec<u8> {
    layer(&[
        E::Dir("etc/", 0o755),
        E::File("etc/.wh.gone", b"", 0o644),
        E::Dir("opt/", 0o755),
        E::Dir("opt/keep/", 0o755),
        E::File("opt/keep/.wh..wh..opq", b"", 0o644),
        E::File("opt/keep/new", b"from the upper layer\n", 0o644),
        E::File("etc/motd", b"hello from the image\n", 0o644),
    ])
}

/// An image config for these layers (uncompressed tars).
pub fn config(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    serde_json::to_vec(&serde_json::json!({
        "created": "2026-12-02T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/tmp",
            "User": "0:0",
            "ExposedPorts": {"8080/tcp": {}},
            "StopSignal": "SIGTERM",
            "Labels": {"made-by": "husk-image tests"},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// A file of the outer archive.
pub enum Outer {
    File(String, Vec<u8>),
    Symlink(String, String),
}

pub fn outer_tar(files: &[Outer]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        match f {
            Outer::File(name, data) => {
                let mut h = Header::new_gnu();
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data.as_slice()).unwrap();
            }
            Outer::Symlink(name, target) => {
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// `docker save` as Docker 20.10 writes it: `<id>/layer.tar`, `<config hex>.json`,
/// manifest.json and repositories, manifest.json last.
pub fn docker_save(tag: &str, layers: &[&[u8]], config: &[u8]) -> Vec<u8> {
    let cfg = sha256(config);
    let mut files = Vec::new();
    let mut paths = Vec::new();
    for l in layers {
        let id = hex(&sha256(l)).to_string();
        files.push(Outer::File(format!("{id}/VERSION"), b"1.0".to_vec()));
        files.push(Outer::File(format!("{id}/layer.tar"), l.to_vec()));
        paths.push(format!("{id}/layer.tar"));
    }
    files.push(Outer::File(format!("{}.json", hex(&cfg)), config.to_vec()));
    let (repo, t) = tag.rsplit_once(':').unwrap();
    files.push(Outer::File(
        "repositories".into(),
        serde_json::to_vec(
            &serde_json::json!({ repo: { t: paths.last().unwrap().split('/').next().unwrap() } }),
        )
        .unwrap(),
    ));
    files.push(Outer::File(
        "manifest.json".into(),
        serde_json::to_vec(&serde_json::json!([{
            "Config": format!("{}.json", hex(&cfg)),
            "RepoTags": [tag],
            "Layers": paths,
        }]))
        .unwrap(),
    ));
    outer_tar(&files)
}

/// An OCI image layout as `skopeo copy … oci-archive:` writes it, layer blobs as given
/// (gzip or not), `name` in the index's annotations when given.
pub fn oci_layout(name: Option<&str>, blobs: &[Vec<u8>], config: &[u8]) -> Vec<u8> {
    let mut files = vec![Outer::File(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    )];
    let mut layers = Vec::new();
    for b in blobs {
        let gz = b.starts_with(&[0x1f, 0x8b]);
        layers.push(serde_json::json!({
            "mediaType": if gz { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" },
            "digest": sha256(b), "size": b.len(),
        }));
        files.push(Outer::File(
            format!("blobs/sha256/{}", hex(&sha256(b))),
            b.clone(),
        ));
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": config.len()},
        "layers": layers,
    }))
    .unwrap();
    files.push(Outer::File(
        format!("blobs/sha256/{}", hex(&sha256(config))),
        config.to_vec(),
    ));
    files.push(Outer::File(
        format!("blobs/sha256/{}", hex(&sha256(&manifest))),
        manifest.clone(),
    ));
    let mut desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(&manifest), "size": manifest.len(),
    });
    if let Some(name) = name {
        desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    }
    files.push(Outer::File(
        "index.json".into(),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [desc]})).unwrap(),
    ));
    outer_tar(&files)
}

/// Every path under `root` with its type, size and content hash: what "the store is as it
/// was" is checked against.
pub fn snapshot(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let t = e.file_type().unwrap();
            let what = if t.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if t.is_file() && !p.ends_with("images.redb") {
                sha256(&std::fs::read(&p).unwrap())
            } else {
                format!("{t:?}")
            };
            out.push((p.strip_prefix(root).unwrap().to_path_buf(), what));
        }
    }
    out.sort();
    out
}
