//! Mount behaviours in depth: tmpfs modes, bind remount flags, recursive (`r*`) options,
//! id-mapped mounts, read-only /dev and tmpfs, bind sources a user namespace cannot reach, and
//! a rootfs whose /proc or /sys is a symlink.
//!
//! Expectations are runc 1.2's; every test passes on Debian's runc 1.1.5 too, except where 1.1.5
//! lacks the 1.2 behaviour: those tests say so and skip there.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec_tests::mountinfo::{self, at};
use spec_tests::runtime::is_runc_1_1;
use spec_tests::tmp::TempDir;
use spec_tests::{assert_one_line_naming, Container};

/// Makes `rootfs/<dir>` as the host's root, so that a container whose root is not the host's
/// need not create the mount point (it could not, in a rootfs owned by host root).
fn mount_point(c: &Container, dir: &str) -> PathBuf {
    let p = c.bundle.rootfs().join(dir.trim_start_matches('/'));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A host directory with tmpfs mounts made on it (or below it), unmounted on drop before the
/// directory is removed.
struct HostMounts {
    mounted: Vec<PathBuf>,
    dir: TempDir,
}

impl HostMounts {
    fn new(name: &str) -> HostMounts {
        let dir = TempDir::new(name);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        HostMounts {
            mounted: Vec::new(),
            dir,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Mounts a tmpfs (mode 755) at `sub` ("" for the directory itself) with `flags`; MS_RDONLY
    /// makes the mount read-only, not the filesystem.
    fn tmpfs(&mut self, sub: &str, flags: libc::c_ulong) -> PathBuf {
        let target = self.dir.path().join(sub);
        std::fs::create_dir_all(&target).unwrap();
        let (src, fstype, data) = (
            cstr(Path::new("tmpfs")),
            cstr(Path::new("tmpfs")),
            cstr(Path::new("mode=755")),
        );
        // SAFETY: valid NUL-terminated strings.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                cstr(&target).as_ptr(),
                fstype.as_ptr(),
                flags & !libc::MS_RDONLY,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            r,
            0,
            "mount tmpfs on {target:?}: {}",
            std::io::Error::last_os_error()
        );
        if flags & libc::MS_RDONLY != 0 {
            // Read-only as a mount, not as a filesystem, so that a mount flag can lift it.
            // SAFETY: valid path; no source, type or data for a remount.
            let r = unsafe {
                libc::mount(
                    std::ptr::null(),
                    cstr(&target).as_ptr(),
                    std::ptr::null(),
                    libc::MS_REMOUNT | libc::MS_BIND | flags,
                    std::ptr::null(),
                )
            };
            assert_eq!(
                r,
                0,
                "remount {target:?}: {}",
                std::io::Error::last_os_error()
            );
        }
        self.mounted.push(target.clone());
        target
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for t in self.mounted.iter().rev() {
            // SAFETY: valid path.
            if unsafe { libc::umount2(cstr(t).as_ptr(), libc::MNT_DETACH) } != 0 {
                eprintln!(
                    "spec-tests: umount {t:?}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

fn bind(dest: &str, source: &Path, options: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": source, "options": options})
}

/// Runs `script` in the foreground and returns its stdout, asserting success and no leftovers.
#[track_caller]
fn run_ok(c: &mut Container, script: &str) -> String {
    c.bundle.set_script(script);
    let out = c.run_ok();
    c.assert_clean();
    out
}

/// `create` must fail with one line naming one of `needles`, and leave nothing behind.
#[track_caller]
fn assert_refused(c: &mut Container, needles: &[&str]) {
    let out = c.create();
    assert_one_line_naming(out.assert_failure(), needles);
    c.assert_clean();
}

// ---- tmpfs ----

#[test]
fn tmpfs_takes_the_mode_of_its_mount_point() {
    // runc 1.1.5 chmods the tmpfs to the mount point's mode after mounting; runc 1.2 passes it
    // as mode=: a tmpfs over an existing 1750 directory is 1750, not tmpfs's default 1777.
    let mut c = Container::new("tmpfs_mode");
    let dir = mount_point(&c, "/scratch");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1750)).unwrap();
    c.bundle
        .add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}));
    let out = run_ok(
        &mut c,
        "stat -c %a /scratch; grep ' /scratch ' /proc/self/mountinfo",
    );
    let m = mountinfo::parse(&out);
    assert_eq!(at(&m, "/scratch").fstype, "tmpfs", "{out}");
    assert_eq!(out.lines().next(), Some("1750"), "{out}");
}

#[test]
fn tmpfs_mode_option_wins_over_the_mount_point() {
    if is_runc_1_1() {
        eprintln!(
            "skipped: runc 1.1.5 chmods the tmpfs to its mount point's mode even when the \
             options have mode= (fixed in runc 1.1.8 and 1.2, PR #3912)"
        );
        return;
    }
    let mut c = Container::new("tmpfs_mode_opt");
    let dir = mount_point(&c, "/scratch");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1750)).unwrap();
    c.bundle.add_mount(json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["mode=705"]
    }));
    assert_eq!(run_ok(&mut c, "stat -c %a /scratch"), "705\n");
}

#[test]
fn readonly_dev_tmpfs_still_gets_pts_and_devices() {
    // runc mounts a tmpfs (and /dev) read-write, fills it, and makes it read-only at the end.
    let mut c = Container::new("dev_ro");
    let mounts = c.bundle.config["mounts"].as_array_mut().unwrap();
    let dev = mounts
        .iter_mut()
        .find(|m| m["destination"] == "/dev")
        .unwrap();
    dev["options"].as_array_mut().unwrap().push(json!("ro"));
    let out = run_ok(
        &mut c,
        "stat -c '%F %t:%T' /dev/null; ls /dev/pts/ptmx; touch /dev/x 2>&1; \
         grep -E ' /dev(/pts)? ' /proc/self/mountinfo",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("character special file 1:3"), "{out}");
    assert_eq!(lines.next(), Some("/dev/pts/ptmx"), "{out}");
    assert_eq!(
        lines.next(),
        Some("touch: /dev/x: Read-only file system"),
        "{out}"
    );
    let m = mountinfo::parse(&out);
    let dev = at(&m, "/dev");
    assert!(dev.has_opt("ro") && dev.has_opt("nosuid"), "{dev:?}");
    assert_eq!(at(&m, "/dev/pts").fstype, "devpts", "{out}");
}

#[test]
fn readonly_tmpfs_can_hold_a_mount() {
    let mut c = Container::new("tmpfs_ro_nested");
    c.bundle.add_mount(
        json!({"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
    );
    c.bundle
        .add_mount(json!({"destination": "/a/b", "type": "tmpfs", "source": "tmpfs"}));
    let out = run_ok(
        &mut c,
        "touch /a/x 2>&1; grep -E ' /a(/b)? ' /proc/self/mountinfo",
    );
    assert!(
        out.starts_with("touch: /a/x: Read-only file system\n"),
        "{out}"
    );
    let m = mountinfo::parse(&out);
    assert!(at(&m, "/a").has_opt("ro"), "{out}");
    assert!(at(&m, "/a/b").has_opt("rw"), "{out}");
}

// ---- bind remounts and locked flags ----

const LOCKABLE: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

#[test]
fn bind_ro_of_a_nosuid_source_sets_the_requested_flags() {
    // Without a user namespace nothing is locked: runc remounts with exactly the options asked
    // for (mount(8)'s "--bind -o ro"), so the source's nosuid,nodev,noexec are not carried over.
    let mut host = HostMounts::new("bind-flags");
    let src = host.tmpfs("", LOCKABLE);
    let mut c = Container::new("bind_ro_flags");
    c.bundle.add_mount(bind("/v", &src, &["bind", "ro"]));
    let out = run_ok(&mut c, "grep ' /v ' /proc/self/mountinfo");
    let v = at(&mountinfo::parse(&out), "/v").clone();
    assert!(v.has_opt("ro"), "{v:?}");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(!v.has_opt(o), "{o} kept: {v:?}");
    }
}

#[test]
fn bind_without_options_keeps_the_source_flags() {
    let mut host = HostMounts::new("bind-plain");
    let src = host.tmpfs("", LOCKABLE);
    let mut c = Container::new("bind_plain");
    c.bundle.add_mount(bind("/v", &src, &["bind"]));
    let out = run_ok(&mut c, "grep ' /v ' /proc/self/mountinfo");
    let v = at(&mountinfo::parse(&out), "/v").clone();
    for o in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(v.has_opt(o), "{o} missing: {v:?}");
    }
}

#[test]
fn bind_ro_in_a_user_namespace_keeps_the_locked_flags() {
    if is_runc_1_1() {
        eprintln!(
            "skipped: runc 1.1.5 remounts with only the requested flags, which the kernel \
             refuses (EPERM) when the source's nosuid/nodev/noexec are locked; runc 1.2 adds \
             the source's locked flags"
        );
        return;
    }
    let mut host = HostMounts::new("bind-locked");
    let src = host.tmpfs("", LOCKABLE);
    std::fs::write(src.join("f"), "data\n").unwrap();
    let mut c = Container::new("bind_locked");
    c.bundle.add_user_namespace(100000, 100000);
    mount_point(&c, "/v");
    c.bundle.add_mount(bind("/v", &src, &["bind", "ro"]));
    let out = run_ok(
        &mut c,
        "cat /v/f; touch /v/x 2>&1; grep ' /v ' /proc/self/mountinfo",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("data"), "{out}");
    assert_eq!(
        lines.next(),
        Some("touch: /v/x: Read-only file system"),
        "{out}"
    );
    let v = at(&mountinfo::parse(&out), "/v").clone();
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(v.has_opt(o), "{o} missing: {v:?}");
    }
}

#[test]
fn bind_asking_to_clear_a_locked_flag_is_refused() {
    // "exec" over a source whose noexec is locked cannot be honoured: runc fails rather than
    // make a mount other than the one asked for.
    let mut host = HostMounts::new("bind-clear");
    let src = host.tmpfs("", LOCKABLE);
    let mut c = Container::new("bind_clear_locked");
    c.bundle.add_user_namespace(100000, 100000);
    mount_point(&c, "/v");
    c.bundle
        .add_mount(bind("/v", &src, &["bind", "ro", "exec"]));
    assert_refused(&mut c, &["not permitted"]);
}

// ---- recursive mount attributes ----

#[test]
fn recursive_options_reach_submounts() {
    let mut host = HostMounts::new("rro");
    host.tmpfs("sub", 0);
    let mut c = Container::new("rro");
    c.bundle.add_mount(bind(
        "/t",
        host.path(),
        &["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"],
    ));
    let out = run_ok(
        &mut c,
        "touch /t/sub/x 2>&1; touch /t/y 2>&1; grep -E ' /t(/sub)? ' /proc/self/mountinfo",
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("touch: /t/sub/x: Read-only file system"),
        "{out}"
    );
    assert_eq!(
        lines.next(),
        Some("touch: /t/y: Read-only file system"),
        "{out}"
    );
    let m = mountinfo::parse(&out);
    for p in ["/t", "/t/sub"] {
        let mnt = at(&m, p);
        for o in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
            assert!(mnt.has_opt(o), "{o} missing on {p}: {mnt:?}");
        }
    }
}

#[test]
fn recursive_clear_makes_submounts_writable() {
    // rrw clears read-only on the whole tree, whatever the submounts were mounted with.
    let mut host = HostMounts::new("rrw");
    host.tmpfs("sub", libc::MS_RDONLY);
    let mut c = Container::new("rrw");
    c.bundle
        .add_mount(bind("/t", host.path(), &["rbind", "rrw"]));
    let out = run_ok(&mut c, "touch /t/sub/x && echo written");
    assert_eq!(out, "written\n");
    assert!(host.path().join("sub/x").exists());
}

// ---- id-mapped mounts ----

/// Why id-mapped mounts cannot be tested here, if they cannot: runc 1.1 has none, and the
/// filesystem under /tmp (where the test directories are) may not support them.
fn idmap_untestable() -> Option<&'static str> {
    if is_runc_1_1() {
        return Some("skipped: runc 1.1.5 has no id-mapped mounts (runc 1.2 has)");
    }
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and a statfs buffer.
    let r = unsafe { libc::statfs(c"/tmp".as_ptr(), &mut s) };
    assert_eq!(r, 0, "statfs /tmp: {}", std::io::Error::last_os_error());
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683E;
    match s.f_type {
        EXT4 | XFS | BTRFS => None,
        _ => Some("skipped: /tmp is not on ext4, xfs or btrfs; its filesystem may not support id-mapped mounts"),
    }
}

#[test]
fn idmapped_mount_shows_the_mapped_owner() {
    if let Some(why) = idmap_untestable() {
        eprintln!("{why}");
        return;
    }
    let host = HostMounts::new("idmap");
    std::fs::write(host.path().join("f"), "").unwrap();
    let mut c = Container::new("idmap");
    // Host id 0 on disk shows as 1000 through the mount; the container has no user namespace.
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    c.bundle.add_mount(json!({
        "destination": "/m", "type": "bind", "source": host.path(), "options": ["bind"],
        "uidMappings": map, "gidMappings": map
    }));
    c.bundle.add_mount(bind("/plain", host.path(), &["bind"]));
    let out = run_ok(&mut c, "stat -c %u:%g /m/f /plain/f");
    assert_eq!(out, "1000:1000\n0:0\n");
}

#[test]
fn idmap_option_takes_the_container_user_namespace_mapping() {
    if let Some(why) = idmap_untestable() {
        eprintln!("{why}");
        return;
    }
    let host = HostMounts::new("idmap-userns");
    std::fs::write(host.path().join("f"), "").unwrap();
    let mut c = Container::new("idmap_userns");
    c.bundle.add_user_namespace(100000, 100000);
    mount_point(&c, "/m");
    mount_point(&c, "/plain");
    c.bundle
        .add_mount(bind("/m", host.path(), &["bind", "idmap"]));
    c.bundle.add_mount(bind("/plain", host.path(), &["bind"]));
    // Host root is unmapped in the container (65534) except through the id-mapped mount.
    let out = run_ok(
        &mut c,
        "stat -c %u:%g /m/f /plain/f; touch /m/new && stat -c %u /m/new",
    );
    assert_eq!(out, "0:0\n65534:65534\n0\n");
    let owner = std::fs::metadata(host.path().join("new")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&owner), 0);
}

#[test]
fn idmapped_mount_must_be_a_bind() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.5 ignores mounts[].uidMappings (runc 1.2 refuses them here)");
        return;
    }
    let mut c = Container::new("idmap_tmpfs");
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    c.bundle.add_mount(json!({
        "destination": "/m", "type": "tmpfs", "source": "tmpfs",
        "uidMappings": map, "gidMappings": map
    }));
    assert_refused(&mut c, &["bind"]);
}

#[test]
fn idmapped_mount_needs_uid_and_gid_mappings() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.5 ignores mounts[].uidMappings (runc 1.2 refuses them here)");
        return;
    }
    let host = HostMounts::new("idmap-half");
    let mut c = Container::new("idmap_half");
    c.bundle.add_mount(json!({
        "destination": "/m", "type": "bind", "source": host.path(), "options": ["bind"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
    }));
    assert_refused(&mut c, &["mappings"]);
}

// ---- bind sources in a user namespace ----

#[test]
fn user_namespace_bind_source_behind_a_root_only_directory() {
    // The source is under a 0700 directory of host root, which the container's root (host uid
    // 100000) cannot traverse: the runtime opens it before the container's ids apply.
    let private = TempDir::new("private"); // mkdtemp: 0700, owned by root
    let vol = private.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(vol.join("f"), "behind 0700\n").unwrap();
    let mut c = Container::new("userns_private_src");
    c.bundle.add_user_namespace(100000, 100000);
    mount_point(&c, "/vol");
    c.bundle.add_mount(bind("/vol", &vol, &["rbind", "ro"]));
    assert_eq!(run_ok(&mut c, "cat /vol/f"), "behind 0700\n");
}

// ---- a rootfs whose /proc or /sys is a symlink ----

/// rootfs/<name> made a symlink to rootfs/elsewhere; create must refuse at once, in one line,
/// leave nothing behind and mount nothing at the symlink's target.
fn refuses_symlinked(name: &str, fs: &str) {
    let mut c = Container::new(&format!("{name}_symlink"));
    let rootfs = c.bundle.rootfs();
    std::fs::remove_dir(rootfs.join(name)).unwrap();
    std::fs::create_dir(rootfs.join("elsewhere")).unwrap();
    symlink("/elsewhere", rootfs.join(name)).unwrap();
    let started = Instant::now();
    assert_refused(&mut c, &[fs]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusing took {:?}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::read_dir(rootfs.join("elsewhere")).unwrap().count(),
        0
    );
}

#[test]
fn rootfs_proc_symlink_is_refused() {
    refuses_symlinked("proc", "proc");
}

#[test]
fn rootfs_sys_symlink_is_refused() {
    refuses_symlinked("sys", "sysfs");
}

#[test]
fn sysctl_into_a_rootfs_fifo_does_not_hang() {
    // No procfs at /proc, and the rootfs's proc/sys/kernel/domainname is a fifo: the sysctl
    // must be refused, not wait forever for a reader.
    if is_runc_1_1() {
        eprintln!(
            "skipped: runc 1.1.5 hangs here (its init blocks opening the fifo for writing, \
             seen on this machine)"
        );
        return;
    }
    let mut c = Container::new("sysctl_fifo");
    let kernel = mount_point(&c, "/proc/sys/kernel");
    spec_tests::sync::mkfifo(&kernel.join("domainname"));
    c.bundle.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/proc");
    c.bundle.config["linux"]["maskedPaths"] = json!([]);
    c.bundle.config["linux"]["readonlyPaths"] = json!([]);
    c.bundle.config["linux"]["sysctl"] = json!({"kernel.domainname": "x"});
    assert_refused(&mut c, &["procfs"]);
}
