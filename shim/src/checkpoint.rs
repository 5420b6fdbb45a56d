//! Checkpoint and restore as the Go runc shim asks the runtime for them: `checkpoint` with
//! runc's CheckpointOptions, and a Create given a checkpoint, which becomes a `restore` at
//! Start.
//!
//! CRIU's work directory is where the Go shim puts it: the options' (CheckpointOptions'
//! WorkPath, runc options' CriuWorkPath) or else below the bundle's `work`, the directory
//! containerd keeps for the container under its root. runc options' CriuImagePath is not the
//! shim's: containerd's task service turns it into the Create's checkpoint path.

use std::path::{Path, PathBuf};

use containerd_shim::protos::{
    protobuf::{well_known_types::any::Any, Message},
    shim::oci::CheckpointOptions,
};

const CHECKPOINT_OPTIONS: &str = "containerd.runc.v1.CheckpointOptions";

/// What a Create with a checkpoint leaves for Start.
pub struct Restore {
    pub image: String,
    pub parent: String,
    /// runc options' CriuWorkPath; when empty, the bundle's `work`.
    pub work: String,
    pub no_pivot: bool,
}

impl Restore {
    /// `restore` arguments before the container id (and the console socket, if any).
    pub fn args(&self, bundle: &Path, pid_file: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "restore".into(),
            "--detach".into(),
            // The shim is the subreaper.
            "--no-subreaper".into(),
            "--image-path".into(),
            self.image.clone(),
            "--pid-file".into(),
            pid_file.display().to_string(),
            "--bundle".into(),
            bundle.display().to_string(),
        ];
        let work = if self.work.is_empty() {
            bundle.join("work").display().to_string()
        } else {
            self.work.clone()
        };
        args.extend(["--work-path".into(), work]);
        if !self.parent.is_empty() {
            args.extend(["--parent-path".into(), self.parent.clone()]);
        }
        if self.no_pivot {
            args.push("--no-pivot".into());
        }
        args
    }
}

/// The runtime's `checkpoint` command line for container `id`, and the CRIU work directory
/// the shim made up (to be removed afterwards) when the options name none.
pub struct Checkpoint {
    pub args: Vec<String>,
    pub work: PathBuf,
    pub temporary_work: bool,
}

/// containerd names the image directory (`path`); the options, when sent (ctr sends them for
/// runtimes named io.containerd.runc.*), are runc's.
pub fn checkpoint(
    id: &str,
    bundle: &Path,
    path: &str,
    options: Option<&Any>,
) -> Result<Checkpoint, String> {
    let o = match options {
        None => CheckpointOptions::default(),
        Some(any) if any.type_url.is_empty() && any.value.is_empty() => {
            CheckpointOptions::default()
        }
        Some(any) if any.type_url.ends_with(CHECKPOINT_OPTIONS) => {
            CheckpointOptions::parse_from_bytes(&any.value)
                .map_err(|e| format!("checkpoint options: {e}"))?
        }
        Some(any) => {
            return Err(format!(
                "unknown checkpoint options type {:?}",
                any.type_url
            ))
        }
    };
    let image = if path.is_empty() { &o.image_path } else { path };
    if image.is_empty() {
        return Err("checkpoint: no image path".into());
    }
    let temporary_work = o.work_path.is_empty();
    let work = if temporary_work {
        bundle.join("work").join("criu-work")
    } else {
        PathBuf::from(&o.work_path)
    };
    let mut args: Vec<String> = vec![
        "checkpoint".into(),
        "--image-path".into(),
        image.into(),
        "--work-path".into(),
        work.display().to_string(),
    ];
    for (on, flag) in [
        (!o.exit, "--leave-running"),
        (o.open_tcp, "--tcp-established"),
        (o.external_unix_sockets, "--ext-unix-sk"),
        (o.terminal, "--shell-job"),
        (o.file_locks, "--file-locks"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    for ns in &o.empty_namespaces {
        args.extend(["--empty-ns".into(), ns.clone()]);
    }
    if !o.cgroups_mode.is_empty() {
        args.extend(["--manage-cgroups-mode".into(), o.cgroups_mode.clone()]);
    }
    args.push(id.into());
    Ok(Checkpoint {
        args,
        work,
        temporary_work,
    })
}

impl Checkpoint {
    /// After a failed checkpoint: CRIU's log, kept in the bundle as the Go shim keeps it, and
    /// the error naming it.
    pub fn failed(&self, bundle: &Path, e: String) -> String {
        let log = bundle.join("criu-dump.log");
        if let Err(c) = std::fs::copy(self.work.join("dump.log"), &log) {
            log::warn!("keep CRIU's dump.log: {c}");
        }
        format!("{e} path= {}", log.display())
    }
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        if self.temporary_work {
            // Absent when the runtime failed before CRIU ran.
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(o: &CheckpointOptions) -> Any {
        Any {
            type_url: format!("type.googleapis.com/{CHECKPOINT_OPTIONS}"),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn checkpoint_arguments_follow_the_options() {
        let c = checkpoint("c1", Path::new("/b"), "/img", None).unwrap();
        assert_eq!(
            c.args.join(" "),
            "checkpoint --image-path /img --work-path /b/work/criu-work --leave-running c1"
        );
        let o = CheckpointOptions {
            exit: true,
            open_tcp: true,
            terminal: true,
            empty_namespaces: vec!["network".into()],
            cgroups_mode: "soft".into(),
            work_path: "/w".into(),
            image_path: "/ignored".into(),
            ..Default::default()
        };
        let c = checkpoint("c1", Path::new("/b"), "/img", Some(&any(&o))).unwrap();
        assert_eq!(
            c.args.join(" "),
            "checkpoint --image-path /img --work-path /w --tcp-established --shell-job \
             --empty-ns network --manage-cgroups-mode soft c1"
        );
        assert!(!c.temporary_work);
        let bad = Any {
            type_url: "x.Other".into(),
            ..Default::default()
        };
        assert!(checkpoint("c1", Path::new("/b"), "/img", Some(&bad)).is_err());
        assert!(checkpoint("c1", Path::new("/b"), "", None).is_err());
    }

    #[test]
    fn restore_works_in_criu_work_path_or_the_bundles_work() {
        let mut r = Restore {
            image: "/img".into(),
            parent: String::new(),
            work: String::new(),
            no_pivot: false,
        };
        let args = |r: &Restore| r.args(Path::new("/b"), Path::new("/b/init.pid")).join(" ");
        assert_eq!(
            args(&r),
            "restore --detach --no-subreaper --image-path /img --pid-file /b/init.pid \
             --bundle /b --work-path /b/work"
        );
        r.work = "/w".into();
        r.parent = "../p".into();
        r.no_pivot = true;
        assert_eq!(
            args(&r),
            "restore --detach --no-subreaper --image-path /img --pid-file /b/init.pid \
             --bundle /b --work-path /w --parent-path ../p --no-pivot"
        );
    }
}
