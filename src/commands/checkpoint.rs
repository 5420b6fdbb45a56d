//! `checkpoint`: saves a running container's processes to CRIU images.

use crate::cli::{Checkpoint, CriuFlags};
use crate::container::checkpoint::{self, CheckpointOptions};
use crate::container::criu;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

pub fn run(root: &Path, criu_bin: &Path, c: &Checkpoint) -> Result<i32> {
    if !nix::unistd::geteuid().is_root() {
        log::warn!("husk checkpoint is untested with rootless containers");
    }
    checkpoint::check_status(root, &c.id)?;
    let images = image_path(&c.criu, &std::env::current_dir().context("getwd")?);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o600)
        .create(&images)
        .map_err(|e| {
            anyhow::anyhow!("mkdir {}: {}", images.display(), crate::error::io_text(&e))
        })?;
    let parent = parent_path(&images, c.parent_path.as_deref())?;
    let page_server = c.page_server.as_deref().map(page_server).transpose()?;
    let f = &c.criu;
    let opts = CheckpointOptions {
        criu: criu_bin,
        images,
        work: f.work_path.clone(),
        parent,
        leave_running: c.leave_running,
        pre_dump: c.pre_dump,
        status_fd: c.status_fd,
        page_server,
        common: common(f)?,
    };
    checkpoint::checkpoint(root, &c.id, &opts)?;
    Ok(0)
}

use std::os::unix::fs::DirBuilderExt;

/// The CRIU settings both commands take from their shared flags.
pub fn common(f: &CriuFlags) -> Result<criu::Common> {
    Ok(criu::Common {
        tcp_established: f.tcp_established,
        ext_unix_sk: f.ext_unix_sk,
        shell_job: f.shell_job,
        file_locks: f.file_locks,
        auto_dedup: f.auto_dedup,
        lazy_pages: f.lazy_pages,
        cgroup_mode: criu::cgroup_mode(f.manage_cgroups_mode.as_deref())?,
        empty_ns: criu::empty_ns(&f.empty_ns)?,
    })
}

/// --image-path, by default `checkpoint` in the working directory (runc's default).
pub fn image_path(f: &CriuFlags, cwd: &Path) -> PathBuf {
    match &f.image_path {
        Some(p) if !p.as_os_str().is_empty() => cwd.join(p),
        _ => cwd.join("checkpoint"),
    }
}

/// --parent-path: relative to the image path, and a directory there.
fn parent_path(images: &Path, parent: Option<&Path>) -> Result<Option<PathBuf>> {
    let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(None);
    };
    if p.is_absolute() {
        bail!("--parent-path must be relative");
    }
    let real = images.join(p);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(Some(p.to_path_buf())),
        Ok(_) => bail!(
            "invalid --parent-path: stat {}: not a directory",
            real.display()
        ),
        Err(e) => Err(crate::error::Error::Io {
            ctx: format!("invalid --parent-path: stat {}", real.display()),
            err: e,
        }
        .into()),
    }
}

/// --page-server ADDRESS:PORT, split as Go's net.SplitHostPort does.
fn page_server(s: &str) -> Result<(String, i32)> {
    let usage = "Use --page-server ADDRESS:PORT to specify page server";
    let (host, port) = s.rsplit_once(':').context(usage)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']').context(usage)?,
        None if host.contains(':') => bail!(usage),
        None => host,
    };
    if host.is_empty() || port.is_empty() {
        bail!(usage);
    }
    let port = port.parse::<i32>().ok().context("Invalid port number")?;
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_servers_split_like_go() {
        assert_eq!(page_server("10.0.0.1:27").unwrap(), ("10.0.0.1".into(), 27));
        assert_eq!(page_server("[::1]:27").unwrap(), ("::1".into(), 27));
        for bad in ["x", ":27", "x:", "::1:27"] {
            assert!(page_server(bad).is_err(), "{bad}");
        }
        assert_eq!(
            page_server("x:y").unwrap_err().to_string(),
            "Invalid port number"
        );
    }
}
