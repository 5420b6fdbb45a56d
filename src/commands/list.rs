//! `list`: the containers under --root, as a table, JSON, or ids only.

use crate::cli::{List, ListFormat};
use crate::commands::output;
use crate::container;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub fn run(root: &Path, l: &List) -> Result<i32> {
    let all = container::list(root)?;
    let mut out = std::io::stdout().lock();
    if l.quiet {
        for (s, _) in &all {
            writeln!(out, "{}", s.id)?;
        }
    } else if l.format == ListFormat::Json {
        let owners: Vec<String> = all
            .iter()
            .map(|(s, _)| container::owner(root, &s.id))
            .collect();
        let v: Vec<_> = all
            .iter()
            .zip(&owners)
            .map(|((s, st), o)| output::ContainerState {
                owner: o,
                ..output::ContainerState::new(s, *st)
            })
            .collect();
        if v.is_empty() {
            writeln!(out, "null")?;
        } else {
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        }
    } else {
        let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            .map(String::from)
            .to_vec()];
        for (s, st) in &all {
            rows.push(vec![
                s.id.clone(),
                s.visible_pid(*st).to_string(),
                st.as_str().to_string(),
                s.bundle.display().to_string(),
                s.created.clone(),
                container::owner(root, &s.id),
            ]);
        }
        out.write_all(output::table(&rows).as_bytes())?;
    }
    Ok(0)
}
