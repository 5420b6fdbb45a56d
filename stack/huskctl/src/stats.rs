//! `stats`: docker's table of CPU, memory, network, block I/O and pids, computed from the
//! daemon's stats JSON as docker's CLI computes it; once with --no-stream, else redrawn on each
//! sample.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::{
    cli::Stats,
    client::{esc, with_query, Client, Lines},
    format,
};

fn u(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// One row of the table from one stats sample.
fn row(id: &str, s: &Value, trunc: bool) -> Vec<String> {
    let cpu_delta = u(&s["cpu_stats"]["cpu_usage"]["total_usage"])
        - u(&s["precpu_stats"]["cpu_usage"]["total_usage"]);
    let system_delta =
        u(&s["cpu_stats"]["system_cpu_usage"]) - u(&s["precpu_stats"]["system_cpu_usage"]);
    let cpus = match u(&s["cpu_stats"]["online_cpus"]) {
        0.0 => s["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0.0, |a| a.len() as f64),
        n => n,
    };
    let cpu = if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem_stats = &s["memory_stats"];
    let usage = u(&mem_stats["usage"]);
    // Page cache that can be reclaimed is not counted, as docker's CLI does (v1 then v2 names).
    let cache = [
        &mem_stats["stats"]["total_inactive_file"],
        &mem_stats["stats"]["inactive_file"],
    ]
    .into_iter()
    .find_map(Value::as_f64)
    .filter(|&c| c < usage)
    .unwrap_or(0.0);
    let mem = usage - cache;
    let limit = u(&mem_stats["limit"]);
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += u(&n["rx_bytes"]);
            tx += u(&n["tx_bytes"]);
        }
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += u(&e["value"]),
            Some("write") => write += u(&e["value"]),
            _ => {}
        }
    }
    let name = s["name"].as_str().unwrap_or(id).trim_start_matches('/');
    vec![
        if trunc {
            format::short_id(id)
        } else {
            id.to_string()
        },
        name.to_string(),
        format!("{cpu:.2}%"),
        format!(
            "{} / {}",
            format::bytes_size(mem),
            format::bytes_size(limit)
        ),
        format!("{mem_pct:.2}%"),
        format!("{} / {}", format::human_size(rx), format::human_size(tx)),
        format!(
            "{} / {}",
            format::human_size(read),
            format::human_size(write)
        ),
        u(&s["pids_stats"]["current"]).to_string(),
    ]
}

fn table(rows: &[Vec<String>]) -> String {
    let header = [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ];
    let mut all = vec![header.iter().map(|h| h.to_string()).collect()];
    all.extend(rows.iter().cloned());
    format::table(&all)
}

pub async fn stats(c: &Client, s: Stats) -> anyhow::Result<i32> {
    let ids: Vec<String> = if s.containers.is_empty() {
        #[derive(serde::Deserialize)]
        struct L {
            #[serde(rename = "Id")]
            id: String,
        }
        let url = with_query("/containers/json", &[("all", if s.all { "1" } else { "" })]);
        c.get::<Vec<L>>(&url)
            .await?
            .into_iter()
            .map(|l| l.id)
            .collect()
    } else {
        s.containers.clone()
    };
    let trunc = !s.no_trunc;
    if s.no_stream {
        let mut rows = Vec::new();
        for id in &ids {
            let url = with_query(
                &format!("/containers/{}/stats", esc(id)),
                &[("stream", "0")],
            );
            let v: Value = c.get(&url).await?;
            rows.push(row(v["id"].as_str().unwrap_or(id), &v, trunc));
        }
        print!("{}", table(&rows));
        return Ok(0);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, id) in ids.iter().enumerate() {
        let url = with_query(
            &format!("/containers/{}/stats", esc(id)),
            &[("stream", "1")],
        );
        let resp = c.request(hyper::Method::GET, &url, None).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = Lines::new(resp);
            while let Ok(Some(line)) = lines.next().await {
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    if tx.send((i, v)).is_err() {
                        break;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut rows: Vec<Option<Vec<String>>> = vec![None; ids.len()];
    let terminal = std::io::stdout().is_terminal();
    while let Some((i, v)) = rx.recv().await {
        rows[i] = Some(row(v["id"].as_str().unwrap_or(&ids[i]), &v, trunc));
        let shown: Vec<Vec<String>> = rows.iter().flatten().cloned().collect();
        let mut out = std::io::stdout().lock();
        if terminal {
            // Docker's redraw: clear the screen and go home.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{}", table(&shown))?;
        out.flush()?;
    }
    Ok(0)
}
