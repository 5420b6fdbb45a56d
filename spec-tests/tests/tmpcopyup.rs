//! The `tmpcopyup` mount option (podman's `--tmpfs`): a tmpfs that starts with a copy of the
//! directory it covers.
//!
//! runc 1.1.5 copies files, directories and symlinks with their owners; a file keeps its whole
//! mode (set-id bits too), a directory its mode less the umask and set-id bits (mkdir), the
//! covered directory's mode goes to the tmpfs root but not its owner; times and hard links are
//! not kept.

use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;

use serde_json::json;
use spec_tests::mountinfo::{self, at};
use spec_tests::Container;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// rootfs/data: a file (0640, 1000:1000), a set-uid file, a subdirectory (0750, 1000:1000)
/// with a file, a symlink to the file (owned 1000:1000), one to a directory and one out of
/// the rootfs.
fn make_data(c: &mut Container) {
    let d = c.bundle.rootfs().join("data");
    std::fs::create_dir(&d).unwrap();
    chmod(&d, 0o711);
    std::fs::write(d.join("f"), "content\n").unwrap();
    chmod(&d.join("f"), 0o640);
    lchown(d.join("f"), Some(1000), Some(1000)).unwrap();
    std::fs::write(d.join("suid"), "s\n").unwrap();
    chmod(&d.join("suid"), 0o4755);
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/g"), "g\n").unwrap();
    chmod(&d.join("sub"), 0o750);
    lchown(d.join("sub"), Some(1000), Some(1000)).unwrap();
    symlink("f", d.join("link")).unwrap();
    lchown(d.join("link"), Some(1000), Some(1000)).unwrap();
    symlink("sub", d.join("dirlink")).unwrap();
    symlink("/etc", d.join("abs")).unwrap();
    // Root in the container reads files it does not own only with CAP_DAC_OVERRIDE.
    let caps = json!([
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_DAC_OVERRIDE"
    ]);
    for set in ["bounding", "effective", "permitted"] {
        c.bundle.config["process"]["capabilities"][set] = caps.clone();
    }
}

const SHOW: &str = "cd /data && stat -c '%n %a %u:%g %F' . f suid sub sub/g link dirlink abs && \
                    readlink link && readlink dirlink && readlink abs && cat f sub/g && \
                    grep ' /data ' /proc/self/mountinfo";

const EXPECTED: &str = ". 711 0:0 directory
f 640 1000:1000 regular file
suid 4755 0:0 regular file
sub 750 1000:1000 directory
sub/g 644 0:0 regular file
link 777 1000:1000 symbolic link
dirlink 777 0:0 symbolic link
abs 777 0:0 symbolic link
f
sub
/etc
content
g
";

fn data_mount(out: &str) -> mountinfo::Mount {
    at(&mountinfo::parse(out), "/data").clone()
}

#[test]
fn tmpcopyup_copies_the_covered_directory() {
    let mut c = Container::new("tcu_copy");
    make_data(&mut c);
    // A writable root: the writes below could reach the rootfs if the tmpfs were not there.
    c.bundle.config["root"]["readonly"] = json!(false);
    c.bundle.add_mount(json!({
        "destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "tmpcopyup"]
    }));
    c.bundle.set_script(&format!(
        "{SHOW} && echo new > new && echo changed > f && rm sub/g && rm link && echo wrote"
    ));
    let out = c.run_ok();
    c.assert_clean();
    assert!(out.starts_with(EXPECTED), "{out}");
    assert!(out.ends_with("wrote\n"), "{out}");
    let m = data_mount(&out);
    assert_eq!(m.fstype, "tmpfs", "{m:?}");
    assert!(m.has_opt("rw") && m.has_opt("nosuid"), "{m:?}");
    // The rootfs's directory is as it was.
    let d = c.bundle.rootfs().join("data");
    assert_eq!(std::fs::read_to_string(d.join("f")).unwrap(), "content\n");
    assert_eq!(std::fs::read_to_string(d.join("sub/g")).unwrap(), "g\n");
    assert_eq!(std::fs::read_link(d.join("link")).unwrap(), Path::new("f"));
    assert!(!d.join("new").exists());
}

#[test]
fn tmpcopyup_readonly_tmpfs_is_filled_first() {
    let mut c = Container::new("tcu_ro");
    make_data(&mut c);
    c.bundle.add_mount(json!({
        "destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["tmpcopyup", "ro"]
    }));
    c.bundle
        .set_script(&format!("{SHOW} && touch /data/new 2>&1; ls -A /data/sub"));
    let out = c.run_ok();
    c.assert_clean();
    assert!(out.starts_with(EXPECTED), "{out}");
    assert!(
        out.ends_with("touch: /data/new: Read-only file system\ng\n"),
        "{out}"
    );
    let m = data_mount(&out);
    assert_eq!(m.fstype, "tmpfs", "{m:?}");
    assert!(m.has_opt("ro"), "{m:?}");
}

#[test]
fn tmpcopyup_on_a_missing_destination_is_an_empty_tmpfs() {
    let mut c = Container::new("tcu_missing");
    make_data(&mut c);
    // Two mounts: one with nothing to copy, one after it that must still be copied.
    c.bundle.add_mount(json!({
        "destination": "/fresh/dir", "type": "tmpfs", "source": "tmpfs",
        "options": ["tmpcopyup"]
    }));
    c.bundle.add_mount(json!({
        "destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["tmpcopyup"]
    }));
    c.bundle.set_script(
        "ls -A /fresh/dir; echo end; cat /data/f; grep -E ' /(fresh/dir|data) ' /proc/self/mountinfo",
    );
    let out = c.run_ok();
    c.assert_clean();
    assert!(out.starts_with("end\ncontent\n"), "{out}");
    let m = mountinfo::parse(&out);
    assert_eq!(at(&m, "/fresh/dir").fstype, "tmpfs", "{out}");
    assert_eq!(at(&m, "/data").fstype, "tmpfs", "{out}");
}
