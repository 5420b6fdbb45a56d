//! `ps`: the container's pids as JSON, or ps(1)'s table cut down to the container's processes.

use crate::cli::{ListFormat, Ps};
use anyhow::{Context as _, Result};
use std::io::Write;
use std::path::Path;

pub fn run(root: &Path, p: &Ps) -> Result<i32> {
    let pids = crate::container::pids(root, &p.id)?;
    if p.format == ListFormat::Json {
        // Go encodes an empty slice as null.
        let text = if pids.is_empty() {
            "null".to_string()
        } else {
            serde_json::to_string(&pids)?
        };
        println!("{text}");
        return Ok(0);
    }
    let args: Vec<String> = if p.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        p.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        anyhow::bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps: no PID column in ps output")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|f| f.parse::<i32>().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(0)
}
