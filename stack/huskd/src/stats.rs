//! GET /containers/{id}/stats: the shim's cgroup metrics in Docker's stats shape (the fields
//! `docker stats` reads: cpu, memory, pids), once or every second.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{json, Value};

use crate::api::Body;
use crate::daemon::{api_err, ApiResult, Ctr};

fn system_cpu_ns() -> u64 {
    // The first line of /proc/stat, in USER_HZ ticks; Docker reports it in nanoseconds.
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}

/// The host's memory: the limit Docker shows for a container without one.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(u64::MAX, |kib| kib * 1024)
}

async fn sample(c: &Arc<Ctr>) -> ApiResult<Value> {
    let rec = c.record();
    let mut out = json!({
        "read": crate::logs::now_rfc3339nano(),
        "name": format!("/{}", rec.name), "id": rec.id,
        "pids_stats": {}, "memory_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": system_cpu_ns(),
                      "online_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)},
    });
    let Some(shim) = c.shim().filter(|_| rec.state.running) else {
        return Ok(out);
    };
    let id = c.id.clone();
    let any = tokio::task::spawn_blocking(move || shim.stats(&id))
        .await
        .map_err(|e| api_err(500, e.to_string()))?
        .map_err(|e| api_err(500, e.to_string()))?;
    if any.type_url.ends_with("cgroups.v1.Metrics") {
        use containerd_shim_protos::cgroups::metrics::Metrics;
        if let Some(m) = crate::shim::decode::<Metrics>(&any) {
            let usage = m.memory.usage.as_ref().cloned().unwrap_or_default();
            out["memory_stats"] = json!({"usage": usage.usage, "limit": usage.limit.min(host_memory()), "max_usage": usage.max});
            out["pids_stats"] = json!({"current": m.pids.current, "limit": m.pids.limit});
            let cpu = m.cpu.usage.as_ref().cloned().unwrap_or_default();
            out["cpu_stats"]["cpu_usage"] = json!({"total_usage": cpu.total, "usage_in_kernelmode": cpu.kernel, "usage_in_usermode": cpu.user, "percpu_usage": cpu.per_cpu});
        }
    } else if any.type_url.ends_with("cgroups.v2.Metrics") {
        use containerd_shim_protos::cgroups_v2::metrics::Metrics;
        if let Some(m) = crate::shim::decode::<Metrics>(&any) {
            out["memory_stats"] =
                json!({"usage": m.memory.usage, "limit": m.memory.usage_limit.min(host_memory())});
            out["pids_stats"] = json!({"current": m.pids.current, "limit": m.pids.limit});
            out["cpu_stats"]["cpu_usage"] = json!({"total_usage": m.cpu.usage_usec * 1000, "usage_in_kernelmode": m.cpu.system_usec * 1000, "usage_in_usermode": m.cpu.user_usec * 1000});
        }
    }
    Ok(out)
}

pub async fn stats(c: Arc<Ctr>, stream: bool) -> ApiResult<Response<Body>> {
    let first = sample(&c).await?;
    if !stream {
        let mut r = Response::new(http_body_util::BodyExt::boxed(
            http_body_util::BodyExt::map_err(
                http_body_util::Full::new(Bytes::from(format!("{first}\n"))),
                |e| match e {},
            ),
        ));
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        return Ok(r);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut prev = first;
        // Docker's stream: one sample a second, each with the previous one's cpu as precpu.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Ok(mut s) = sample(&c).await else { return };
            s["precpu_stats"] = prev["cpu_stats"].clone();
            if tx.send(Bytes::from(format!("{s}\n"))).await.is_err() || !c.running() {
                return;
            }
            prev = s;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(hyper::body::Frame::data(b)), rx))
    });
    let mut r = Response::new(http_body_util::BodyExt::boxed(
        http_body_util::StreamBody::new(stream),
    ));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    Ok(r)
}
