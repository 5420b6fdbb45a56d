//! One module per runc command, named as the command. Each reads its flags, calls into the
//! parent side (crate::container) or the cgroup manager (crate::cgroups), and prints.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod output;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

/// Closes every fd we inherited beyond stdio and those the caller asked to pass on
/// (--preserve-fds; $LISTEN_FDS for create and run, as runc), before husk opens anything: a
/// leaked host directory fd could otherwise be reached from the container as /proc/self/fd/N
/// (CVE-2024-21626). When the count is refused, every fd beyond stdio is closed.
pub fn close_inherited_fds(cli: &crate::cli::Cli) -> anyhow::Result<()> {
    use crate::cli::Command;
    use crate::util::fds::{check_kept_fds, listen_fds};
    let kept = match &cli.command {
        Some(Command::Create(c)) => check_kept_fds(listen_fds(), c.opts.preserve_fds),
        Some(Command::Run(r)) => check_kept_fds(listen_fds(), r.opts.preserve_fds),
        Some(Command::Exec(e)) => check_kept_fds(0, e.preserve_fds),
        // checkpoint --status-fd: that one fd is the caller's, to be written by us.
        Some(Command::Checkpoint(c)) if c.status_fd > 2 => {
            let fd = c.status_fd as u32;
            // SAFETY: as below; the fds from 3 up to the status fd.
            let _ = unsafe { libc::close_range(3, fd - 1, 0) };
            // SAFETY: as below; those after it.
            let _ = unsafe { libc::close_range(fd + 1, u32::MAX, 0) };
            return Ok(());
        }
        _ => Ok(0),
    };
    // SAFETY: nothing in this process owns an fd above stdio yet.
    // A kernel without close_range leaves them to close-on-exec in the container's setup.
    let _ = unsafe { libc::close_range(3 + *kept.as_ref().unwrap_or(&0), u32::MAX, 0) };
    Ok(kept.map(drop)?)
}
