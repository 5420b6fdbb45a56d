//! Image commands: load, pull, images, rmi, tag, image inspect.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::{body::Frame, header, Method};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{
    cli::{ImageInspect, Images, Load, Pull, Rmi, Tag},
    client::{esc, with_query, Client, Lines},
    config::split_ref,
    containers::inspect_objects,
    format,
    progress::Render,
};

/// Streams `input` as the request body, counting bytes on `bar`.
fn body_of(input: Box<dyn AsyncRead + Unpin + Send>, bar: ProgressBar) -> crate::client::Body {
    let chunks = futures_util::stream::unfold((input, bar), |(mut input, bar)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match input.read(&mut buf).await {
            Ok(0) => {
                bar.finish();
                None
            }
            Ok(n) => {
                buf.truncate(n);
                bar.inc(n as u64);
                Some((Ok(Frame::data(Bytes::from(buf))), (input, bar)))
            }
            Err(e) => Some((Err(e), (input, bar))),
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

pub async fn load(c: &Client, l: Load) -> anyhow::Result<i32> {
    let (input, len): (Box<dyn AsyncRead + Unpin + Send>, u64) = match &l.input {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("--input: {path}"))?;
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            (Box::new(f), len)
        }
        None if std::io::stdin().is_terminal() => {
            bail!("requested load from stdin, but stdin is empty")
        }
        None => (Box::new(tokio::io::stdin()), 0),
    };
    let terminal = std::io::stdout().is_terminal();
    // The upload's own progress: the daemon reports only once the archive is in.
    let bar = if terminal && !l.quiet {
        let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
        b.set_style(
            ProgressStyle::with_template("Sending archive {wide_bar} {bytes}/{total_bytes}")
                .expect("a valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let quiet = l.quiet || !terminal;
    let url = with_query("/images/load", &[("quiet", if quiet { "1" } else { "0" })]);
    let resp = c
        .upload(&url, "application/x-tar", body_of(input, bar))
        .await?;
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        Render::new(false).stream(Lines::new(resp)).await?;
    } else {
        let body = resp.into_body().collect().await?.to_bytes();
        std::io::stdout().write_all(&body)?;
    }
    Ok(0)
}

/// Pulls `image`, rendering the daemon's progress (on stderr when `to_stderr`, as `run` does).
pub async fn pull(c: &Client, image: &str, quiet: bool, to_stderr: bool) -> anyhow::Result<()> {
    let (name, tag) = split_ref(image);
    let url = with_query("/images/create", &[("fromImage", &name), ("tag", &tag)]);
    let resp = c.request(Method::POST, &url, None).await?;
    let lines = Lines::new(resp);
    if quiet {
        Render::quiet().stream(lines).await
    } else {
        Render::new(to_stderr).stream(lines).await
    }
}

pub async fn pull_cmd(c: &Client, p: Pull) -> anyhow::Result<i32> {
    pull(c, &p.image, p.quiet, false).await?;
    let (name, tag) = split_ref(&p.image);
    let sep = if tag.contains(':') { '@' } else { ':' };
    println!("{name}{sep}{tag}");
    Ok(0)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
    created: i64,
    size: i64,
}

pub async fn images(c: &Client, i: Images) -> anyhow::Result<i32> {
    let url = with_query("/images/json", &[("all", if i.all { "1" } else { "" })]);
    let mut list: Vec<Summary> = c.get(&url).await?;
    list.sort_by_key(|s| std::cmp::Reverse(s.created));
    let id = |s: &Summary| {
        if i.no_trunc {
            s.id.clone()
        } else {
            format::short_id(&s.id)
        }
    };
    let mut rows = vec![vec![
        "REPOSITORY".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    let mut ids = Vec::new();
    for s in &list {
        let mut tags: Vec<(String, String)> = s
            .repo_tags
            .iter()
            .flatten()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| split_ref(t))
            .collect();
        if tags.is_empty() {
            // An untagged image shows under the repository of its digest, if it has one.
            let repo = s
                .repo_digests
                .iter()
                .flatten()
                .find_map(|d| d.split_once('@').map(|(r, _)| r.to_string()))
                .unwrap_or_else(|| "<none>".into());
            tags.push((repo, "<none>".into()));
        }
        for (repo, tag) in tags {
            if let Some(r) = &i.reference {
                let (want_repo, want_tag) = split_ref(r);
                let tag_given = r.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/'));
                if repo != want_repo || (tag_given && tag != want_tag) {
                    continue;
                }
            }
            if !ids.contains(&s.id) {
                ids.push(s.id.clone());
            }
            rows.push(vec![
                repo,
                tag,
                id(s),
                format::ago(s.created),
                format::human_size(s.size as f64),
            ]);
        }
    }
    let mut out = std::io::stdout().lock();
    if i.quiet {
        for full in ids {
            let s = list.iter().find(|s| s.id == full).expect("listed");
            writeln!(out, "{}", id(s))?;
        }
    } else {
        write!(out, "{}", format::table(&rows))?;
    }
    Ok(0)
}

pub async fn rmi(c: &Client, r: Rmi) -> anyhow::Result<i32> {
    let mut failed = false;
    for image in &r.images {
        let url = with_query(
            &format!("/images/{}", esc(image)),
            &[
                ("force", if r.force { "1" } else { "" }),
                ("noprune", if r.no_prune { "1" } else { "" }),
            ],
        );
        match c
            .json::<Vec<serde_json::Value>>(Method::DELETE, &url, None)
            .await
        {
            Ok(items) => {
                for item in items {
                    for key in ["Untagged", "Deleted"] {
                        if let Some(v) = item.get(key).and_then(|v| v.as_str()) {
                            println!("{key}: {v}");
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("huskctl: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub async fn tag(c: &Client, t: Tag) -> anyhow::Result<i32> {
    let (repo, tag) = split_ref(&t.target);
    let url = with_query(
        &format!("/images/{}/tag", esc(&t.source)),
        &[("repo", &repo), ("tag", &tag)],
    );
    c.post(&url, None).await?;
    Ok(0)
}

pub async fn inspect(c: &Client, i: ImageInspect) -> anyhow::Result<i32> {
    inspect_objects(c, &i.names, i.format.as_deref(), &["/images/{}/json"]).await
}
