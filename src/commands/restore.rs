//! `restore`: recreates a container from a checkpoint and, unless detached, waits for it as
//! `run` does, then deletes it and exits with its status.

use crate::cli::Restore;
use crate::container::restore::{self, RestoreOptions};
use crate::container::{tty, wait};
use anyhow::{Context as _, Result};
use std::path::Path;

pub fn run(root: &Path, criu_bin: &Path, r: &Restore) -> Result<i32> {
    if !nix::unistd::geteuid().is_root() {
        log::warn!("husk checkpoint is untested with rootless containers");
    }
    if !r.no_subreaper {
        // The restored tree is our child; its orphans come back to us too.
        nix::sys::prctl::set_child_subreaper(true).context("prctl subreaper")?;
    }
    // runc works in the bundle: relative paths and the default image path are found there.
    let bundle = std::fs::canonicalize(&r.bundle)
        .with_context(|| format!("chdir {}", r.bundle.display()))?;
    let f = &r.criu;
    let opts = RestoreOptions {
        root,
        id: &r.id,
        bundle: &bundle,
        criu: criu_bin,
        images: super::checkpoint::image_path(f, &bundle),
        work: f.work_path.as_ref().map(|w| bundle.join(w)),
        console_socket: r.console_socket.as_deref(),
        pid_file: r.pid_file.as_deref(),
        detach: r.detach,
        lsm_profile: r.lsm_profile.as_deref(),
        lsm_mount_context: r.lsm_mount_context.as_deref(),
        common: super::checkpoint::common(f)?,
    };
    let restored = restore::restore(&opts)?;
    if r.detach {
        return Ok(0);
    }
    let sfd = wait::block_signals()?;
    let master = restored.master.as_ref();
    let raw = master.map(|_| tty::RawMode::enter());
    let code = wait::wait_forwarding(&sfd, restored.state.pid, master);
    drop(raw);
    let code = code?;
    crate::container::destroy(&restored.state, &restored.dir, Some(&bundle))?;
    Ok(code)
}
