//! `exec`: create the exec, start it on a hijacked connection, and exit with its exit code.

use anyhow::Context;
use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use crate::{
    cli::Exec,
    client::{esc, Client},
    streams::{pump_output, pump_stdin},
    tty,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecState {
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default)]
    running: bool,
}

pub async fn exec(c: &Client, e: Exec) -> anyhow::Result<i32> {
    let attach = !e.detach;
    let body = json!({
        "User": e.process.user.clone().unwrap_or_default(),
        "Privileged": e.privileged,
        "Tty": e.process.tty,
        "AttachStdin": attach && e.process.interactive,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Detach": e.detach,
        "Env": e.process.env,
        "WorkingDir": e.process.workdir.clone().unwrap_or_default(),
        "Cmd": e.command,
    });
    let created: Created = c
        .json(
            Method::POST,
            &format!("/containers/{}/exec", esc(&e.container)),
            Some(&body),
        )
        .await?;
    let start = format!("/exec/{}/start", esc(&created.id));
    let start_body = json!({"Detach": e.detach, "Tty": e.process.tty});
    if e.detach {
        c.post(&start, Some(&start_body)).await?;
        return Ok(0);
    }
    let h = c.hijack(&start, Some(&start_body)).await?;
    let raw = if e.process.tty && e.process.interactive {
        tty::RawMode::enable()?
    } else {
        None
    };
    if e.process.tty {
        tokio::spawn(tty::forward_resizes(
            c.clone(),
            format!("/exec/{}/resize", esc(&created.id)),
        ));
    }
    if e.process.interactive {
        pump_stdin(&h.stream)?;
    }
    let tty = e.process.tty;
    let out = tokio::task::spawn_blocking(move || pump_output(&h, tty)).await?;
    drop(raw);
    out.context("the command's output")?;
    let state: ExecState = c.get(&format!("/exec/{}/json", esc(&created.id))).await?;
    if state.running {
        log::debug!(
            "exec {}: still running after its streams closed",
            created.id
        );
    }
    Ok(state.exit_code.unwrap_or(0) as i32)
}
