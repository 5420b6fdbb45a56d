//! Rootless containers, as runc runs them. Two things, as in runc, decided separately:
//! - an unprivileged caller (euid != 0) needs a user namespace, writes its one-id maps itself
//!   (or has newuidmap/newgidmap write wider ones, see `namespaces::write_id_maps`), and keeps
//!   its state under `$XDG_RUNTIME_DIR/husk`;
//! - `--rootless` (auto: euid != 0, or inside a user namespace) lets a container without a
//!   cgroupsPath go without cgroups when they are not permitted, unless its config asks for
//!   limits: then the create fails naming the field, as runc's does.

use crate::cgroups::{oom, stats, CgroupManager, MountLayout};
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `--rootless`: Some(value), or None for auto, decided only when a command asks.
static FLAG: OnceLock<Option<bool>> = OnceLock::new();
static UNPRIVILEGED: OnceLock<bool> = OnceLock::new();

/// Whether husk was started by a user other than root (runc's RootlessEUID). Fixed at the first
/// call, which `init` makes: the container's init, a copy of us in a user namespace, answers as
/// its parent does.
pub fn unprivileged() -> bool {
    *UNPRIVILEGED.get_or_init(|| !nix::unistd::geteuid().is_root())
}

/// Takes `--rootless` (Go's boolean spellings or "auto"; auto when absent); call once, first.
pub fn init(flag: Option<&str>) -> Result<()> {
    unprivileged();
    let value = match flag.unwrap_or("auto") {
        "auto" => None,
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        v => {
            return Err(Error::msg(format!(
                "--rootless: parsing {v:?}: invalid syntax"
            )))
        }
    };
    // Set once per process; a second call (tests) keeps the first answer.
    let _ = FLAG.set(value);
    Ok(())
}

/// Whether cgroup permission errors are ignored (`--rootless`; auto: an unprivileged caller,
/// or one inside a user namespace).
pub fn cgroups_optional() -> bool {
    FLAG.get()
        .copied()
        .flatten()
        .unwrap_or_else(|| unprivileged() || in_user_namespace())
}

/// The initial user namespace maps every id onto itself; any other does not.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

/// What an unprivileged caller cannot set up: a container without a user namespace (runc's
/// check), or an id-mapped mount (only host root may id-map a host directory).
pub fn check_spec(spec: &oci_spec::runtime::Spec, plan: &crate::namespaces::Plan) -> Result<()> {
    if !unprivileged() {
        return Ok(());
    }
    if !plan.has(nix::sched::CloneFlags::CLONE_NEWUSER) {
        return Err(Error::msg(
            "linux.namespaces: rootless container requires user namespaces",
        ));
    }
    for m in spec.mounts().iter().flatten() {
        let opts = crate::init::rootfs::parse_mount_options(m.options().as_deref().unwrap_or(&[]));
        if crate::init::rootfs::is_idmapped(m, &opts) {
            return Err(Error::msg(format!(
                "mounts: invalid mount {}: id-mapped mounts need a runtime run as root",
                m.destination().display()
            )));
        }
    }
    Ok(())
}

/// `--root`'s default: `$XDG_RUNTIME_DIR/husk` for a user that is not root (or root of a user
/// namespace whose $USER is not root, as podman runs us), else /run/husk. runc's rule, and like
/// runc the directory is made 0700 with the sticky bit, so that systemd's tmpfiles cleaning of
/// the runtime dir leaves it alone.
pub fn default_root() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(xdg) if honour_xdg() => {
            let root = Path::new(&xdg).join("husk");
            if let Err(e) = make_root(&root) {
                // The command that needs it fails naming the directory.
                log::debug!("{}: {e}", root.display());
            }
            root
        }
        _ => PathBuf::from("/run/husk"),
    }
}

fn honour_xdg() -> bool {
    if unprivileged() {
        return true;
    }
    in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root")
}

fn make_root(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o1700))
}

/// The cgroup manager of a rootless container without a cgroupsPath: `cg` if its directories
/// can be made (a delegated hierarchy), else one that owns none, provided the config asks for
/// no limits. Failed, it leaves nothing behind.
pub fn cgroup_or_none(
    cg: Box<dyn CgroupManager>,
    cgroups_path: Option<&Path>,
    resources: Option<&LinuxResources>,
) -> Result<Box<dyn CgroupManager>> {
    if !cgroups_optional() || cgroups_path.is_some_and(|p| !p.as_os_str().is_empty()) {
        return Ok(cg);
    }
    let denied = match cg.create() {
        Ok(()) => return Ok(cg),
        Err(e) if permission(&e) => e,
        Err(e) => return Err(e),
    };
    // Some hierarchies (v1) may have been made before one refused: all or none.
    cg.destroy()?;
    if let Some(field) = resources.and_then(limited_field) {
        return Err(Error::msg(format!(
            "linux.resources.{field}: cannot set limits: rootless container could not join or create cgroup ({denied})"
        )));
    }
    log::debug!("rootless: running without cgroups: {denied}");
    Ok(Box::new(NoCgroup))
}

fn permission(e: &Error) -> bool {
    use nix::errno::Errno;
    let errno = match e {
        Error::Io { err, .. } => err.raw_os_error().map(Errno::from_raw),
        e => e.errno(),
    };
    matches!(errno, Some(Errno::EACCES | Errno::EPERM | Errno::EROFS))
}

/// The first resource that would write a cgroup file; devices do not (runc ignores the device
/// cgroup of a rootless container: the user namespace already keeps mknod out).
fn limited_field(r: &LinuxResources) -> Option<String> {
    let value = serde_json::to_value(r).ok()?;
    let empty = |v: &serde_json::Value| match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(o) => o.values().all(|v| v.is_null()),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    };
    value
        .as_object()?
        .iter()
        .find(|(k, v)| *k != "devices" && !empty(v))
        .map(|(k, _)| k.clone())
}

/// A container without cgroups: what needs one fails as runc's does.
pub struct NoCgroup;

const NOT_CONFIGURED: &str = "cgroups not configured for container";

impl CgroupManager for NoCgroup {
    fn create(&self) -> Result<()> {
        Ok(())
    }
    fn apply(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    fn set(&self, r: &LinuxResources) -> Result<()> {
        match limited_field(r) {
            Some(f) => Err(Error::msg(format!(
                "linux.resources.{f}: cannot set limits: {NOT_CONFIGURED}"
            ))),
            None => Ok(()),
        }
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Err(Error::msg(format!(
            "unable to get all container pids: {NOT_CONFIGURED}"
        )))
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    fn paths(&self) -> Vec<PathBuf> {
        vec![]
    }
    fn freeze(&self, _frozen: bool) -> Result<()> {
        Err(Error::msg(format!(
            "cannot toggle freezer: {NOT_CONFIGURED}"
        )))
    }
    fn stats(&self) -> Result<stats::Stats> {
        Err(Error::msg(format!("unable to get stats: {NOT_CONFIGURED}")))
    }
    fn oom_watch(&self) -> Result<oom::Watch> {
        Err(Error::msg(format!(
            "unable to watch for OOM: {NOT_CONFIGURED}"
        )))
    }
    fn mount_layout(&self) -> MountLayout {
        MountLayout::Hierarchies(vec![])
    }
    fn thaw_own(&self) -> Result<Option<PathBuf>> {
        Ok(None)
    }
    fn frozen(&self) -> crate::cgroups::Frozen {
        crate::cgroups::Frozen::No
    }
}

/// The cgroup directories a container's cgroup mount shows: its own, or for one without
/// cgroups, those it stays in (husk's), as runc's shows them.
pub fn mount_view(paths: Vec<PathBuf>, id: &str) -> Result<Vec<PathBuf>> {
    if !paths.is_empty() {
        return Ok(paths);
    }
    Ok(crate::cgroups::for_container(Some(Path::new("")), id)?.paths())
}

/// The manager of an existing container: none for one that was made without cgroups.
pub fn from_state(paths: &[PathBuf]) -> Box<dyn CgroupManager> {
    if paths.is_empty() {
        Box::new(NoCgroup)
    } else {
        crate::cgroups::from_paths(paths.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_named_and_devices_ignored() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {}
        }))
        .unwrap();
        assert_eq!(limited_field(&r), None);
        let r: LinuxResources =
            serde_json::from_value(serde_json::json!({"pids": {"limit": 10}})).unwrap();
        assert_eq!(limited_field(&r).as_deref(), Some("pids"));
    }
}
