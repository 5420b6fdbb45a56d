//! The HTTP API, modelled on Docker's Engine API v1.41: same paths (with or without a
//! `/v1.NN` prefix), bodies, status codes and `{"message": "..."}` errors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::daemon::{api_err, ApiError, ApiResult, Ctr, Daemon};
use crate::logs::{self, Stream};

pub const API_VERSION: &str = "1.41";

pub type Body = BoxBody<Bytes, std::io::Error>;

pub async fn serve(d: Arc<Daemon>, listener: UnixListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                log::error!("accept: {e}");
                continue;
            }
        };
        let d = d.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let d = d.clone();
                async move { Ok::<_, Infallible>(handle(d, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await
            {
                log::debug!("connection: {e}");
            }
        });
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

fn respond(status: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    r.headers_mut()
        .insert("Api-Version", API_VERSION.parse().unwrap());
    r
}

fn json_resp(status: u16, v: &Value) -> Response<Body> {
    respond(status, "application/json", full(format!("{v}\n")))
}

fn empty(status: u16) -> Response<Body> {
    let mut r = respond(status, "text/plain", full(Bytes::new()));
    r.headers_mut().remove(header::CONTENT_TYPE);
    r
}

/// A body fed by a channel: for streams (logs, progress, stats).
fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    (tx, BodyExt::boxed(StreamBody::new(stream)))
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Docker's boolean query values: `1`, `true`, `True`; absent or anything else is false.
fn flag(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
}

async fn body_json(req: Request<Incoming>) -> ApiResult<Value> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| api_err(400, format!("read body: {e}")))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| api_err(400, format!("malformed JSON body: {e}")))?;
    if !v.is_object() {
        return Err(api_err(400, "malformed JSON body: not an object"));
    }
    Ok(v)
}

async fn handle(d: Arc<Daemon>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let raw = req.uri().path().to_string();
    log::debug!("{method} {raw}");
    match route(d, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status >= 500 {
                log::warn!("{method} {raw}: {}", e.message);
            }
            json_resp(e.status, &json!({"message": e.message}))
        }
    }
}

/// The path without its `/v1.NN` prefix.
fn unversioned(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(i) = rest.find('/') {
            if rest[..i].bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return &rest[i..];
            }
        }
    }
    path
}

async fn route(d: Arc<Daemon>, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let path = unversioned(req.uri().path()).to_string();
    let q = query(&req);
    let m = req.method().clone();
    let seg: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let fixed = ["/images/load", "/images/create", "/images/json"];
    if let Some(name) = path
        .strip_prefix("/images/")
        .filter(|_| !fixed.contains(&path.as_str()))
    {
        let name = percent_decode(name);
        return images(d, req, m, &name, &q).await;
    }
    match (&m, seg.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => {
            let mut r = respond(200, "text/plain; charset=utf-8", full("OK"));
            r.headers_mut().insert("Ostype", "linux".parse().unwrap());
            Ok(r)
        }
        (&Method::GET, ["version"]) => Ok(json_resp(200, &version())),
        (&Method::GET, ["info"]) => {
            let list = d.list();
            let running = list.iter().filter(|c| c.running()).count();
            Ok(json_resp(
                200,
                &json!({
                    "Containers": list.len(), "ContainersRunning": running,
                    "ContainersStopped": list.len() - running,
                    "Images": d.images.lock().unwrap().images().map(|i| i.len()).unwrap_or(0),
                    "Driver": "overlay2", "DockerRootDir": d.paths.root,
                    "OperatingSystem": "linux", "OSType": "linux", "Architecture": std::env::consts::ARCH,
                    "ServerVersion": env!("CARGO_PKG_VERSION"), "Name": "huskd",
                }),
            ))
        }
        (&Method::POST, ["images", "load"]) => load(d, req, &q).await,
        (&Method::POST, ["images", "create"]) => pull(d, &q).await,
        (&Method::GET, ["images", "json"]) => {
            let list = d.images.lock().unwrap().images().map_err(image_err)?;
            let out: Vec<Value> = list
                .into_iter()
                .map(|i| {
                    let created = i
                        .created
                        .as_deref()
                        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                        .map(|t| t.timestamp())
                        .unwrap_or(0);
                    json!({
                        "Id": i.id, "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": [],
                        "Created": created, "Size": i.size, "VirtualSize": i.size,
                        "SharedSize": -1, "Labels": {}, "Containers": -1,
                    })
                })
                .collect();
            Ok(json_resp(200, &json!(out)))
        }
        (&Method::POST, ["containers", "create"]) => {
            let body = body_json(req).await?;
            let d2 = d.clone();
            let name = q.get("name").cloned();
            let id = tokio::task::spawn_blocking(move || d2.create(name.as_deref(), body))
                .await
                .map_err(|e| api_err(500, e.to_string()))??;
            Ok(json_resp(201, &json!({"Id": id, "Warnings": []})))
        }
        (&Method::GET, ["containers", "json"]) => {
            let all = flag(&q, "all");
            let mut list: Vec<_> = d
                .list()
                .into_iter()
                .map(|c| c.record())
                .filter(|r| all || r.state.running)
                .collect();
            list.sort_by(|a, b| b.created.cmp(&a.created));
            let out: Vec<Value> = list.iter().map(summary).collect();
            Ok(json_resp(200, &json!(out)))
        }
        (_, ["containers", key, rest @ ..]) => {
            let c = d.get(key)?;
            container(d, c, req, m, rest, &q).await
        }
        (&Method::GET, ["exec", id, "json"]) => {
            let x = d
                .execs
                .lock()
                .unwrap()
                .get(*id)
                .cloned()
                .ok_or_else(|| api_err(404, format!("No such exec instance: {id}")))?;
            let s = x.state.lock().unwrap();
            Ok(json_resp(
                200,
                &json!({
                    "ID": s.id, "ContainerID": s.container, "Running": s.running,
                    "ExitCode": s.exit_code, "Pid": s.pid,
                    "OpenStdin": s.config["AttachStdin"], "OpenStdout": s.config["AttachStdout"],
                    "OpenStderr": s.config["AttachStderr"],
                    "ProcessConfig": {
                        "tty": s.config["Tty"].as_bool().unwrap_or(false),
                        "entrypoint": s.config["Cmd"][0],
                        "arguments": s.config["Cmd"].as_array().and_then(|a| a.get(1..)).map(<[Value]>::to_vec).unwrap_or_default(),
                        "privileged": false,
                        "user": s.config["User"],
                    },
                }),
            ))
        }
        (&Method::POST, ["exec", id, "start"]) => crate::exec::start(d, req, id).await,
        (&Method::POST, ["exec", id, "resize"]) => crate::exec::resize(d, id, &q).await,
        _ => Err(api_err(404, format!("page not found: {m} {path}"))),
    }
}

fn version() -> Value {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    json!({
        "Platform": {"Name": "husk"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "MinAPIVersion": "1.24",
        "Os": "linux",
        "Arch": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "KernelVersion": kernel,
        "Components": [{"Name": "huskd", "Version": env!("CARGO_PKG_VERSION")}],
    })
}

pub fn image_err(e: husk_image::Error) -> ApiError {
    use husk_image::Error as E;
    let status = match &e {
        E::NotFound(_) => 404,
        E::Reference(_) | E::Archive(_) | E::Layer { .. } => 400,
        E::Conflict(_) => 409,
        E::Pull(_) => 500,
        _ => 500,
    };
    let message = match e {
        E::NotFound(r) => format!("No such image: {r}"),
        e => e.to_string(),
    };
    api_err(status, message)
}

async fn images(
    d: Arc<Daemon>,
    _req: Request<Incoming>,
    m: Method,
    name: &str,
    q: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    if m == Method::GET {
        if let Some(n) = name.strip_suffix("/json") {
            let i = d.images.lock().unwrap().inspect(n).map_err(image_err)?;
            let mut v = json!(i);
            // Docker's config has maps (`{"80/tcp": {}}`) where the store keeps lists.
            for k in ["ExposedPorts", "Volumes"] {
                let map: serde_json::Map<String, Value> = v["Config"][k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(|p| (p.to_string(), json!({}))))
                    .collect();
                v["Config"][k] = Value::Object(map);
            }
            return Ok(json_resp(200, &v));
        }
    }
    if m == Method::POST {
        if let Some(n) = name.strip_suffix("/tag") {
            let repo = q.get("repo").cloned().unwrap_or_default();
            if repo.is_empty() {
                return Err(api_err(400, "repo: a repository name is required"));
            }
            let target = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo,
            };
            d.images
                .lock()
                .unwrap()
                .tag(n, &target)
                .map_err(image_err)?;
            return Ok(empty(201));
        }
    }
    if m == Method::DELETE {
        let force = flag(q, "force");
        let image = d.images.lock().unwrap().inspect(name).map_err(image_err)?;
        let untag_only = husk_image::normalize(name)
            .is_ok_and(|t| image.repo_tags.contains(&t) && image.repo_tags.len() > 1);
        if let Some(c) = d.image_in_use(&image.id).filter(|_| !untag_only) {
            return Err(api_err(
                409,
                format!(
                    "conflict: unable to delete {name} - image is being used by container {}",
                    &c[..12]
                ),
            ));
        }
        let removed = d
            .images
            .lock()
            .unwrap()
            .rmi(name, force)
            .map_err(image_err)?;
        let out: Vec<Value> = removed
            .into_iter()
            .map(|r| match r {
                husk_image::Removed::Untagged(t) => json!({"Untagged": t}),
                husk_image::Removed::Deleted(i) => json!({"Deleted": i}),
            })
            .collect();
        return Ok(json_resp(200, &json!(out)));
    }
    Err(api_err(404, format!("page not found: {m} /images/{name}")))
}

/// The request body as a blocking reader, for the image store's load.
struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// POST /images/load: the archive streamed from the body into the store.
async fn load(
    d: Arc<Daemon>,
    req: Request<Incoming>,
    q: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    // `quiet` (which Docker's CLI sets when its output is not a terminal) only drops the
    // progress, which this answer does not carry anyway.
    let _ = q;
    let (tx, rx) = mpsc::channel(16);
    let mut body = req.into_body();
    let feeder = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let item = match frame {
                Ok(f) => match f.into_data() {
                    Ok(b) => Ok(b),
                    Err(_) => continue,
                },
                Err(e) => Err(e.to_string()),
            };
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let loaded = tokio::task::spawn_blocking(move || {
        let mut store = d.images.lock().unwrap();
        let reader = BodyReader {
            rx,
            cur: Bytes::new(),
        };
        store.load(reader, None, &mut |_| {})
    })
    .await
    .map_err(|e| api_err(500, e.to_string()))?;
    feeder.abort();
    let loaded = loaded.map_err(image_err)?;
    let mut out = String::new();
    for l in loaded {
        let lines: Vec<String> = if l.tags.is_empty() {
            vec![format!("Loaded image ID: {}\n", l.id)]
        } else {
            l.tags
                .iter()
                .map(|t| format!("Loaded image: {t}\n"))
                .collect()
        };
        for line in lines {
            out.push_str(&json!({"stream": line}).to_string());
            out.push('\n');
        }
    }
    Ok(respond(200, "application/json", full(out)))
}

/// POST /images/create?fromImage=&tag=: a pull. The progress is sent once the pull is over
/// (a failure then gets an HTTP status of its own), in Docker's JSON-lines form.
async fn pull(d: Arc<Daemon>, q: &HashMap<String, String>) -> ApiResult<Response<Body>> {
    let from = q.get("fromImage").cloned().unwrap_or_default();
    if from.is_empty() {
        return Err(api_err(
            400,
            "fromImage: an image name is required (import is not supported)",
        ));
    }
    let tag = q.get("tag").cloned().unwrap_or_default();
    let last = from.rsplit('/').next().unwrap_or_default();
    let reference = if tag.is_empty() || last.contains(':') || from.contains('@') {
        from.clone()
    } else {
        format!("{from}:{tag}")
    };
    let short = husk_image::normalize(&reference).map_err(image_err)?;
    let options = husk_image::PullOptions {
        insecure: d.insecure.clone(),
        auth: None,
    };
    let (ptx, mut prx) = mpsc::unbounded_channel::<Value>();
    let r2 = reference.clone();
    let handle = tokio::runtime::Handle::current();
    let mut task = tokio::task::spawn_blocking(move || {
        let mut store = d.images.lock().unwrap();
        let mut progress = |p: husk_image::Progress| {
            let line = match p {
                husk_image::Progress::Read { done, total } => json!({
                    "status": "Downloading",
                    "progressDetail": {"current": done, "total": total},
                }),
                husk_image::Progress::Layer {
                    diff_id, reused, ..
                } => json!({
                    "status": if reused { "Already exists" } else { "Pull complete" },
                    "id": diff_id.strip_prefix("sha256:").unwrap_or(diff_id).get(..12).unwrap_or(diff_id),
                }),
            };
            // The receiver outlives the pull.
            let _ = ptx.send(line);
        };
        handle.block_on(store.pull(&r2, &options, &mut progress))
    });
    let pull_error = move |e: husk_image::Error| match e {
        husk_image::Error::Pull(m) if m.contains("manifest unknown") || m.contains("not found") => {
            api_err(404, format!("manifest for {reference} not found: {m}"))
        }
        e => image_err(e),
    };
    let (name, tag) = short.rsplit_once(':').unwrap_or((&short, "latest"));
    let mut out = vec![json!({"status": format!("Pulling from {name}"), "id": tag})];
    let short2 = short.clone();
    let done = move |digest: &str| {
        let short = &short2;
        [
            json!({"status": format!("Digest: {digest}")}),
            json!({"status": format!("Status: Downloaded newer image for {short}")}),
        ]
    };
    let lines = |v: &[Value]| v.iter().map(|l| format!("{l}\n")).collect::<String>();
    // Until the first progress, a failure still gets a status of its own (404 for a missing
    // manifest); after it, it goes into the stream, as Docker's does.
    enum First {
        Line(Value),
        Ended(Result<husk_image::Result<husk_image::Loaded>, tokio::task::JoinError>),
    }
    let first = tokio::select! {
        l = prx.recv() => match l {
            Some(l) => First::Line(l),
            // The pull ended (its progress sender with it) before saying anything.
            None => First::Ended((&mut task).await),
        },
        res = &mut task => First::Ended(res),
    };
    match first {
        First::Ended(res) => {
            let loaded = res
                .map_err(|e| api_err(500, e.to_string()))?
                .map_err(pull_error)?;
            while let Ok(l) = prx.try_recv() {
                out.push(l);
            }
            out.extend(done(&loaded.manifest_digest));
            Ok(respond(200, "application/json", full(lines(&out))))
        }
        First::Line(first) => {
            out.push(first);
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                let send = |v: Vec<Value>| {
                    let tx = tx.clone();
                    async move { tx.send(Bytes::from(lines(&v))).await.is_ok() }
                };
                if !send(out).await {
                    return;
                }
                while let Some(l) = prx.recv().await {
                    if !send(vec![l]).await {
                        return;
                    }
                }
                let tail = match task.await {
                    Ok(Ok(l)) => done(&l.manifest_digest).to_vec(),
                    Ok(Err(e)) => {
                        let m = pull_error(e).message;
                        vec![json!({"errorDetail": {"message": m}, "error": m})]
                    }
                    Err(e) => vec![
                        json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}),
                    ],
                };
                // The client may have gone.
                let _ = send(tail).await;
            });
            Ok(respond(200, "application/json", body))
        }
    }
}

/// One line of GET /containers/json.
fn summary(r: &crate::db::Record) -> Value {
    let ports = if r.state.running && !r.ip_address.is_empty() {
        crate::network::ports(&r.host_config, true)
            .map(|p| crate::network::summary_ports(&p))
            .unwrap_or_else(|_| json!([]))
    } else {
        json!([])
    };
    let created = chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let command = crate::spec::argv(&r.config).join(" ");
    json!({
        "Id": r.id, "Names": [format!("/{}", r.name)], "Image": r.config["Image"],
        "ImageID": r.image, "Command": command, "Created": created,
        "State": r.state.status, "Status": status_text(&r.state), "Ports": ports,
        "Labels": r.config["Labels"], "SizeRw": 0, "SizeRootFs": 0,
        "HostConfig": {"NetworkMode": r.host_config["NetworkMode"].as_str().unwrap_or("none")},
        "Mounts": [],
    })
}

fn ago(t: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(t) else {
        return String::new();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    human_duration(secs)
}

/// go-units' HumanDuration, which Docker's Status column uses.
fn human_duration(secs: i64) -> String {
    let hours = (secs as f64 / 3600.0 + 0.5) as i64;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// Docker's human Status column: `Up 5 seconds`, `Exited (0) 3 minutes ago`, `Created`.
fn status_text(s: &crate::db::State) -> String {
    match s.status.as_str() {
        "running" => format!("Up {}", ago(&s.started_at)),
        "paused" => format!("Up {} (Paused)", ago(&s.started_at)),
        "exited" => format!("Exited ({}) {} ago", s.exit_code, ago(&s.finished_at)),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}

pub fn inspect(d: &Daemon, c: &Ctr) -> Value {
    let r = c.record();
    let dir = d.paths.root.join("containers").join(&r.id);
    let args = crate::spec::argv(&r.config);
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": args.first(),
        "Args": args.get(1..).unwrap_or_default(),
        "State": r.state,
        "Image": r.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": crate::daemon::log_path(&d.paths.root, &r.id),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": r.host_config,
        "Config": r.config,
        "Mounts": [],
        "NetworkSettings": crate::network::settings(
            &r.ip_address,
            d.net.as_ref().map(|n| &n.bridge),
            &crate::network::ports(&r.host_config, true).unwrap_or_default(),
        ),
    })
}

async fn container(
    d: Arc<Daemon>,
    c: Arc<Ctr>,
    req: Request<Incoming>,
    m: Method,
    rest: &[&str],
    q: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    match (&m, rest) {
        (&Method::GET, ["json"]) => Ok(json_resp(200, &inspect(&d, &c))),
        (&Method::POST, ["start"]) => Ok(empty(if d.start(&c).await? { 204 } else { 304 })),
        (&Method::POST, ["stop"]) => {
            let t = q.get("t").and_then(|t| t.parse().ok());
            Ok(empty(if d.stop(&c, t).await? { 204 } else { 304 }))
        }
        (&Method::POST, ["restart"]) => {
            let t = q.get("t").and_then(|t| t.parse().ok());
            d.stop(&c, t).await?;
            d.start(&c).await?;
            Ok(empty(204))
        }
        (&Method::POST, ["kill"]) => {
            d.kill(&c, q.get("signal").map(String::as_str)).await?;
            Ok(empty(204))
        }
        (&Method::POST, ["pause"]) => d.pause(&c, true).await.map(|_| empty(204)),
        (&Method::POST, ["unpause"]) => d.pause(&c, false).await.map(|_| empty(204)),
        (&Method::POST, ["wait"]) => wait(&c, q).await,
        (&Method::DELETE, []) => {
            d.remove(&c, flag(q, "force")).await?;
            Ok(empty(204))
        }
        (&Method::GET, ["logs"]) => logs_stream(d, c, q).await,
        (&Method::POST, ["attach"]) => crate::exec::attach(d, c, req, q).await,
        (&Method::POST, ["exec"]) => {
            let body = body_json(req).await?;
            crate::exec::create(&d, &c, body).map(|id| json_resp(201, &json!({"Id": id})))
        }
        (&Method::POST, ["resize"]) => {
            let (h, w) = dims(q)?;
            let shim = c
                .shim()
                .ok_or_else(|| api_err(409, format!("Container {} is not running", c.id)))?;
            let id = c.id.clone();
            tokio::task::spawn_blocking(move || shim.resize(&id, "", w, h))
                .await
                .map_err(|e| api_err(500, e.to_string()))?
                .map_err(|e| api_err(500, e.to_string()))?;
            Ok(empty(200))
        }
        (&Method::GET, ["stats"]) => {
            crate::stats::stats(c, q.get("stream").is_none_or(|s| s != "0" && s != "false")).await
        }
        _ => Err(api_err(
            404,
            format!(
                "page not found: {m} /containers/{}/{}",
                c.id,
                rest.join("/")
            ),
        )),
    }
}

pub fn dims(q: &HashMap<String, String>) -> ApiResult<(u32, u32)> {
    let get = |k: &str| {
        q.get(k)
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| api_err(400, format!("{k}: a number is required")))
    };
    Ok((get("h")?, get("w")?))
}

/// POST /containers/{id}/wait?condition=not-running|next-exit|removed
async fn wait(c: &Arc<Ctr>, q: &HashMap<String, String>) -> ApiResult<Response<Body>> {
    let condition = q
        .get("condition")
        .map(String::as_str)
        .unwrap_or("not-running");
    if !["not-running", "next-exit", "removed", ""].contains(&condition) {
        return Err(api_err(400, format!("invalid condition: {condition:?}")));
    }
    let mut rx = c.changed.subscribe();
    let exits = c.exits.load(Ordering::SeqCst);
    let c = c.clone();
    let condition = condition.to_string();
    // The headers go at once, the body when the condition is met: Docker's clients start the
    // container only once the wait's answer has begun.
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        loop {
            let done = match condition.as_str() {
                "next-exit" => {
                    c.exits.load(Ordering::SeqCst) > exits || c.removed.load(Ordering::SeqCst)
                }
                "removed" => c.removed.load(Ordering::SeqCst),
                _ => !c.running(),
            };
            if done {
                break;
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        let r = c.record();
        let error = (!r.state.error.is_empty()).then(|| json!({"Message": r.state.error}));
        let v = json!({"StatusCode": r.state.exit_code, "Error": error});
        // The client may have gone.
        let _ = tx.send(Bytes::from(format!("{v}\n"))).await;
    });
    Ok(respond(200, "application/json", body))
}

/// GET /containers/{id}/logs
async fn logs_stream(
    d: Arc<Daemon>,
    c: Arc<Ctr>,
    q: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    let (out, err) = (flag(q, "stdout"), flag(q, "stderr"));
    if !out && !err {
        return Err(api_err(
            400,
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = flag(q, "follow");
    let timestamps = flag(q, "timestamps");
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("all") | Some("") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| api_err(400, format!("tail: {n:?} is not a number")))?,
        ),
    };
    let tty = c.tty();
    let wanted = move |s: Stream| match s {
        Stream::Stdout => out,
        Stream::Stderr => err,
    };
    let mut rx = c.log.tx.subscribe();
    let mut changed = c.changed.subscribe();
    let end = c.log.len();
    let path = crate::daemon::log_path(&d.paths.root, &c.id);
    let entries = tokio::task::spawn_blocking(move || logs::read(&path, end, tail))
        .await
        .map_err(|e| api_err(500, e.to_string()))?
        .map_err(|e| api_err(500, e.to_string()))?;
    let (tx, body) = channel_body();
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    tokio::spawn(async move {
        for e in entries.into_iter().filter(|e| wanted(e.stream)) {
            let mut data = e.data;
            if timestamps {
                data = [format!("{} ", e.time).into_bytes(), data].concat();
            }
            if tx.send(logs::frame(e.stream, &data, tty)).await.is_err() {
                return;
            }
        }
        if !follow || !c.running() {
            return;
        }
        let exits = c.exits.load(Ordering::SeqCst);
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Ok(ch) if ch.offset >= end && wanted(ch.stream) => {
                        let data = if timestamps {
                            [format!("{} ", logs::now_rfc3339nano()).into_bytes(), ch.data.to_vec()].concat()
                        } else { ch.data.to_vec() };
                        if tx.send(logs::frame(ch.stream, &data, tty)).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => log::warn!("{}: a log follower lost {n} lines", c.id),
                    Err(_) => return,
                },
                r = changed.changed() => {
                    if r.is_err() || c.exits.load(Ordering::SeqCst) > exits || c.removed.load(Ordering::SeqCst) {
                        // The copies ended before the exit was recorded: what is queued is all.
                        while let Ok(ch) = rx.try_recv() {
                            if ch.offset >= end && wanted(ch.stream) && tx.send(logs::frame(ch.stream, &ch.data, tty)).await.is_err() { return; }
                        }
                        return;
                    }
                }
            }
        }
    });
    Ok(respond(200, ctype, body))
}

/// The 101 answer of a hijacked connection, as Docker gives it.
pub fn upgraded(tty: bool) -> Response<Body> {
    let mut r = empty(101);
    let h = r.headers_mut();
    h.insert(header::CONNECTION, "Upgrade".parse().unwrap());
    h.insert(header::UPGRADE, "tcp".parse().unwrap());
    h.insert(
        header::CONTENT_TYPE,
        if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }
        .parse()
        .unwrap(),
    );
    r
}

/// Reads the client's side of a hijacked connection into `to` until EOF.
pub async fn pump_stdin<R: tokio::io::AsyncRead + Unpin>(mut from: R, to: &std::path::Path) {
    let mut sender = match tokio::net::unix::pipe::OpenOptions::new().open_sender(to) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("stdin {}: {e}", to.display());
            return;
        }
    };
    let mut buf = vec![0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if sender.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
}

pub fn empty_ok() -> Response<Body> {
    empty(200)
}

#[cfg(test)]
mod human_duration_tests {
    #[test]
    fn as_go_units_says_it() {
        let h = super::human_duration;
        assert_eq!(h(0), "Less than a second");
        assert_eq!(h(1), "1 second");
        assert_eq!(h(59), "59 seconds");
        assert_eq!(h(60), "About a minute");
        assert_eq!(h(119), "About a minute");
        assert_eq!(h(120), "2 minutes");
        assert_eq!(h(3599), "59 minutes");
        assert_eq!(h(3600), "About an hour");
        assert_eq!(h(3 * 3600), "3 hours");
        assert_eq!(h(3 * 86400), "3 days");
        assert_eq!(h(21 * 86400), "3 weeks");
    }
}
