//! Hijacked connections: attach to a container's stdio, and exec processes in it. The
//! connection is taken over after a `101 Upgrade: tcp` answer, as Docker does; output goes out
//! in the multiplexed form (8-byte headers) unless the process has a terminal.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::api::{dims, pump_stdin, upgraded, Body};
use crate::daemon::{api_err, random_id, ApiResult, Ctr, Daemon, Exec, ExecState};
use crate::logs::{self, Stream};

fn flag(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

/// POST /containers/{id}/attach?stream=1&stdin=&stdout=&stderr=&logs=
pub async fn attach(
    d: Arc<Daemon>,
    c: Arc<Ctr>,
    mut req: Request<Incoming>,
    q: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    let rec = c.record();
    if rec.state.status == "exited" && flag(q, "stream") {
        return Err(api_err(
            409,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    let (stdin, out, err) = (flag(q, "stdin"), flag(q, "stdout"), flag(q, "stderr"));
    let (logs_too, stream) = (flag(q, "logs"), flag(q, "stream"));
    let open_stdin = rec.config["OpenStdin"].as_bool() == Some(true);
    let tty = c.tty();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let bundle = d.paths.state.join(&c.id);
    let log_path = crate::daemon::log_path(&d.paths.root, &c.id);
    // Subscribed before the answer: a client that has read it misses nothing the container
    // writes after (docker run attaches, then starts).
    let mut rx = c.log.tx.subscribe();
    let mut changed = c.changed.subscribe();
    let exits = c.exits.load(Ordering::SeqCst);
    let end = c.log.len();
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                log::warn!("attach {}: upgrade: {e}", c.id);
                return;
            }
        };
        let (r, mut w) = tokio::io::split(io);
        let wanted = |s: Stream| match s {
            Stream::Stdout => out,
            Stream::Stderr => err,
        };
        if logs_too {
            let entries = logs::read(&log_path, end, None).unwrap_or_default();
            for e in entries.into_iter().filter(|e| wanted(e.stream)) {
                if w.write_all(&logs::frame(e.stream, &e.data, tty))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if !stream {
            // The peer may have gone; nothing is left to tell it.
            let _ = w.shutdown().await;
            return;
        }
        if stdin && open_stdin {
            let c2 = c.clone();
            let fifo = bundle.join("stdin");
            tokio::spawn(async move {
                // The FIFO exists once the container runs (attach may come before start).
                let mut changed = c2.changed.subscribe();
                while !c2.running() {
                    if changed.changed().await.is_err() || c2.removed.load(Ordering::SeqCst) {
                        return;
                    }
                    if c2.exits.load(Ordering::SeqCst) > exits {
                        return;
                    }
                }
                pump_stdin(r, &fifo).await;
            });
        }
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Ok(ch) if wanted(ch.stream) => {
                        if w.write_all(&logs::frame(ch.stream, &ch.data, tty)).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => log::warn!("{}: an attached client lost {n} lines", c.id),
                    Err(_) => break,
                },
                res = changed.changed() => {
                    if res.is_err() || c.exits.load(Ordering::SeqCst) > exits || c.removed.load(Ordering::SeqCst) {
                        while let Ok(ch) = rx.try_recv() {
                            if wanted(ch.stream) && w.write_all(&logs::frame(ch.stream, &ch.data, tty)).await.is_err() { return; }
                        }
                        break;
                    }
                }
            }
        }
        // The peer may have gone already.
        let _ = w.shutdown().await;
    });
    Ok(upgraded(tty))
}

/// POST /containers/{id}/exec
pub fn create(d: &Daemon, c: &Arc<Ctr>, body: Value) -> ApiResult<String> {
    if !c.running() {
        return Err(api_err(409, format!("Container {} is not running", c.id)));
    }
    if body["Cmd"].as_array().is_none_or(|a| a.is_empty()) {
        return Err(api_err(400, "No exec command specified"));
    }
    let id = random_id();
    d.execs.lock().unwrap().insert(
        id.clone(),
        Arc::new(Exec {
            state: Mutex::new(ExecState {
                id: id.clone(),
                container: c.id.clone(),
                config: body,
                running: false,
                exit_code: None,
                pid: 0,
            }),
            changed: watch::channel(0).0,
        }),
    );
    Ok(id)
}

fn exec_of(d: &Daemon, id: &str) -> ApiResult<Arc<Exec>> {
    d.execs
        .lock()
        .unwrap()
        .get(id)
        .cloned()
        .ok_or_else(|| api_err(404, format!("No such exec instance: {id}")))
}

/// POST /exec/{id}/start: runs the process through the shim and streams its stdio over the
/// hijacked connection (or returns at once with Detach).
pub async fn start(
    d: Arc<Daemon>,
    mut req: Request<Incoming>,
    id: &str,
) -> ApiResult<Response<Body>> {
    let x = exec_of(&d, id)?;
    let body = {
        use http_body_util::BodyExt;
        let on_upgrade = hyper::upgrade::on(&mut req);
        let bytes = req
            .body_mut()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (v, on_upgrade)
    };
    let (opts, on_upgrade) = body;
    let detach = opts["Detach"].as_bool() == Some(true);
    let (cid, config) = {
        let s = x.state.lock().unwrap();
        if s.running || s.exit_code.is_some() {
            return Err(api_err(409, format!("exec {id} has already run")));
        }
        (s.container.clone(), s.config.clone())
    };
    let c = d.get(&cid)?;
    let shim = c
        .shim()
        .ok_or_else(|| api_err(409, format!("Container {cid} is not running")))?;
    let rec = c.record();
    let image = d
        .images
        .lock()
        .unwrap()
        .inspect(&rec.image)
        .map_err(crate::api::image_err)?;
    let container = crate::api::inspect(&d, &c);
    let process = crate::spec::exec_process(&container, &config, &image.layer_dirs)
        .map_err(|e| api_err(400, e.to_string()))?;
    let tty = config["Tty"].as_bool() == Some(true);
    let attach_in = config["AttachStdin"].as_bool() == Some(true) && !detach;
    let bundle = d.paths.state.join(&cid);
    let fifo = |s: &str| bundle.join(format!("exec-{id}-{s}"));
    let paths: [PathBuf; 3] = [fifo("stdin"), fifo("stdout"), fifo("stderr")];
    for p in &paths {
        nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| api_err(500, format!("mkfifo {}: {e}", p.display())))?;
    }
    let io = crate::shim::Stdio3 {
        stdin: if attach_in {
            paths[0].display().to_string()
        } else {
            String::new()
        },
        stdout: if detach {
            String::new()
        } else {
            paths[1].display().to_string()
        },
        stderr: if detach || tty {
            String::new()
        } else {
            paths[2].display().to_string()
        },
        terminal: tty,
    };
    // Readers first: the shim then opens the FIFOs write-only, and they stay whole until read.
    let mut readers = Vec::new();
    if !detach {
        let streams = if tty {
            vec![Stream::Stdout]
        } else {
            vec![Stream::Stdout, Stream::Stderr]
        };
        for s in streams {
            let p = &paths[if s == Stream::Stdout { 1 } else { 2 }];
            match tokio::net::unix::pipe::OpenOptions::new().open_receiver(p) {
                Ok(rx) => readers.push((s, rx)),
                Err(e) => {
                    remove_fifos(&paths);
                    return Err(api_err(500, format!("open {}: {e}", p.display())));
                }
            }
        }
    }
    let (exec_id, cid2, shim2) = (id.to_string(), cid.clone(), shim.clone());
    let spec = process.to_string().into_bytes();
    x.state.lock().unwrap().running = true;
    let started = tokio::task::spawn_blocking(move || {
        shim2.exec(&cid2, &exec_id, &spec, &io)?;
        shim2.start(&cid2, &exec_id)
    })
    .await
    .map_err(|e| api_err(500, e.to_string()))?;
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            {
                let mut s = x.state.lock().unwrap();
                s.running = false;
                s.exit_code = Some(126);
            }
            let (cid2, exec_id) = (cid.clone(), id.to_string());
            // The exec may not exist in the shim; either way it is gone after this.
            let _ = tokio::task::spawn_blocking(move || shim.delete(&cid2, &exec_id)).await;
            remove_fifos(&paths);
            x.changed.send_modify(|n| *n += 1);
            if detach {
                return Err(api_err(500, e.to_string()));
            }
            // As dockerd: the stream is already promised, so the error goes into it (on
            // stdout, ended by \r\n) and the exit code (126) is the exec's.
            let msg = format!("{e}\r\n");
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(u) => {
                        let mut io = TokioIo::new(u);
                        let sent = io
                            .write_all(&logs::frame(Stream::Stdout, msg.as_bytes(), tty))
                            .await;
                        if let Err(e) = sent.and(io.shutdown().await) {
                            log::debug!("exec error to the client: {e}");
                        }
                    }
                    Err(e) => log::warn!("exec: upgrade: {e}"),
                }
            });
            return Ok(upgraded(tty));
        }
    };
    x.state.lock().unwrap().pid = pid;
    let session = Session {
        x: x.clone(),
        shim,
        cid,
        exec_id: id.to_string(),
        paths,
    };
    if detach {
        tokio::spawn(session.finish());
        return Ok(crate::api::empty_ok());
    }
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                log::warn!("exec {}: upgrade: {e}", session.exec_id);
                session.finish().await;
                return;
            }
        };
        let (r, w) = tokio::io::split(io);
        let w = Arc::new(tokio::sync::Mutex::new(w));
        if attach_in {
            let p = session.paths[0].clone();
            tokio::spawn(async move { pump_stdin(r, &p).await });
        }
        let mut copies = Vec::new();
        for (s, mut rx) in readers {
            let w = w.clone();
            copies.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = rx.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if w.lock()
                        .await
                        .write_all(&logs::frame(s, &buf[..n], tty))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }));
        }
        for c in copies {
            // A copy that panicked has nothing more to send.
            let _ = c.await;
        }
        session.finish().await;
        // The peer may have gone already.
        let _ = w.lock().await.shutdown().await;
    });
    Ok(upgraded(tty))
}

struct Session {
    x: Arc<Exec>,
    shim: crate::shim::Shim,
    cid: String,
    exec_id: String,
    paths: [PathBuf; 3],
}

impl Session {
    /// Waits for the exit (its event), then deletes the process in the shim.
    async fn finish(self) {
        let mut rx = self.x.changed.subscribe();
        let exited = tokio::time::timeout(Duration::from_secs(24 * 3600), async {
            while self.x.state.lock().unwrap().running {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if exited.is_err() {
            log::warn!("exec {}: no exit seen", self.exec_id);
        }
        let (shim, cid, eid) = (self.shim.clone(), self.cid.clone(), self.exec_id.clone());
        match tokio::task::spawn_blocking(move || shim.delete(&cid, &eid)).await {
            Ok(Ok(resp)) => {
                let mut s = self.x.state.lock().unwrap();
                s.running = false;
                s.exit_code = Some(resp.exit_status as i64);
            }
            Ok(Err(e)) => log::warn!("exec {}: delete: {e}", self.exec_id),
            Err(e) => log::warn!("exec {}: delete: {e}", self.exec_id),
        }
        self.x.changed.send_modify(|n| *n += 1);
        remove_fifos(&self.paths);
    }
}

fn remove_fifos(paths: &[PathBuf]) {
    for p in paths {
        if let Err(e) = std::fs::remove_file(p) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("remove {}: {e}", p.display());
            }
        }
    }
}

/// POST /exec/{id}/resize
pub async fn resize(
    d: Arc<Daemon>,
    id: &str,
    q: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    let (h, w) = dims(q)?;
    let x = exec_of(&d, id)?;
    let cid = x.state.lock().unwrap().container.clone();
    let c = d.get(&cid)?;
    let shim = c
        .shim()
        .ok_or_else(|| api_err(409, format!("Container {cid} is not running")))?;
    let id = id.to_string();
    tokio::task::spawn_blocking(move || shim.resize(&cid, &id, w, h))
        .await
        .map_err(|e| api_err(500, e.to_string()))?
        .map_err(|e| api_err(500, e.to_string()))?;
    Ok(crate::api::empty_ok())
}
