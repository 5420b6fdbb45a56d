//! Bind sources the parent opens for the init. In a user namespace the container's root may not
//! reach a source at all (a directory of host root's with mode 0700 on the way), and an
//! id-mapped mount can only be made by host root. So, as runc does, the parent enters the init's
//! mount namespace, still with host root's credentials, opens each such source there (O_PATH),
//! or clones it into a detached id-mapped tree (open_tree(2), mount_setattr(2)), and hands the
//! fds to the init, which mounts from them. Opened in the init's namespace, the sources keep the
//! flags the kernel locked there.

use crate::error::{Context, Error, Result};
use crate::init::rootfs::{bind_source, is_bind, is_idmapped, parse_mount_options};
use crate::namespaces::{self, Plan};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxIdMapping, Mount, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where the user namespace of an id-mapped mount comes from.
#[derive(PartialEq)]
enum Mapping {
    Ids(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
    /// The container joins this user namespace: its mappings are the mount's.
    Path(PathBuf),
}

/// The id mapping of `m` and whether it applies to the whole tree (`ridmap`), or None if `m`
/// is not id-mapped. runc 1.2's rules: only bind mounts, with both uid and gid mappings; the
/// `idmap` option alone takes the container's user namespace.
fn mapping(m: &Mount, linux: &Linux, plan: &Plan) -> Result<Option<(Mapping, bool)>> {
    let opts = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
    if !is_idmapped(m, &opts) {
        return Ok(None);
    }
    let invalid = |why: &str| {
        Error::msg(format!(
            "mounts: invalid mount {}: {why}",
            m.destination().display()
        ))
    };
    if !is_bind(m, &opts) {
        return Err(invalid(
            "id-mapped mounts are only supported for bind-mounts",
        ));
    }
    let joined = plan
        .join
        .iter()
        .find(|(f, _)| *f == CloneFlags::CLONE_NEWUSER);
    let mapping = match (m.uid_mappings(), m.gid_mappings(), joined) {
        (None, None, Some((_, path))) => Mapping::Path(path.clone()),
        (None, None, None) if plan.creates(CloneFlags::CLONE_NEWUSER) => Mapping::Ids(
            linux.uid_mappings().clone().unwrap_or_default(),
            linux.gid_mappings().clone().unwrap_or_default(),
        ),
        (u, g, _) => Mapping::Ids(u.clone().unwrap_or_default(), g.clone().unwrap_or_default()),
    };
    if matches!(&mapping, Mapping::Ids(u, g) if u.is_empty() || g.is_empty()) {
        return Err(invalid(
            "id-mapped mounts must have both uid and gid mappings specified",
        ));
    }
    Ok(Some((mapping, opts.idmap == Some(true))))
}

/// runc 1.2's checks of the mounts' id mappings, before anything is made.
pub fn validate(spec: &Spec, linux: &Linux, plan: &Plan) -> Result<()> {
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        mapping(m, linux, plan)?;
    }
    Ok(())
}

/// Opens the sources [`wanted`] for `init`'s mounts, in mount order.
pub fn open(spec: &Spec, plan: &Plan, bundle: &Path, init: i32) -> Result<Vec<OwnedFd>> {
    let Some(linux) = spec.linux() else {
        return Ok(Vec::new());
    };
    let mounts: Vec<&Mount> = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| crate::init::rootfs::source_from_parent(m, plan))
        .collect();
    if mounts.is_empty() {
        return Ok(Vec::new());
    }
    // One user namespace per distinct mapping, made before we leave our mount namespace.
    let mut userns: Vec<(Mapping, OwnedFd)> = Vec::new();
    let mut idmaps = Vec::with_capacity(mounts.len());
    for m in &mounts {
        let Some((map, recursive)) = mapping(m, linux, plan)? else {
            idmaps.push(None);
            continue;
        };
        let i = match userns.iter().position(|(seen, _)| *seen == map) {
            Some(i) => i,
            None => {
                let field = format!("mounts {}", m.destination().display());
                let fd = match &map {
                    Mapping::Ids(u, g) => namespaces::user_namespace(u, g, &field)?,
                    Mapping::Path(p) => open_path(p, nix::fcntl::OFlag::O_RDONLY)
                        .with_ctx(|| format!("{field}: open {}", p.display()))?,
                };
                userns.push((map, fd));
                userns.len() - 1
            }
        };
        idmaps.push(Some((i, recursive)));
    }
    let ours = open_path(Path::new("/proc/self/ns/mnt"), nix::fcntl::OFlag::O_RDONLY)
        .ctx("open our mount namespace")?;
    let cwd =
        open_path(Path::new("."), nix::fcntl::OFlag::O_PATH).ctx("open our working directory")?;
    let theirs = open_path(
        Path::new(&format!("/proc/{init}/ns/mnt")),
        nix::fcntl::OFlag::O_RDONLY,
    )
    .ctx("open the container's mount namespace")?;
    nix::sched::setns(&theirs, CloneFlags::CLONE_NEWNS)
        .ctx("enter the container's mount namespace")?;
    let fds = mounts
        .iter()
        .zip(&idmaps)
        .map(|(m, idmap)| {
            let src = bind_source(m, bundle)?;
            let fd = match idmap {
                None => open_path(&src, nix::fcntl::OFlag::O_PATH),
                Some((i, recursive)) => {
                    let rec = parse_mount_options(m.options().as_deref().unwrap_or(&[]))
                        .flags
                        .contains(nix::mount::MsFlags::MS_REC);
                    id_mapped_tree(&src, rec, &userns[*i].1, *recursive)
                }
            };
            fd.with_ctx(|| {
                format!(
                    "mount {} to {}: open source",
                    src.display(),
                    m.destination().display()
                )
            })
        })
        .collect();
    // Back where we were; the working directory is the mount namespace's root after setns.
    nix::sched::setns(&ours, CloneFlags::CLONE_NEWNS).ctx("return to our mount namespace")?;
    nix::unistd::fchdir(&cwd).ctx("return to our working directory")?;
    fds
}

fn open_path(p: &Path, flags: nix::fcntl::OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        p,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// A detached copy of the mount tree at `src` (all of it with `rec`), id-mapped through
/// `userns` (every mount of it with `recursive`).
fn id_mapped_tree(
    src: &Path,
    rec: bool,
    userns: &OwnedFd,
    recursive: bool,
) -> nix::Result<OwnedFd> {
    let path = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
        .map_err(|_| nix::errno::Errno::EINVAL)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if rec {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: path is a valid C string; open_tree returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: a fresh fd nothing else owns.
    let tree = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut at = libc::AT_EMPTY_PATH;
    if recursive {
        at |= libc::AT_RECURSIVE;
    }
    // SAFETY: attr is a valid mount_attr of the size passed; the path is an empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(tree)
}
