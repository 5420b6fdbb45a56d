//! Container commands: run, create, start, ps, logs, stop, kill, rm, wait, pause, unpause,
//! inspect — the requests docker's CLI makes, and its output.

use std::{collections::BTreeMap, io::Write};

use anyhow::{bail, Context};
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    cli::{ContainerOpts, Create, Inspect, Kill, Logs, Names, Ps, Rm, Run, Start, Stop},
    client::{esc, next_chunk, with_query, Client, Error},
    config, format, images,
    streams::{pump_output, pump_stdin, Demux},
    template::{eval_json, Template},
    tty, Exit,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    id: String,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

/// Creates the container, pulling its image first when it is missing (`--pull missing`, the
/// default) as docker does.
async fn create(c: &Client, o: &ContainerOpts, attach: bool) -> anyhow::Result<String> {
    let body = config::create_body(o, attach)?;
    if o.pull == "always" {
        images::pull(c, &o.image, false, true).await?;
    }
    let url = with_query(
        "/containers/create",
        &[("name", o.name.as_deref().unwrap_or(""))],
    );
    let created = match c.json::<Created>(Method::POST, &url, Some(&body)).await {
        Err(e) if e.is_not_found() && o.pull == "missing" => {
            let (name, tag) = config::split_ref(&o.image);
            let sep = if tag.contains(':') { '@' } else { ':' };
            eprintln!("Unable to find image '{name}{sep}{tag}' locally");
            images::pull(c, &o.image, false, true).await?;
            c.json::<Created>(Method::POST, &url, Some(&body)).await?
        }
        r => r?,
    };
    for w in created.warnings.unwrap_or_default() {
        eprintln!("WARNING: {w}");
    }
    Ok(created.id)
}

pub async fn create_cmd(c: &Client, cr: Create) -> anyhow::Result<i32> {
    let id = create(c, &cr.opts, false).await?;
    println!("{id}");
    Ok(0)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WaitError {
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WaitResponse {
    status_code: i64,
    #[serde(default)]
    error: Option<WaitError>,
}

/// Sends the wait before the container starts and returns once the daemon has answered with
/// its headers — dockerd flushes them once the wait is registered — so that an exit right after
/// start is not missed. The returned task yields the exit code.
async fn wait_registered(
    c: &Client,
    id: &str,
    condition: &str,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<i32>>> {
    let url = with_query(
        &format!("/containers/{}/wait", esc(id)),
        &[("condition", condition)],
    );
    let resp = c.request(Method::POST, &url, None).await?;
    Ok(tokio::spawn(async move {
        use http_body_util::BodyExt;
        let body = resp.into_body().collect().await?.to_bytes();
        let w: WaitResponse = serde_json::from_slice(&body)
            .with_context(|| format!("the wait's answer: {}", String::from_utf8_lossy(&body)))?;
        if let Some(e) = w.error.filter(|e| !e.message.is_empty()) {
            bail!("{}", e.message);
        }
        Ok(w.status_code as i32)
    }))
}

/// docker's exit code for a start that failed: 127 when the command is not there, 126 when it
/// cannot be run, 125 otherwise (runStartContainerErr).
fn start_failure(e: Error) -> anyhow::Error {
    let msg = e.to_string();
    let code =
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") || msg.contains("is a directory") {
            126
        } else {
            125
        };
    Exit::with_code(code, anyhow::Error::from(e))
}

/// Attached start: attach, wait registered, start, copy the streams, the exit code.
async fn attach_and_start(
    c: &Client,
    id: &str,
    stdin: bool,
    tty: bool,
    sig_proxy: bool,
    condition: &str,
) -> anyhow::Result<i32> {
    let url = with_query(
        &format!("/containers/{}/attach", esc(id)),
        &[
            ("stream", "1"),
            ("stdin", if stdin { "1" } else { "" }),
            ("stdout", "1"),
            ("stderr", "1"),
        ],
    );
    let h = c.hijack(&url, None).await?;
    let wait = wait_registered(c, id, condition).await?;
    let raw = if tty && stdin {
        tty::RawMode::enable()?
    } else {
        None
    };
    // With a tty the terminal itself carries ^C and friends to the container.
    if sig_proxy && !tty {
        tty::proxy_signals(c.clone(), id.to_string());
    }
    if let Err(e) = c
        .post(&format!("/containers/{}/start", esc(id)), None)
        .await
    {
        drop(raw);
        return Err(start_failure(e));
    }
    if tty {
        tokio::spawn(tty::forward_resizes(
            c.clone(),
            format!("/containers/{}/resize", esc(id)),
        ));
    }
    if stdin {
        pump_stdin(&h.stream)?;
    }
    let out = tokio::task::spawn_blocking(move || pump_output(&h, tty)).await?;
    let code = wait.await?;
    drop(raw);
    out.context("the container's output")?;
    code
}

pub async fn run(c: &Client, r: Run) -> anyhow::Result<i32> {
    let o = &r.opts;
    let id = create(c, o, !r.detach).await?;
    if r.detach {
        if let Err(e) = c
            .post(&format!("/containers/{}/start", esc(&id)), None)
            .await
        {
            return Err(start_failure(e));
        }
        println!("{id}");
        return Ok(0);
    }
    let condition = if o.rm { "removed" } else { "next-exit" };
    attach_and_start(
        c,
        &id,
        o.process.interactive,
        o.process.tty,
        r.sig_proxy,
        condition,
    )
    .await
}

pub async fn start(c: &Client, s: Start) -> anyhow::Result<i32> {
    if s.attach || s.interactive {
        if s.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let id = &s.containers[0];
        let info: Value = c.get(&format!("/containers/{}/json", esc(id))).await?;
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
        let condition = if auto_remove { "removed" } else { "next-exit" };
        return attach_and_start(c, id, s.interactive, tty, true, condition).await;
    }
    each(&s.containers, |id| async move {
        c.post(&format!("/containers/{}/start", esc(&id)), None)
            .await
    })
    .await
}

/// Runs `op` on each name, printing the name on success and the error on failure, as docker's
/// stop, kill, rm, pause... do; exit 1 if any failed.
async fn each<F, Fut>(names: &[String], op: F) -> anyhow::Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let mut failed = false;
    for n in names {
        match op(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("huskctl: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub async fn stop(c: &Client, s: Stop) -> anyhow::Result<i32> {
    let t = s.time.map(|t| t.to_string()).unwrap_or_default();
    each(&s.containers, |id| {
        let url = with_query(&format!("/containers/{}/stop", esc(&id)), &[("t", &t)]);
        async move { c.post(&url, None).await }
    })
    .await
}

pub async fn kill(c: &Client, k: Kill) -> anyhow::Result<i32> {
    each(&k.containers, |id| {
        let url = with_query(
            &format!("/containers/{}/kill", esc(&id)),
            &[("signal", &k.signal)],
        );
        async move { c.post(&url, None).await }
    })
    .await
}

pub async fn rm(c: &Client, r: Rm) -> anyhow::Result<i32> {
    each(&r.containers, |id| {
        let url = with_query(
            &format!("/containers/{}", esc(&id)),
            &[
                ("force", if r.force { "1" } else { "" }),
                ("v", if r.volumes { "1" } else { "" }),
            ],
        );
        async move { c.bytes(Method::DELETE, &url, None).await.map(drop) }
    })
    .await
}

pub async fn pause(c: &Client, n: Names, verb: &str) -> anyhow::Result<i32> {
    each(&n.containers, |id| {
        let url = format!("/containers/{}/{verb}", esc(&id));
        async move { c.post(&url, None).await }
    })
    .await
}

pub async fn wait(c: &Client, n: Names) -> anyhow::Result<i32> {
    let mut failed = false;
    for id in &n.containers {
        let url = format!("/containers/{}/wait", esc(id));
        match c.json::<WaitResponse>(Method::POST, &url, None).await {
            Ok(w) => println!("{}", w.status_code),
            Err(e) => {
                eprintln!("huskctl: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub async fn logs(c: &Client, l: Logs) -> anyhow::Result<i32> {
    let info: Value = c
        .get(&format!("/containers/{}/json", esc(&l.container)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let url = with_query(
        &format!("/containers/{}/logs", esc(&l.container)),
        &[
            ("stdout", "1"),
            ("stderr", "1"),
            ("follow", if l.follow { "1" } else { "" }),
            ("timestamps", if l.timestamps { "1" } else { "" }),
            ("tail", &l.tail),
        ],
    );
    let resp = c.request(Method::GET, &url, None).await?;
    let mut body = resp.into_body();
    let mut demux = Demux::new(tty);
    while let Some(chunk) = next_chunk(&mut body).await? {
        demux.feed(&chunk)?;
    }
    Ok(0)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Port {
    #[serde(rename = "IP", default)]
    ip: String,
    private_port: u16,
    #[serde(default)]
    public_port: u16,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    image: String,
    #[serde(default)]
    command: String,
    created: i64,
    #[serde(default)]
    ports: Vec<Port>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    status: String,
}

impl Listed {
    fn field(&self, name: &str, trunc: bool) -> anyhow::Result<String> {
        Ok(match name {
            ".ID" if trunc => format::short_id(&self.id),
            ".ID" => self.id.clone(),
            ".Image" if trunc && self.image.starts_with("sha256:") => format::short_id(&self.image),
            ".Image" => self.image.clone(),
            ".Command" if trunc => serde_json::to_string(&format::ellipsis(&self.command, 20))?,
            ".Command" => serde_json::to_string(&self.command)?,
            ".RunningFor" => format::ago(self.created),
            ".Status" => self.status.clone(),
            ".State" => self.state.clone(),
            ".Ports" => self.ports(),
            ".Names" => self
                .names
                .iter()
                .map(|n| n.trim_start_matches('/'))
                // Docker hides the link aliases (/other/alias) in the list.
                .filter(|n| !n.contains('/'))
                .collect::<Vec<_>>()
                .join(","),
            _ => bail!("template: unsupported field '{name}' for ps"),
        })
    }

    fn ports(&self) -> String {
        let mut out: Vec<String> = self
            .ports
            .iter()
            .map(|p| {
                if p.public_port != 0 {
                    let ip = if p.ip.contains(':') {
                        format!("[{}]", p.ip)
                    } else {
                        p.ip.clone()
                    };
                    format!("{ip}:{}->{}/{}", p.public_port, p.private_port, p.kind)
                } else {
                    format!("{}/{}", p.private_port, p.kind)
                }
            })
            .collect();
        out.dedup();
        out.join(", ")
    }
}

fn header(field: &str) -> String {
    match field {
        ".ID" => "CONTAINER ID".into(),
        ".RunningFor" => "CREATED".into(),
        other => other.trim_start_matches('.').to_uppercase(),
    }
}

/// `-f key=value`s as Docker's `filters` query ({"key": ["value", ...]}).
fn filters(specs: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut f: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in specs {
        let (k, v) = s.split_once('=').with_context(|| {
            format!("--filter: bad format of filter (expected name=value): {s}")
        })?;
        f.entry(k.to_lowercase()).or_default().push(v.to_string());
    }
    Ok(f)
}

impl Listed {
    /// Docker's name, id and status filters, applied here too, so that a daemon that does not
    /// filter still gives what was asked (on one that does, this changes nothing).
    fn matches(&self, f: &BTreeMap<String, Vec<String>>) -> bool {
        f.iter().all(|(k, values)| {
            values.iter().any(|v| match k.as_str() {
                "name" => self
                    .names
                    .iter()
                    .any(|n| n.trim_start_matches('/').contains(v.as_str())),
                "id" => self.id.starts_with(v.as_str()),
                "status" => self.state == *v,
                _ => true,
            })
        })
    }
}

pub async fn ps(c: &Client, p: Ps) -> anyhow::Result<i32> {
    let f = filters(&p.filter)?;
    let f_json = if f.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&f)?
    };
    // A status filter asks for stopped containers too, as docker does.
    let all = p.all || f.contains_key("status");
    let url = with_query(
        "/containers/json",
        &[
            ("all", if all { "1" } else { "" }),
            ("limit", if p.latest { "1" } else { "" }),
            ("filters", &f_json),
        ],
    );
    let mut list: Vec<Listed> = c.get(&url).await?;
    list.retain(|l| l.matches(&f));
    let trunc = !p.no_trunc;
    let mut out = std::io::stdout().lock();
    if p.quiet {
        for l in &list {
            writeln!(out, "{}", l.field(".ID", trunc)?)?;
        }
        return Ok(0);
    }
    let format = p.format.as_deref().unwrap_or(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    );
    let t = Template::parse(format)?;
    if !t.table {
        for l in &list {
            writeln!(out, "{}", t.render(|a| l.field(a, trunc))?)?;
        }
        return Ok(0);
    }
    let mut rows = vec![t.render(|a| Ok(header(a)))?];
    for l in &list {
        rows.push(t.render(|a| l.field(a, trunc))?);
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.split('\t').map(String::from).collect())
        .collect();
    write!(out, "{}", format::table(&rows))?;
    Ok(0)
}

/// docker's inspect output: a JSON array, indented by 4, in the daemon's key order.
pub fn print_json_array(objects: &[bytes::Bytes]) -> anyhow::Result<()> {
    let mut joined = b"[".to_vec();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            joined.push(b',');
        }
        joined.extend_from_slice(o);
    }
    joined.push(b']');
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    serde_transcode::transcode(&mut serde_json::Deserializer::from_slice(&joined), &mut ser)
        .context("the daemon's answer is not JSON")?;
    out.push(b'\n');
    std::io::stdout().write_all(&out)?;
    Ok(())
}

/// Prints what `paths` (one per name) answer, with `-f` or as JSON; names none of them
/// answers are errors.
pub async fn inspect_objects(
    c: &Client,
    names: &[String],
    format: Option<&str>,
    paths: &[&str],
) -> anyhow::Result<i32> {
    let template = format.map(Template::parse).transpose()?;
    let mut found = Vec::new();
    let mut failed = false;
    'names: for name in names {
        for p in paths {
            match c
                .bytes(Method::GET, &p.replace("{}", &esc(name)), None)
                .await
            {
                Ok(b) => {
                    found.push(b);
                    continue 'names;
                }
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        eprintln!("huskctl: error: no such object: {name}");
        failed = true;
    }
    match template {
        Some(t) => {
            for b in &found {
                let v: Value = serde_json::from_slice(b).context("the daemon's answer")?;
                println!("{}", t.render(|a| eval_json(a, &v))?);
            }
        }
        None => print_json_array(&found)?,
    }
    Ok(i32::from(failed))
}

pub async fn inspect(c: &Client, i: Inspect) -> anyhow::Result<i32> {
    let paths: &[&str] = match i.kind.as_deref() {
        Some("container") => &["/containers/{}/json"],
        Some("image") => &["/images/{}/json"],
        _ => &["/containers/{}/json", "/images/{}/json"],
    };
    inspect_objects(c, &i.names, i.format.as_deref(), paths).await
}
