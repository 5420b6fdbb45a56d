//! Writes into procfs that nothing mounted or linked over the target can take elsewhere: the
//! container's sysctls after the pivot, and the LSM attributes of our own thread (before the
//! pivot through the host's /proc, after it through the container's). Each goes through /proc
//! checked to be a procfs and resolves with RESOLVE_NO_XDEV: a bind of a host file, or of
//! /proc/sysrq-trigger, over the target fails (CVE-2025-52881, CVE-2019-16884).

use crate::error::{Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// /proc, checked to be a procfs.
fn open_proc() -> Result<OwnedFd> {
    let proc = open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open /proc")?;
    if fstatfs(&proc).ctx("statfs /proc")?.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(Error::msg("/proc is not a procfs"));
    }
    Ok(proc)
}

/// Opens `rel` below `dir` (for writing, or O_PATH), on the same mount, never through a magic
/// link.
fn open_beneath(
    dir: BorrowedFd,
    rel: &str,
    flags: OFlag,
    resolve: ResolveFlag,
) -> nix::Result<OwnedFd> {
    openat2(
        dir,
        rel,
        OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
            resolve
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_BENEATH,
        ),
    )
}

fn open_error(path: &str, e: Errno) -> Error {
    match e {
        Errno::EXDEV | Errno::ELOOP => {
            Error::msg(format!("{path}: something is mounted or linked over it"))
        }
        e => Error::Sys {
            ctx: format!("open {path}"),
            errno: e,
        },
    }
}

/// Writes `data` to /proc/`rel` (no symlink on the way).
pub fn write(rel: &str, data: &str) -> Result<()> {
    let proc = open_proc()?;
    let path = format!("/proc/{rel}");
    let open = |flags| {
        open_beneath(proc.as_fd(), rel, flags, ResolveFlag::RESOLVE_NO_SYMLINKS)
            .map_err(|e| open_error(&path, e))
    };
    // Checked before it is opened for writing: where no procfs is mounted, the rootfs's own
    // file could be a fifo, and opening that would wait for a reader that never comes.
    if fstatfs(&open(OFlag::O_PATH)?)
        .ctx("statfs")?
        .filesystem_type()
        != PROC_SUPER_MAGIC
    {
        return Err(Error::msg(format!("{path}: not on a procfs")));
    }
    let fd = open(OFlag::O_WRONLY)?;
    nix::unistd::write(&fd, data.as_bytes()).with_ctx(|| format!("write {path}"))?;
    Ok(())
}

/// Writes `value` to the first of the calling thread's LSM attributes `names` (under
/// /proc/thread-self/attr) that exists: AppArmor's own `apparmor/exec` before the shared `exec`,
/// as libapparmor does. Returns the path written.
pub fn write_attr(names: &[&str], value: &str) -> Result<String> {
    write_attr_in(open_proc()?.as_fd(), names, value)
}

/// [`write_attr`] below `proc`. thread-self is an ordinary symlink inside procfs, followed;
/// anything that leads off the procfs mount or out of it is refused.
fn write_attr_in(proc: BorrowedFd, names: &[&str], value: &str) -> Result<String> {
    for (i, name) in names.iter().enumerate() {
        let rel = format!("thread-self/attr/{name}");
        let path = format!("/proc/{rel}");
        match open_beneath(proc, &rel, OFlag::O_WRONLY, ResolveFlag::empty()) {
            Err(Errno::ENOENT) if i + 1 < names.len() => continue,
            Err(e) => return Err(open_error(&path, e)),
            Ok(fd) => {
                nix::unistd::write(&fd, value.as_bytes()).with_ctx(|| format!("write {path}"))?;
                return Ok(path);
            }
        }
    }
    Err(Error::msg("no LSM attribute named"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake procfs tree: thread-self -> 7/task/7, with the attribute files given.
    fn fake_proc(attrs: &[&str]) -> (std::path::PathBuf, OwnedFd) {
        let dir = std::env::temp_dir().join(format!(
            "husk-fake-proc-{}-{}",
            std::process::id(),
            attrs.join("+").replace('/', "_")
        ));
        let _ = std::fs::remove_dir_all(&dir); // A leftover of an earlier run, if any.
        let attr = dir.join("7/task/7/attr");
        std::fs::create_dir_all(attr.join("apparmor")).unwrap();
        for a in attrs {
            std::fs::write(attr.join(a), "").unwrap();
        }
        symlink("7/task/7", dir.join("thread-self")).unwrap();
        let fd = open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        (dir, fd)
    }

    #[test]
    fn attr_prefers_the_first_that_exists() {
        let (dir, fd) = fake_proc(&["apparmor/exec", "exec"]);
        let p = write_attr_in(fd.as_fd(), &["apparmor/exec", "exec"], "exec prof").unwrap();
        assert_eq!(p, "/proc/thread-self/attr/apparmor/exec");
        let attr = dir.join("7/task/7/attr");
        assert_eq!(
            std::fs::read_to_string(attr.join("apparmor/exec")).unwrap(),
            "exec prof"
        );
        assert_eq!(std::fs::read_to_string(attr.join("exec")).unwrap(), "");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn attr_falls_back_to_the_shared_one() {
        let (dir, fd) = fake_proc(&["exec"]);
        let p = write_attr_in(fd.as_fd(), &["apparmor/exec", "exec"], "exec prof").unwrap();
        assert_eq!(p, "/proc/thread-self/attr/exec");
        let got = std::fs::read_to_string(dir.join("7/task/7/attr/exec")).unwrap();
        assert_eq!(got, "exec prof");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn attr_missing_is_an_error_naming_it() {
        let (dir, fd) = fake_proc(&[]);
        let e = write_attr_in(fd.as_fd(), &["keycreate"], "l").unwrap_err();
        assert!(
            e.to_string().contains("/proc/thread-self/attr/keycreate"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn attr_never_follows_a_link_out() {
        let (dir, fd) = fake_proc(&[]);
        let outside = dir.with_extension("outside");
        std::fs::write(&outside, "untouched").unwrap();
        symlink(&outside, dir.join("7/task/7/attr/exec")).unwrap();
        let e = write_attr_in(fd.as_fd(), &["exec"], "exec prof").unwrap_err();
        assert!(e.to_string().contains("linked over"), "{e}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_file(outside).unwrap();
    }
}
