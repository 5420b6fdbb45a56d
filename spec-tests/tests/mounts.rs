//! root, mounts, masked/readonly paths, devices, sysctl, propagation.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use spec_tests::mountinfo::{self, at};
use spec_tests::tmp::TempDir;
use spec_tests::{Container, Fifo};

fn run_script(name: &str, script: &str, tweak: impl FnOnce(&mut Container)) -> String {
    let mut c = Container::new(name);
    c.bundle.set_script(script);
    tweak(&mut c);
    let out = c.run_ok();
    c.assert_clean();
    out
}

#[test]
fn readonly_root() {
    let out = run_script(
        "root_ro",
        "touch /newfile 2>&1; cat /proc/self/mountinfo",
        |_| {},
    );
    assert!(
        out.starts_with("touch: /newfile: Read-only file system\n"),
        "{out}"
    );
    let m = mountinfo::parse(&out);
    assert!(at(&m, "/").has_opt("ro"), "{out}");
}

#[test]
fn writable_root() {
    let mut c = Container::new("root_rw");
    c.bundle.config["root"]["readonly"] = json!(false);
    c.bundle.set_script("echo data > /newfile && cat /newfile");
    assert_eq!(c.run_ok(), "data\n");
    // The rootfs is the bundle's directory itself.
    assert_eq!(
        std::fs::read_to_string(c.bundle.rootfs().join("newfile")).unwrap(),
        "data\n"
    );
    c.assert_clean();
}

#[test]
fn root_is_the_bundle_rootfs() {
    let out = run_script("root_is_rootfs", "cat /proc/self/mountinfo", |_| {});
    let m = mountinfo::parse(&out);
    let root = at(&m, "/");
    // The host's view of the root: the bundle's rootfs directory (a bind mount).
    assert!(root.root.ends_with("/rootfs"), "{root:?}");
    assert!(root.root.starts_with("/tmp/spec-tests-bundle-"), "{root:?}");
    // pivot_root leaves nothing of the host's mount tree visible.
    assert!(
        m.iter().all(|x| x.mount_point == "/"
            || x.mount_point.starts_with("/proc")
            || x.mount_point.starts_with("/dev")
            || x.mount_point.starts_with("/sys")),
        "{out}"
    );
}

#[test]
fn no_pivot() {
    let mut c = Container::new("no_pivot");
    c.bundle.set_script("head -n 1 /etc/passwd; ls /");
    c.bundle.write_config();
    let out = c.rt.run_args(&[
        "run",
        "--no-pivot",
        "--bundle",
        c.bundle.path().to_str().unwrap(),
        &c.id,
    ]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        "root:x:0:0:root:/root:/bin/sh\nbin\ndev\netc\nproc\nroot\nshared\nsys\ntmp\n"
    );
    c.assert_clean();
}

#[test]
fn default_mounts() {
    let out = run_script("default_mounts", "cat /proc/self/mountinfo", |_| {});
    let m = mountinfo::parse(&out);
    let proc_ = at(&m, "/proc");
    assert_eq!(proc_.fstype, "proc");
    let dev = at(&m, "/dev");
    assert_eq!(dev.fstype, "tmpfs");
    assert!(dev.has_opt("nosuid"), "{dev:?}");
    assert!(
        dev.has_super_opt("mode=755") && dev.has_super_opt("size=65536k"),
        "{dev:?}"
    );
    let pts = at(&m, "/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    assert!(pts.has_opt("nosuid") && pts.has_opt("noexec"), "{pts:?}");
    for o in ["gid=5", "mode=620", "ptmxmode=666"] {
        assert!(pts.has_super_opt(o), "{o} missing: {pts:?}");
    }
    let shm = at(&m, "/dev/shm");
    assert_eq!((shm.fstype.as_str(), shm.source.as_str()), ("tmpfs", "shm"));
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(shm.has_opt(o), "{o} missing: {shm:?}");
    }
    assert!(shm.has_super_opt("size=65536k"), "{shm:?}");
    let mq = at(&m, "/dev/mqueue");
    assert_eq!(mq.fstype, "mqueue");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(mq.has_opt(o), "{o} missing: {mq:?}");
    }
    let sys = at(&m, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(sys.has_opt(o), "{o} missing: {sys:?}");
    }
}

#[test]
fn bind_mount_readonly_and_readwrite() {
    let host = TempDir::new("bind");
    std::fs::write(host.path().join("hello"), "from host\n").unwrap();
    let out = run_script(
        "bind_ro_rw",
        "cat /ro/hello; touch /ro/x 2>&1; echo new > /rw/made-inside; grep -E ' /(ro|rw) ' /proc/self/mountinfo",
        |c| {
            c.bundle.add_mount(json!({
                "destination": "/ro", "type": "bind", "source": host.path(), "options": ["rbind", "ro"]
            }));
            c.bundle.add_mount(json!({
                "destination": "/rw", "type": "bind", "source": host.path(), "options": ["rbind", "rw"]
            }));
        },
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("from host"));
    assert_eq!(lines.next(), Some("touch: /ro/x: Read-only file system"));
    let m = mountinfo::parse(&out);
    assert!(at(&m, "/ro").has_opt("ro"), "{out}");
    assert!(at(&m, "/rw").has_opt("rw"), "{out}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("made-inside")).unwrap(),
        "new\n"
    );
    assert!(!host.path().join("x").exists());
}

#[test]
fn bind_mount_of_a_file() {
    let host = TempDir::new("bindfile");
    std::fs::write(host.path().join("conf"), "one file\n").unwrap();
    let out = run_script("bind_file", "cat /etc/app.conf", |c| {
        c.bundle.add_mount(json!({
            "destination": "/etc/app.conf", "type": "bind",
            "source": host.path().join("conf"), "options": ["bind", "ro"]
        }));
    });
    assert_eq!(out, "one file\n");
}

#[test]
fn tmpfs_with_size_and_mode() {
    let out = run_script(
        "tmpfs_opts",
        "stat -c '%a' /scratch; echo x > /scratch/f && echo writable; grep ' /scratch ' /proc/self/mountinfo",
        |c| {
            c.bundle.add_mount(json!({
                "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "size=1m", "mode=1770"]
            }));
        },
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1770"));
    assert_eq!(lines.next(), Some("writable"));
    let m = mountinfo::parse(&out);
    let s = at(&m, "/scratch");
    assert_eq!(s.fstype, "tmpfs");
    assert!(s.has_opt("nosuid") && s.has_opt("nodev"), "{s:?}");
    assert!(
        s.has_super_opt("size=1024k") && s.has_super_opt("mode=1770"),
        "{s:?}"
    );
}

#[test]
fn mount_destination_is_created() {
    // runc creates missing mount points, even nested ones, under a read-only root.
    let out = run_script("mkdir_dest", "stat -c '%F' /a/b/c", |c| {
        c.bundle.add_mount(json!({
            "destination": "/a/b/c", "type": "tmpfs", "source": "tmpfs", "options": []
        }));
    });
    assert_eq!(out, "directory\n");
}

#[test]
fn masked_paths() {
    assert!(
        !std::fs::read("/proc/timer_list").unwrap().is_empty(),
        "the host's /proc/timer_list should have content for this test to mean anything"
    );
    let out = run_script(
        "masked",
        "for f in /proc/timer_list /proc/keys /etc/group; do \
           echo \"$f $(stat -c '%t:%T' $f) $(wc -c < $f)\"; done; \
         echo acpi $(ls -A /proc/acpi | wc -l); echo firmware $(ls -A /sys/firmware | wc -l); \
         touch /proc/acpi/x 2>&1; true",
        |c| {
            c.bundle.config["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!("/etc/group"));
        },
    );
    // Files are masked with /dev/null (1:3), directories with an empty read-only tmpfs.
    assert_eq!(
        out,
        "/proc/timer_list 1:3 0\n/proc/keys 1:3 0\n/etc/group 1:3 0\nacpi 0\nfirmware 0\n\
         touch: /proc/acpi/x: Read-only file system\n"
    );
}

#[test]
fn masked_path_that_does_not_exist_is_ignored() {
    // /proc/kcore does not exist on this kernel; runc masks the rest and carries on.
    let out = run_script("masked_missing", "echo ok", |c| {
        c.bundle.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "/does/not/exist"]);
    });
    assert_eq!(out, "ok\n");
}

#[test]
fn readonly_paths() {
    let out = run_script(
        "readonly_paths",
        "{ echo x > /proc/sys/kernel/hostname; echo x > /scratch/f; } 2>&1; grep -E ' /(proc/sys|scratch) ' /proc/self/mountinfo",
        |c| {
            c.bundle.add_mount(json!({
                "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]
            }));
            c.bundle.config["linux"]["readonlyPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!("/scratch"));
        },
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("sh: can't create /proc/sys/kernel/hostname: Read-only file system")
    );
    assert_eq!(
        lines.next(),
        Some("sh: can't create /scratch/f: Read-only file system")
    );
    let m = mountinfo::parse(&out);
    assert!(at(&m, "/proc/sys").has_opt("ro"), "{out}");
    assert!(at(&m, "/scratch").has_opt("ro"), "{out}");
}

#[test]
fn default_devices() {
    let out = run_script(
        "default_devices",
        "ls -A /dev; for d in null zero full random urandom tty; do \
           stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo \"$l -> $(readlink /dev/$l)\"; done; \
         head -c 4 /dev/zero | od -An -tx1; echo x > /dev/null && echo null-ok; \
         echo x > /dev/full || echo full-refuses-writes",
        |_| {},
    );
    let want = "fd\nfull\nmqueue\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n\
        /dev/null character special file 1:3 666 0:0\n\
        /dev/zero character special file 1:5 666 0:0\n\
        /dev/full character special file 1:7 666 0:0\n\
        /dev/random character special file 1:8 666 0:0\n\
        /dev/urandom character special file 1:9 666 0:0\n\
        /dev/tty character special file 5:0 666 0:0\n\
        fd -> /proc/self/fd\n\
        stdin -> /proc/self/fd/0\n\
        stdout -> /proc/self/fd/1\n\
        stderr -> /proc/self/fd/2\n\
        ptmx -> pts/ptmx\n \
        00 00 00 00\n\
        null-ok\n\
        full-refuses-writes\n";
    assert_eq!(out, want);
}

#[test]
fn linux_devices_are_created_and_cgroup_controls_access() {
    let fuse = json!({
        "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
        "fileMode": 0o666, "uid": 1000, "gid": 5
    });
    let script =
        "stat -c '%F %t:%T %a %u:%g' /dev/fuse; { true < /dev/fuse && echo opened; } 2>&1; true";
    let out = run_script("devices_denied", script, |c| {
        c.bundle.config["linux"]["devices"] = json!([fuse]);
    });
    // The node exists, but the default device cgroup rules (deny all but the defaults)
    // forbid opening it.
    assert_eq!(
        out,
        "character special file a:e5 666 1000:5\nsh: can't open /dev/fuse: Operation not permitted\n"
    );
    let out = run_script("devices_allowed", script, |c| {
        c.bundle.config["linux"]["devices"] = json!([fuse]);
        c.bundle.config["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}));
    });
    assert_eq!(out, "character special file a:e5 666 1000:5\nopened\n");
}

#[test]
fn sysctl() {
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let before = (
        read("/proc/sys/kernel/domainname"),
        read("/proc/sys/net/ipv4/ip_forward"),
        read("/proc/sys/kernel/shmmax"),
    );
    let out = run_script(
        "sysctl",
        "cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
        |c| {
            c.bundle.config["linux"]["sysctl"] = json!({
                "kernel.domainname": "st.example",
                "net.ipv4.ip_forward": "1",
                "kernel.shmmax": "12345678"
            });
        },
    );
    assert_eq!(out, "st.example\n1\n12345678\n");
    let after = (
        read("/proc/sys/kernel/domainname"),
        read("/proc/sys/net/ipv4/ip_forward"),
        read("/proc/sys/kernel/shmmax"),
    );
    assert_eq!(before, after, "sysctls must not leak to the host");
}

/// A host directory bind-mounted on itself and made rshared, so that mounts made under it on
/// the host propagate to slave copies. Unmounted on drop (before the directory is removed).
struct SharedHostDir {
    dir: TempDir,
    sub_mounted: bool,
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn mount(src: &str, target: &Path, fstype: &str, flags: libc::c_ulong) {
    let (s, t, f) = (
        CString::new(src).unwrap(),
        cstr(target),
        CString::new(fstype).unwrap(),
    );
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, std::ptr::null()) };
    assert_eq!(
        r,
        0,
        "mount {target:?}: {}",
        std::io::Error::last_os_error()
    );
}

impl SharedHostDir {
    fn new() -> SharedHostDir {
        let dir = TempDir::new("propagation");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let d = SharedHostDir {
            dir,
            sub_mounted: false,
        };
        mount(
            d.dir.path().to_str().unwrap(),
            d.dir.path(),
            "",
            libc::MS_BIND,
        );
        mount("", d.dir.path(), "", libc::MS_SHARED | libc::MS_REC);
        d
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Mounts a tmpfs at sub/ holding a file "marker".
    fn mount_sub_with_marker(&mut self) {
        let sub = self.dir.path().join("sub");
        mount("tmpfs", &sub, "tmpfs", 0);
        self.sub_mounted = true;
        std::fs::write(sub.join("marker"), "").unwrap();
    }
}

impl Drop for SharedHostDir {
    fn drop(&mut self) {
        let mut targets = vec![self.dir.path().to_owned()];
        if self.sub_mounted {
            targets.insert(0, self.dir.path().join("sub"));
        }
        for t in targets {
            // SAFETY: valid path.
            if unsafe { libc::umount2(cstr(&t).as_ptr(), libc::MNT_DETACH) } != 0 {
                eprintln!(
                    "spec-tests: umount {t:?}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// Whether a mount made on the host under a shared directory after the container started is
/// seen inside it, for the given bind options and rootfsPropagation.
fn host_mount_visible(name: &str, bind_opts: &[&str], rootfs_propagation: Option<&str>) -> bool {
    let mut host = SharedHostDir::new();
    let mut c = Container::new(name);
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    spec_tests::sync::mkfifo(&shared.join("go"));
    c.bundle.add_mount(json!({
        "destination": "/vol", "type": "bind", "source": host.path(), "options": bind_opts
    }));
    if let Some(p) = rootfs_propagation {
        c.bundle.config["linux"]["rootfsPropagation"] = json!(p);
    }
    c.bundle.set_script(
        "echo ready > /shared/fifo; read x < /shared/go; \
         if [ -e /vol/sub/marker ]; then echo visible; else echo invisible; fi > /shared/fifo",
    );
    c.create_ok();
    c.start_ok();
    fifo.expect_line("ready");
    host.mount_sub_with_marker();
    std::fs::write(shared.join("go"), "go\n").unwrap();
    let seen = fifo.read_line(spec_tests::WAIT);
    c.wait_exited();
    c.delete_ok();
    match seen.as_str() {
        "visible" => true,
        "invisible" => false,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bind_mount_rslave_receives_host_mounts() {
    assert!(host_mount_visible(
        "prop_rslave",
        &["rbind", "rslave"],
        None
    ));
}

#[test]
fn bind_mount_rprivate_does_not_receive_host_mounts() {
    assert!(!host_mount_visible(
        "prop_rprivate",
        &["rbind", "rprivate"],
        None
    ));
}

#[test]
fn rootfs_propagation_rprivate_cuts_host_mounts() {
    // With the whole tree made private first, an rslave bind has no master left.
    assert!(!host_mount_visible(
        "rootfs_prop_rprivate",
        &["rbind", "rslave"],
        Some("rprivate")
    ));
}

#[test]
fn rootfs_propagation_slave_keeps_host_mounts() {
    assert!(host_mount_visible(
        "rootfs_prop_rslave",
        &["rbind", "rslave"],
        Some("rslave")
    ));
}

#[test]
fn relative_mount_destination_is_taken_from_root() {
    // runc 1.1.5 warns ("mount destination relative/dest is not absolute") but mounts it at
    // /relative/dest.
    let out = run_script(
        "relative_dest",
        "grep ' /relative/dest ' /proc/self/mountinfo",
        |c| {
            c.bundle.add_mount(
                json!({"destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"}),
            );
        },
    );
    let m = mountinfo::parse(&out);
    assert_eq!(at(&m, "/relative/dest").fstype, "tmpfs");
}
