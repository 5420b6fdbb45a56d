//! `start`: release a created container's init to run its program.

use crate::cli::IdArg;
use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, c: &IdArg) -> Result<i32> {
    crate::container::start(root, &c.id)?;
    Ok(0)
}
