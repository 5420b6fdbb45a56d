//! Unpacking single layers: what overlayfs needs made, what an untrusted layer may not do.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{layer, E};
use husk_image::unpack_layer;

fn unpack(entries: &[E]) -> (tempfile::TempDir, Result<(), String>) {
    let dir = tempfile::tempdir().unwrap();
    let r = unpack_layer(layer(entries).as_slice(), dir.path()).map_err(|e| e.to_string());
    (dir, r)
}

fn refused(entries: &[E], entry: &str, why: &str) {
    let (_dir, r) = unpack(entries);
    let err = r.expect_err("the layer must be refused");
    assert!(
        err.contains(&format!("entry {entry}:")) && err.contains(why),
        "error {err:?} should name {entry} and say {why:?}"
    );
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: NUL-terminated strings, and the buffer's pointer and length match.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn parent_dir_escape_is_refused() {
    // The layer is unpacked two levels inside a private directory, so any escape lands where
    // only this test looks, not in a shared /tmp where another run may have left an "x".
    let outside = tempfile::tempdir().unwrap();
    let root = outside.path().join("one/two");
    fs::create_dir_all(&root).unwrap();
    for (entries, entry) in [
        (
            &[E::Dir("a/", 0o755), E::File("a/../../x", b"x", 0o644)][..],
            "a/../../x",
        ),
        (&[E::File("../x", b"x", 0o644)][..], "../x"),
    ] {
        let err = unpack_layer(layer(entries).as_slice(), &root)
            .expect_err("the layer must be refused")
            .to_string();
        assert!(
            err.contains(&format!("entry {entry}:")) && err.contains("escapes"),
            "error {err:?} should name {entry} and say it escapes"
        );
    }
    assert!(!outside.path().join("one/x").exists());
    assert!(!outside.path().join("x").exists());
}

#[test]
fn absolute_path_is_refused() {
    refused(
        &[E::File("/tmp/husk-image-absolute", b"x", 0o644)],
        "/tmp/husk-image-absolute",
        "absolute path",
    );
    assert!(!Path::new("/tmp/husk-image-absolute").exists());
}

#[test]
fn file_through_a_symlink_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    refused(
        &[
            E::Symlink("link", &target),
            E::File("link/evil", b"x", 0o644),
        ],
        "link/evil",
        "symlink",
    );
    assert!(!outside.path().join("evil").exists());
    // Even a symlink that stays inside the layer is not followed.
    refused(
        &[
            E::Dir("real/", 0o755),
            E::Symlink("inside", "real"),
            E::File("inside/f", b"x", 0o644),
        ],
        "inside/f",
        "symlink",
    );
    // A symlink replaced by a file is the file, not written through.
    let (dir, r) = unpack(&[
        E::Symlink("f", &format!("{target}/f")),
        E::File("f", b"mine", 0o644),
    ]);
    r.unwrap();
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"mine");
    assert!(!outside.path().join("f").exists());
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    refused(&[E::Char("dev/kmsg", 1, 11)], "dev/kmsg", "device nodes");
    refused(&[E::Char("wh", 0, 0)], "wh", "device nodes");
    refused(&[E::Fifo("pipe")], "pipe", "fifos");
}

#[test]
fn hard_link_out_of_the_layer_is_refused() {
    refused(
        &[E::Hardlink("shadow", "/etc/shadow")],
        "shadow",
        "outside the layer",
    );
    refused(
        &[E::Hardlink("passwd", "../../../../etc/passwd")],
        "passwd",
        "outside the layer",
    );
    refused(&[E::Hardlink("x", "not/there")], "x", "not in the layer");
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"s").unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    refused(
        &[
            E::Symlink("out", &target),
            E::Hardlink("stolen", "out/secret"),
        ],
        "stolen",
        "symlink",
    );
    // Inside the layer: one inode, two names.
    let (dir, r) = unpack(&[E::File("a", b"data", 0o644), E::Hardlink("b", "a")]);
    r.unwrap();
    let (a, b) = (
        fs::metadata(dir.path().join("a")).unwrap(),
        fs::metadata(dir.path().join("b")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
}

#[test]
fn overlay_xattrs_from_the_layer_are_refused() {
    refused(
        &[E::FileMeta {
            path: "f",
            data: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: &[("trusted.overlay.redirect", b"/etc")],
        }],
        "f",
        "trusted.overlay.redirect",
    );
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let (dir, r) = unpack(&[
        E::Dir("etc/", 0o755),
        E::File("etc/.wh.passwd", b"", 0o644),
        E::File("gone/.wh.deep", b"", 0o644),
        E::Dir("opt/", 0o711),
        E::File("opt/.wh..wh..opq", b"", 0o644),
        E::File("opt/.wh..wh.plnk", b"", 0o644),
    ]);
    r.unwrap();
    for w in ["etc/passwd", "gone/deep"] {
        let m = fs::symlink_metadata(dir.path().join(w)).unwrap();
        assert!(m.file_type().is_char_device(), "{w} is a char device");
        assert_eq!(m.rdev(), 0, "{w} is 0:0");
    }
    assert!(!dir.path().join("etc/.wh.passwd").exists());
    assert_eq!(
        xattr(&dir.path().join("opt"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dir.path().join("opt/.wh..wh..opq").exists());
    assert!(!dir.path().join("opt/.wh..wh.plnk").exists());
    assert_eq!(
        fs::metadata(dir.path().join("opt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o711
    );
}

#[test]
fn ownership_modes_times_and_xattrs_are_kept() {
    let (dir, r) = unpack(&[
        E::Dir("./", 0o755),
        E::Dir("d/", 0o1777),
        E::FileMeta {
            path: "d/suid",
            data: b"#!/bin/sh\n",
            mode: 0o4755,
            uid: 1234,
            gid: 5678,
            mtime: 1_600_000_000,
            xattrs: &[
                ("user.note", b"kept"),
                ("security.capability", &CAP_NET_RAW),
            ],
        },
        E::Symlink("d/link", "suid"),
    ]);
    r.unwrap();
    let f = fs::symlink_metadata(dir.path().join("d/suid")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((f.uid(), f.gid()), (1234, 5678));
    assert_eq!(f.mtime(), 1_600_000_000);
    assert_eq!(
        xattr(&dir.path().join("d/suid"), "user.note").as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        xattr(&dir.path().join("d/suid"), "security.capability").as_deref(),
        Some(&CAP_NET_RAW[..])
    );
    let d = fs::metadata(dir.path().join("d")).unwrap();
    assert_eq!(d.mode() & 0o7777, 0o1777);
    assert_eq!(
        d.mtime(),
        1_700_000_000,
        "directory mtime set after its entries"
    );
    assert_eq!(
        fs::read_link(dir.path().join("d/link")).unwrap(),
        Path::new("suid")
    );
}

/// A version 2 file capability: cap_net_raw (bit 13) permitted and effective.
const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

#[test]
fn truncated_layer_is_an_error() {
    let data = layer(&[E::File("f", &[7u8; 5000], 0o644)]);
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_layer(&data[..2000], dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("malformed tar") || err.contains("entry f"),
        "{err}"
    );
}
