//! `pause` and `resume`: freeze and thaw the container's cgroup.

use crate::cli::IdArg;
use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, c: &IdArg) -> Result<i32> {
    crate::container::set_paused(root, &c.id, true)?;
    Ok(0)
}

pub fn resume(root: &Path, c: &IdArg) -> Result<i32> {
    crate::container::set_paused(root, &c.id, false)?;
    Ok(0)
}
