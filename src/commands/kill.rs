//! `kill`: send a signal to the init, or with --all to every process of the container.

use crate::cli::Kill;
use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, k: &Kill) -> Result<i32> {
    let sig = crate::util::signal::parse_signal(&k.signal)?;
    crate::container::kill(root, &k.id, sig, k.all)?;
    Ok(0)
}
