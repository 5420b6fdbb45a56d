//! The file descriptors a container inherits beyond stdio: socket activation's $LISTEN_FDS
//! (systemd's protocol) and --preserve-fds.

use crate::error::{Error, Result};
use std::os::fd::RawFd;

/// The fds that socket activation passed to this process after stdio: $LISTEN_FDS, taken only
/// when $LISTEN_PID is our pid, as sd_listen_fds(3) and runc take them (a socket-activated
/// parent leaves both set for its own fds). Anything but a count is none, as for runc.
pub fn listen_fds() -> u32 {
    let var = |k| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    if var("LISTEN_PID") != Some(std::process::id()) {
        return 0;
    }
    var("LISTEN_FDS").unwrap_or(0)
}

/// How many fds after stdio the container's process keeps: `listen` ($LISTEN_FDS), then
/// `preserve` (--preserve-fds). At most up to the largest fd number, so `3 + n` cannot wrap.
pub fn kept_fds(listen: u32, preserve: u32) -> Result<u32> {
    listen
        .checked_add(preserve)
        .filter(|n| *n <= RawFd::MAX as u32 - 3)
        .ok_or_else(|| {
            Error::msg(format!(
                "--preserve-fds {preserve}: with LISTEN_FDS={listen}, more fds than a process can have"
            ))
        })
}

/// [`kept_fds`], each of them checked to be open now: a number that is free now would be taken
/// by one of husk's own fds later and leak into the container (runc stats each preserved fd).
/// The first closed fd ends the check, so it costs at most one call per open fd.
pub fn check_kept_fds(listen: u32, preserve: u32) -> Result<u32> {
    let n = kept_fds(listen, preserve)?;
    for i in 0..n {
        let fd = 3 + i as RawFd;
        // SAFETY: F_GETFD only reads the flags; a closed fd number gives EBADF.
        let flags = nix::fcntl::fcntl(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFD,
        );
        if flags == Err(nix::errno::Errno::EBADF) {
            return Err(Error::msg(if i < listen {
                format!("LISTEN_FDS={listen}: fd {fd} is not open")
            } else {
                format!("--preserve-fds {preserve}: fd {fd} is not open")
            }));
        }
    }
    Ok(n)
}
