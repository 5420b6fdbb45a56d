//! Writes into the container's procfs after the pivot (sysctls) go through its /proc, checked to
//! be a procfs, and resolve with RESOLVE_NO_XDEV and no symlinks: nothing mounted or linked over
//! the target (a bind of a host file, or of /proc/sysrq-trigger) can take the write elsewhere
//! (CVE-2025-52881, CVE-2019-16884).

use crate::error::{Context, Error, Result};
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use std::os::fd::AsFd;

pub fn write(rel: &str, data: &str) -> Result<()> {
    let proc = open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open /proc")?;
    let path = format!("/proc/{rel}");
    let open = |flags| {
        openat2(
            proc.as_fd(),
            rel,
            OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
                ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_BENEATH,
            ),
        )
        .map_err(|e| match e {
            nix::errno::Errno::EXDEV | nix::errno::Errno::ELOOP => {
                Error::msg(format!("{path}: something is mounted or linked over it"))
            }
            e => Error::Sys {
                ctx: format!("open {path}"),
                errno: e,
            },
        })
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
