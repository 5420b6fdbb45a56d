//! The cgroup v2 device filter for real: husk's eBPF program attached to a cgroup2 directory,
//! and a process in that cgroup opening and creating device nodes. Needs root and a cgroup2
//! mount (/sys/fs/cgroup on v2 hosts, /sys/fs/cgroup/unified on hybrid ones).

use husk::cgroups::bpf;
use husk::cgroups::devices::{Dev, Rules, MKNOD, READ, WRITE};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn cgroup2_mount() -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|p| p.starts_with("cgroup2 "))
        })
        .and_then(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .expect("a cgroup2 hierarchy is mounted")
}

/// A directory (a cgroup, or one for device nodes), removed on drop, even when the test fails.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        // A cgroup directory holds only control files, which rmdir takes with it.
        let r = std::fs::remove_dir(&self.0).or_else(|_| std::fs::remove_dir_all(&self.0));
        if let Err(e) = r {
            eprintln!("remove {}: {e}", self.0.display());
        }
    }
}

enum Op {
    Open(CString, libc::c_int),
    Mknod(CString, libc::mode_t, libc::dev_t),
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Runs `ops` in a child moved into `cg`; 0 or the errno of each.
fn in_cgroup(cg: &Path, ops: &[Op]) -> Vec<i32> {
    let procs = c(&cg.join("cgroup.procs"));
    let mut fds = [0; 2];
    // SAFETY: fds is an array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only makes system calls on memory prepared before the fork, then exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let mut out = [0i32; 16];
        // SAFETY: plain system calls on valid, NUL-terminated paths and local buffers.
        unsafe {
            let f = libc::open(procs.as_ptr(), libc::O_WRONLY);
            // "0" moves the writer itself.
            if f < 0 || libc::write(f, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(2);
            }
            libc::close(f);
            for (i, op) in ops.iter().enumerate() {
                let r = match op {
                    Op::Open(p, flags) => {
                        let fd = libc::open(p.as_ptr(), *flags | libc::O_CLOEXEC);
                        if fd >= 0 {
                            libc::close(fd);
                        }
                        fd
                    }
                    Op::Mknod(p, mode, dev) => libc::mknod(p.as_ptr(), *mode, *dev),
                };
                out[i] = if r < 0 { *libc::__errno_location() } else { 0 };
            }
            let len = std::mem::size_of_val(&out);
            let ok = libc::write(fds[1], out.as_ptr().cast(), len) == len as isize;
            libc::_exit(if ok { 0 } else { 3 });
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    let mut out = [0i32; 16];
    // SAFETY: reading into a local buffer of its size.
    let n = unsafe { libc::read(fds[0], out.as_mut_ptr().cast(), std::mem::size_of_val(&out)) };
    // SAFETY: our read end.
    unsafe { libc::close(fds[0]) };
    assert_eq!(n as usize, std::mem::size_of_val(&out));
    out[..ops.len()].to_vec()
}

fn dev(kind: char, major: i64, minor: i64) -> Option<Dev> {
    Some(Dev { major, minor, kind })
}

#[test]
fn attached_program_decides_device_access() {
    let name = format!("husk-device-filter-{}", std::process::id());
    let cg = Dir(cgroup2_mount().join(&name));
    std::fs::create_dir(&cg.0).unwrap();
    let tmp = Dir(std::env::temp_dir().join(&name));
    std::fs::create_dir(&tmp.0).unwrap();
    let tmp = &tmp.0;
    let null = c(Path::new("/dev/null"));
    let zero = c(Path::new("/dev/zero"));
    let full = c(Path::new("/dev/full"));
    let kmsg = c(Path::new("/dev/kmsg"));
    let chr = libc::S_IFCHR | 0o600;
    let blk = libc::S_IFBLK | 0o600;
    let (eperm, rd, rw, wr) = (libc::EPERM, libc::O_RDONLY, libc::O_RDWR, libc::O_WRONLY);

    // Deny all but: /dev/null, /dev/zero for reading, mknod of memory devices (major 1).
    let mut rules = Rules::default();
    rules
        .apply(true, dev('c', 1, 3), READ | WRITE | MKNOD)
        .unwrap();
    rules.apply(true, dev('c', 1, 5), READ).unwrap();
    rules.apply(true, dev('c', 1, -1), MKNOD).unwrap();
    bpf::attach(&cg.0, &bpf::program(&rules)).unwrap();
    let dir = std::fs::File::open(&cg.0).unwrap();
    assert_eq!(bpf::attached(&dir).unwrap().len(), 1);
    let node = c(&tmp.join("full"));
    let got = in_cgroup(
        &cg.0,
        &[
            Op::Open(null.clone(), rw),
            Op::Open(zero.clone(), rd),
            Op::Open(zero.clone(), wr),
            Op::Open(full.clone(), rd),
            Op::Mknod(node.clone(), chr, libc::makedev(1, 7)),
            Op::Open(node, rd),
            Op::Mknod(c(&tmp.join("loop")), blk, libc::makedev(7, 0)),
        ],
    );
    assert_eq!(got, [0, 0, eperm, eperm, 0, eperm, eperm]);

    // A new rule set replaces the old program: the container's defaults (deny all, then the
    // standard devices and mknod of anything).
    let rules = Rules::for_container(&[]).unwrap();
    bpf::attach(&cg.0, &bpf::program(&rules)).unwrap();
    assert_eq!(
        bpf::attached(&dir).unwrap().len(),
        1,
        "old program detached"
    );
    let got = in_cgroup(
        &cg.0,
        &[
            Op::Open(full, rw),
            Op::Open(zero, wr),
            Op::Mknod(c(&tmp.join("loop2")), blk, libc::makedev(7, 0)),
            Op::Open(kmsg, rd),
        ],
    );
    assert_eq!(got, [0, 0, 0, eperm]);
}
