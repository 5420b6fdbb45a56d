//! `create`: set the container up and leave its init waiting for `start`.

use crate::cli::{Create, CreateOpts};
use crate::container::{self, CreateOptions};
use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, c: &Create) -> Result<i32> {
    container::create(&options(root, &c.id, &c.opts, false, false))?;
    Ok(0)
}

/// The create flags that `create` and `run` share, as the parent side takes them.
pub(crate) fn options<'a>(
    root: &'a Path,
    id: &'a str,
    o: &'a CreateOpts,
    for_run: bool,
    foreground: bool,
) -> CreateOptions<'a> {
    CreateOptions {
        root,
        id,
        bundle: &o.bundle,
        console_socket: o.console_socket.as_deref(),
        pidfd_socket: o.pidfd_socket.as_deref(),
        pid_file: o.pid_file.as_deref(),
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds,
        for_run,
        foreground,
    }
}
