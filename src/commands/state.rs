//! `state`: the container's state as runc prints it.

use crate::cli::IdArg;
use crate::commands::output;
use crate::container;
use anyhow::Result;
use std::path::Path;

pub fn run(root: &Path, c: &IdArg) -> Result<i32> {
    let (dir, state) = container::open_existing(root, &c.id)?;
    let status = state.status(&dir);
    // runc writes the JSON without a trailing newline.
    print!("{}", output::state_json(&state, status));
    Ok(0)
}
