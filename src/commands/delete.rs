//! `delete`: remove a stopped container (with --force, stop it first).

use crate::cli::Delete;
use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, d: &Delete) -> Result<i32> {
    crate::container::delete(root, &d.id, d.force, None)?;
    Ok(0)
}
