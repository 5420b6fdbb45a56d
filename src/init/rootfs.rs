//! The container's root filesystem, set up by the init in its new mount namespace: mounts,
//! device nodes, pivot_root, then masked and read-only paths.
//!
//! Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT) from a handle on the
//! rootfs, and mounts go onto /proc/self/fd/N of the handle so a symlink swapped in by the
//! container cannot redirect them to the host (CVE-2021-30465 and relatives).

use crate::cgroups::MountLayout;
use crate::error::{Context, Error, Result};
use crate::security::lsm;
use crate::util::path::below_root;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, AccessFlags, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A handle on the rootfs directory through which every path inside is resolved.
pub struct Root {
    pub fd: OwnedFd,
    pub path: PathBuf,
    /// Mounts (destination, flags) to make read-only once the rootfs is complete.
    pub readonly_later: Vec<(PathBuf, MsFlags)>,
}

fn fd_path(fd: BorrowedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open rootfs {}", path.display()))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            readonly_later: Vec::new(),
        })
    }

    /// Opens `path` inside the root (O_PATH), symlinks resolved as if the root were "/".
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd> {
        let rel = below_root(path);
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        openat2(self.fd.as_fd(), &rel, how(OFlag::O_PATH))
            .with_ctx(|| format!("resolve {} in rootfs", path.display()))
    }

    /// Opens `path` inside the root, making missing directories (and, with `file`, the last
    /// component as an empty file) on the way.
    pub fn mkdir_all(&self, path: &Path, file: bool) -> Result<OwnedFd> {
        self.mkdir_all_depth(path, file, 0)
    }

    fn mkdir_all_depth(&self, path: &Path, file: bool, depth: u32) -> Result<OwnedFd> {
        // Most destinations exist already: one lookup instead of one per component.
        match self.resolve(path) {
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {}
            r => return r,
        }
        let rel = below_root(path);
        let comps: Vec<_> = rel.iter().collect();
        let mut cur = openat2(
            self.fd.as_fd(),
            ".",
            how(OFlag::O_PATH | OFlag::O_DIRECTORY),
        )
        .ctx("open rootfs")?;
        let mut prefix = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            prefix.push(c);
            let last = i + 1 == comps.len();
            match openat2(self.fd.as_fd(), &prefix, how(OFlag::O_PATH)) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => {
                    return Err(e).with_ctx(|| format!("resolve {} in rootfs", prefix.display()))
                }
            }
            // Create in the directory we hold, by its single name: nothing to follow.
            let r = if last && file {
                openat2(
                    cur.as_fd(),
                    *c,
                    OpenHow::new()
                        .flags(
                            OFlag::O_CREAT
                                | OFlag::O_EXCL
                                | OFlag::O_WRONLY
                                | OFlag::O_CLOEXEC
                                | OFlag::O_NOFOLLOW,
                        )
                        .mode(Mode::from_bits_truncate(0o644))
                        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS),
                )
                .map(drop)
            } else {
                nix::sys::stat::mkdirat(cur.as_fd(), *c, Mode::from_bits_truncate(0o755))
            };
            match r {
                Ok(()) => {}
                Err(nix::errno::Errno::EEXIST) => {
                    // A dangling symlink: as runc does, make its target, inside the root.
                    if let Ok(target) = nix::fcntl::readlinkat(cur.as_fd(), *c) {
                        if depth >= 40 {
                            return Err(Error::msg(format!(
                                "resolve {} in rootfs: too many levels of symbolic links",
                                prefix.display()
                            )));
                        }
                        let base = prefix.parent().unwrap_or(Path::new("/"));
                        let target = Path::new("/").join(base).join(target);
                        drop(self.mkdir_all_depth(&target, last && file, depth + 1)?);
                    }
                }
                Err(e) => {
                    return Err(e).with_ctx(|| format!("create {} in rootfs", prefix.display()))
                }
            }
            cur = openat2(self.fd.as_fd(), &prefix, how(OFlag::O_PATH))
                .with_ctx(|| format!("resolve {} in rootfs", prefix.display()))?;
        }
        Ok(cur)
    }
}

/// How a mount's options split into flags, propagation and data, per runc's option table.
#[derive(Debug, PartialEq)]
pub struct MountOpts {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    /// mount_setattr(2) attributes of the `r*` options, applied to the whole tree of a bind.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)).
    pub idmap: Option<bool>,
    /// `tmpcopyup`: a tmpfs starts with a copy of the directory it covers.
    pub copyup: bool,
}

impl Default for MountOpts {
    fn default() -> Self {
        MountOpts {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: vec![],
            data: vec![],
            rec_set: 0,
            rec_clr: 0,
            idmap: None,
            copyup: false,
        }
    }
}

/// runc 1.2's recursive options: (clears, mount_setattr attribute).
fn recursive_attr(name: &str) -> Option<(bool, u64)> {
    use libc::{
        MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
        MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME,
        MOUNT_ATTR_STRICTATIME,
    };
    Some(match name {
        "rro" => (false, MOUNT_ATTR_RDONLY),
        "rrw" => (true, MOUNT_ATTR_RDONLY),
        "rnosuid" => (false, MOUNT_ATTR_NOSUID),
        "rsuid" => (true, MOUNT_ATTR_NOSUID),
        "rnodev" => (false, MOUNT_ATTR_NODEV),
        "rdev" => (true, MOUNT_ATTR_NODEV),
        "rnoexec" => (false, MOUNT_ATTR_NOEXEC),
        "rexec" => (true, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (true, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (false, MOUNT_ATTR_RELATIME),
        "rnorelatime" => (true, MOUNT_ATTR_RELATIME),
        "rnoatime" => (false, MOUNT_ATTR_NOATIME),
        "ratime" => (true, MOUNT_ATTR_NOATIME),
        "rstrictatime" => (false, MOUNT_ATTR_STRICTATIME),
        "rnostrictatime" => (true, MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

pub fn parse_mount_options(options: &[String]) -> MountOpts {
    let mut o = MountOpts::default();
    for opt in options {
        if let Some((clears, attr)) = recursive_attr(opt) {
            if clears {
                o.rec_clr |= attr;
            } else {
                o.rec_set |= attr;
                // An access-time mode replaces the old one: mount_setattr(2) wants the whole
                // atime field cleared with it.
                if attr & libc::MOUNT_ATTR__ATIME == attr {
                    o.rec_clr |= libc::MOUNT_ATTR__ATIME;
                }
            }
            continue;
        }
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "nosymfollow" => (NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), NOSYMFOLLOW),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation
                    .push(propagation_flag(opt).unwrap_or(MsFlags::MS_PRIVATE));
                continue;
            }
            "idmap" | "ridmap" => {
                o.idmap = Some(opt == "ridmap");
                continue;
            }
            "tmpcopyup" => {
                o.copyup = true;
                continue;
            }
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        // difference(), not `& !`: the complement would drop flags nix does not name.
        o.flags = o.flags.union(set).difference(clear);
        o.clear = o.clear.union(clear).difference(set);
    }
    o
}

pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

const NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

pub fn is_bind(m: &Mount, o: &MountOpts) -> bool {
    m.typ().as_deref() == Some("bind") || o.flags.contains(MsFlags::MS_BIND)
}

/// Everything the rootfs setup needs from the spec, worked out before the clone.
pub struct RootfsPlan<'a> {
    pub mounts: &'a [Mount],
    pub bundle: &'a Path,
    pub propagation: MsFlags,
    /// The container's cgroup directories on the host, for cgroup mounts without a cgroupns.
    pub cgroup_paths: &'a [PathBuf],
    pub cgroupns: bool,
    pub userns: bool,
    pub devices: &'a [LinuxDevice],
    /// linux.mountLabel, for the mounts runc labels.
    pub mount_label: Option<&'a str>,
    /// Per mount, the source the parent opened for us (see container::mount_sources).
    pub sources: &'a [Option<OwnedFd>],
}

/// Makes the rootfs a mount point of its own with the requested propagation, then performs the
/// spec's mounts and creates device nodes. Runs in the container's mount namespace.
pub fn prepare(root: &Path, plan: &RootfsPlan) -> Result<Root> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        plan.propagation,
        None::<&str>,
    )
    .ctx("set propagation of /")?;
    if plan.propagation.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a new root that is shared; bound from a private parent, it is not.
        let parent = parent_mount(root)?;
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .with_ctx(|| format!("make {} private", parent.display()))?;
    }
    mount(
        Some(root),
        root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind rootfs {}", root.display()))?;
    let mut root = Root::open(root)?;
    let mut dev_from_host = false;
    for (i, m) in plan.mounts.iter().enumerate() {
        if m.destination() == Path::new("/dev")
            && is_bind(
                m,
                &parse_mount_options(m.options().as_deref().unwrap_or(&[])),
            )
        {
            dev_from_host = true;
        }
        let source = plan.sources.get(i).and_then(Option::as_ref);
        mount_one(&mut root, m, source, plan).with_ctx(|| {
            format!(
                "mount {} to {}",
                m.source().as_deref().unwrap_or(Path::new("none")).display(),
                m.destination().display()
            )
        })?;
    }
    if !dev_from_host {
        create_devices(&root, plan)?;
    }
    Ok(root)
}

/// The mount point of the mount that holds `path`: the longest mount point above it.
fn parent_mount(path: &Path) -> Result<PathBuf> {
    crate::util::mountinfo::read()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
        .ok_or_else(|| Error::msg(format!("no mount holds {}", path.display())))
}

/// The source of a bind mount; relative to the bundle unless absolute.
pub fn bind_source(m: &Mount, bundle: &Path) -> Result<PathBuf> {
    let src = m
        .source()
        .as_deref()
        .ok_or_else(|| Error::msg("bind mount without source"))?;
    Ok(if src.is_absolute() {
        src.to_path_buf()
    } else {
        bundle.join(src)
    })
}

/// `source` is what the parent opened for this mount: an O_PATH handle, or for an id-mapped
/// mount a detached mount tree to attach.
fn mount_one(
    root: &mut Root,
    m: &Mount,
    source: Option<&OwnedFd>,
    plan: &RootfsPlan,
) -> Result<()> {
    let mut opts = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if !dest.is_absolute() {
        log::debug!(
            "mount destination {} is relative; taken from /",
            dest.display()
        );
    }
    let bind = is_bind(m, &opts);
    if opts.copyup && (typ != "tmpfs" || bind) {
        // runc ignores it there without a word.
        log::warn!(
            "mount {}: tmpcopyup applies to tmpfs only, ignored",
            dest.display()
        );
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, dest, &opts, plan);
    }
    // runc labels neither procfs nor sysfs (the kernel refuses) nor mqueue (it sets the file's
    // label instead, which without SELinux is nothing), nor binds (their data is ignored).
    let label = plan
        .mount_label
        .filter(|_| !matches!(typ, "proc" | "sysfs" | "mqueue"));
    // As runc: a tmpfs, and /dev, stay writable until the rootfs is complete (a mount inside
    // them, the device nodes, /dev/console), and are made read-only at the end.
    if opts.flags.contains(MsFlags::MS_RDONLY)
        && ((typ == "tmpfs" && !bind) || below_root(dest) == Path::new("dev"))
    {
        opts.flags.remove(MsFlags::MS_RDONLY);
        let flags = opts
            .flags
            .difference(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        root.readonly_later
            .push((dest.to_path_buf(), flags | MsFlags::MS_RDONLY));
    }
    if bind {
        let src = bind_source(m, plan.bundle)?;
        let (st, fs) = match source {
            Some(fd) => (fstat(fd), nix::sys::statfs::fstatfs(fd)),
            None => (nix::sys::stat::stat(&src), nix::sys::statfs::statfs(&src)),
        };
        let st = st.with_ctx(|| format!("stat {}", src.display()))?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        let target = root.mkdir_all(dest, !is_dir)?;
        let procfs = fs.is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        check_proc_mount(root, target.as_fd(), procfs)?;
        match source {
            Some(tree) if is_idmapped(m, &opts) => move_mount(tree.as_fd(), target.as_fd())?,
            _ => {
                let from = source.map_or_else(|| src.clone(), |fd| fd_path(fd.as_fd()).into());
                mount(
                    Some(&from),
                    fd_path(target.as_fd()).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC),
                    None::<&str>,
                )
                .ctx("bind mount")?;
            }
        }
        let set = opts
            .flags
            .difference(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !set.is_empty() || !opts.clear.is_empty() {
            // Reopen: the handle we mounted onto is now covered by the new mount.
            remount_bind(root.resolve(dest)?.as_fd(), set, opts.clear)?;
        }
    } else {
        let mut data = opts.data.join(",");
        let mut covered = None;
        let target = if typ == "tmpfs" {
            // runc 1.2: a tmpfs takes the mode of the directory it covers.
            match root.resolve(dest) {
                Ok(fd) => {
                    let st = fstat(fd.as_fd()).ctx("stat mount point")?;
                    // Before the options, so that a mode= of theirs wins.
                    let mode = st.st_mode & 0o7777;
                    data = match data.as_str() {
                        "" => format!("mode={mode:04o}"),
                        d => format!("mode={mode:04o},{d}"),
                    };
                    if opts.copyup && is_dir(st.st_mode) {
                        // Taken before the tmpfs covers the directory: still reaches it after
                        // (copy_up opens "." from it, which crosses no mount).
                        covered = Some(fd.try_clone().ctx("dup mount point")?);
                    }
                    fd
                }
                Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {
                    root.mkdir_all(dest, false)?
                }
                Err(e) => return Err(e),
            }
        } else {
            if typ == "proc" || typ == "sysfs" {
                ordinary_directory(root, dest, typ)?;
            }
            root.mkdir_all(dest, false)?
        };
        check_proc_mount(root, target.as_fd(), typ == "proc")?;
        let src = m.source().as_deref().unwrap_or(Path::new(typ));
        let flags = opts.flags.difference(MsFlags::MS_REMOUNT);
        let data = lsm::label_mount_data(&data, label);
        mount(
            Some(src),
            fd_path(target.as_fd()).as_str(),
            Some(typ),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .with_ctx(|| match label {
            // The label is what a kernel without SELinux refuses: show it.
            Some(_) if !data.is_empty() => format!("mount {typ} with data {data}"),
            _ => format!("mount {typ}"),
        })?;
        if let Some(from) = covered {
            copy_up(from.as_fd(), root.resolve(dest)?.as_fd(), dest, 0).ctx("tmpcopyup")?;
        }
    }
    for p in &opts.propagation {
        remount(root.resolve(dest)?.as_fd(), *p).ctx("set propagation")?;
    }
    if bind && (opts.rec_set | opts.rec_clr) != 0 {
        set_recursive(root.resolve(dest)?.as_fd(), opts.rec_set, opts.rec_clr)?;
    }
    Ok(())
}

fn is_dir(mode: libc::mode_t) -> bool {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// How deep `copy_up` goes: two descriptors held per level.
const COPY_UP_DEPTH: u32 = 128;

/// Copies what directory `src` holds into directory `dst` (O_PATH handles do), as runc's
/// tmpcopyup does: owners kept; a file's whole mode kept; a directory made with its mode, so
/// that, as with runc's mkdir, the umask applies and set-id bits go; times and hard links not
/// kept. Every name is taken from the directory handle above it and never followed: symlinks
/// are copied as symlinks, whatever they point at. `at` names `src` in errors.
fn copy_up(src: BorrowedFd, dst: BorrowedFd, at: &Path, depth: u32) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let names = nix::dir::Dir::openat(
        src,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .and_then(|mut d| {
        d.iter()
            .map(|e| e.map(|e| e.file_name().to_owned()))
            .collect::<nix::Result<Vec<_>>>()
    })
    .with_ctx(|| format!("read {}", at.display()))?;
    for name in names
        .iter()
        .filter(|n| !matches!(n.to_bytes(), b"." | b".."))
    {
        let path = at.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let sub = copy_entry(src, dst, name).with_ctx(|| format!("copy {}", path.display()))?;
        if let Some((from, to)) = sub {
            if depth >= COPY_UP_DEPTH {
                return Err(Error::msg(format!(
                    "copy {}: more than {COPY_UP_DEPTH} levels of directories",
                    path.display()
                )));
            }
            copy_up(from.as_fd(), to.as_fd(), &path, depth + 1)?;
        }
    }
    Ok(())
}

/// Copies one entry of `copy_up`; for a directory, returns handles on it and on its copy.
fn copy_entry(
    src: BorrowedFd,
    dst: BorrowedFd,
    name: &std::ffi::CStr,
) -> nix::Result<Option<(OwnedFd, OwnedFd)>> {
    use nix::fcntl::{openat, readlinkat, AtFlags};
    use nix::sys::stat::{fchmod, fchmodat, fstatat, mkdirat, FchmodatFlags};
    use nix::unistd::{fchown, symlinkat};
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    let chown = || fchownat(dst, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW);
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(dst, name, perm)?;
            chown()?;
            let open = |at| {
                openat(
                    at,
                    name,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | nofollow,
                    Mode::empty(),
                )
            };
            return Ok(Some((open(src)?, open(dst)?)));
        }
        SFlag::S_IFREG => {
            let from = openat(src, name, OFlag::O_RDONLY | nofollow, Mode::empty())?;
            let to = openat(
                dst,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow,
                Mode::S_IRUSR | Mode::S_IWUSR,
            )?;
            while nix::sys::sendfile::sendfile(&to, &from, None, 1 << 30)? > 0 {}
            // Owner first: a chown clears the set-id bits.
            fchown(&to, uid, gid)?;
            fchmod(&to, perm)?;
        }
        SFlag::S_IFLNK => {
            symlinkat(readlinkat(src, name)?.as_os_str(), dst, name)?;
            chown()?;
        }
        // Fifos, sockets, devices: runc 1.1.5 fails on them; a copy of the node is what the
        // directory held.
        _ => {
            mknodat(dst, name, kind, perm, st.st_rdev)?;
            chown()?;
            fchmodat(dst, name, perm, FchmodatFlags::NoFollowSymlink)?;
        }
    }
    Ok(None)
}

/// Whether the parent opens the source of `m`; the init asks the same to know what it gets (container::mount_sources opens them).
/// An unprivileged parent cannot enter the init's mount namespace, nor reach more than the
/// init can: the init opens its sources itself, as runc 1.1's does.
pub fn source_from_parent(m: &Mount, plan: &crate::namespaces::Plan) -> bool {
    if crate::rootless::unprivileged() {
        return false;
    }
    let opts = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
    is_bind(m, &opts) && (plan.has(nix::sched::CloneFlags::CLONE_NEWUSER) || is_idmapped(m, &opts))
}

/// An id-mapped mount: mappings of its own, or the `idmap`/`ridmap` option.
pub fn is_idmapped(m: &Mount, opts: &MountOpts) -> bool {
    m.uid_mappings().is_some() || m.gid_mappings().is_some() || opts.idmap.is_some()
}

/// runc's rule for proc and sysfs: the mount point, if it exists, is a directory of the rootfs
/// itself and not a symlink, which would take the mount (and the masks over it) elsewhere.
fn ordinary_directory(root: &Root, dest: &Path, typ: &str) -> Result<()> {
    let rel: PathBuf = below_root(dest);
    match openat2(
        root.fd.as_fd(),
        &rel,
        how(OFlag::O_PATH | OFlag::O_NOFOLLOW),
    ) {
        Ok(fd) => {
            let st = fstat(fd.as_fd()).ctx("stat mount point")?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                return Err(Error::msg(format!(
                    "filesystem {typ:?} must be mounted on ordinary directory"
                )));
            }
            Ok(())
        }
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).with_ctx(|| format!("resolve {} in rootfs", dest.display())),
    }
}

/// Attaches a detached mount tree (open_tree(2)) onto `target`.
fn move_mount(tree: BorrowedFd, target: BorrowedFd) -> Result<()> {
    // SAFETY: both fds are open for the duration of the call; the paths are empty C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last()).ctx("move_mount");
    }
    Ok(())
}

/// mount_setattr(2) on the mount at `fd` and every mount below it.
fn set_recursive(fd: BorrowedFd, set: u64, clr: u64) -> Result<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: attr is a valid mount_attr of the size passed; the path is an empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last()).ctx("mount_setattr (recursive options)");
    }
    Ok(())
}

/// runc's rule: nothing may be mounted inside the container's /proc but a procfs on /proc
/// itself and the files lxcfs emulates; anything else could redirect what the runtime and the
/// kernel interfaces the container relies on write to (CVE-2025-52881).
fn check_proc_mount(root: &Root, target: BorrowedFd, procfs: bool) -> Result<()> {
    const LXCFS: &[&str] = &[
        "cpuinfo",
        "diskstats",
        "meminfo",
        "stat",
        "swaps",
        "uptime",
        "loadavg",
        "slabinfo",
        "net/dev",
        "sys/kernel/ns_last_pid",
    ];
    let real = std::fs::read_link(fd_path(target)).ctx("readlink mount target")?;
    let Ok(inside) = real.strip_prefix(root.path.join("proc")) else {
        return Ok(());
    };
    if inside.as_os_str().is_empty() {
        return if procfs {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "{:?} cannot be mounted because it is not of type proc",
                real
            )))
        };
    }
    if LXCFS.iter().any(|f| inside == Path::new(f)) {
        return Ok(());
    }
    Err(Error::msg(format!(
        "{real:?} cannot be mounted because it is inside /proc"
    )))
}

/// Flags that the kernel locks on the mounts a less privileged user namespace inherits.
const ATIME: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME)
    .union(MsFlags::MS_NODIRATIME);
const LOCKABLE: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(ATIME);

/// The flags of the mount at `fd`, as mount(2) flags.
fn mount_flags(fd: BorrowedFd) -> Result<MsFlags> {
    use nix::sys::statvfs::FsFlags;
    let st = nix::sys::statvfs::fstatvfs(fd).ctx("statvfs")?;
    let mut flags = MsFlags::empty();
    for (f, m) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(f) {
            flags |= m;
        }
    }
    // statvfs has no strictatime: it is the mode when neither of the others is set.
    if !flags.intersects(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME) {
        flags |= MsFlags::MS_STRICTATIME;
    }
    Ok(flags)
}

/// runc 1.2's remount of a bind: exactly the flags asked for (mount(8)'s `--bind -o`). When the
/// kernel refuses because the source's flags are locked (a user namespace), those are kept,
/// unless the request would clear one of them or asks for another access-time mode: then the
/// mount cannot be what was asked for, and fails.
fn remount_bind(fd: BorrowedFd, set: MsFlags, clear: MsFlags) -> Result<()> {
    let flags = set | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let refused = match remount(fd, flags) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let locked = mount_flags(fd)? & LOCKABLE;
    let atime = set & ATIME;
    if locked.intersects(clear) || (!atime.is_empty() && atime != locked & ATIME) {
        return Err(refused).ctx("remount");
    }
    remount(fd, flags | locked).ctx("remount")
}

/// A bind remount must keep the flags the kernel locked on the source mount (nosuid, nodev,
/// noexec, atime), or it fails with EPERM inside a user namespace.
fn remount_keep_locked(fd: BorrowedFd, flags: MsFlags) -> Result<()> {
    // Read-only is the caller's to choose; strictatime is only inferred from statvfs.
    let keep = mount_flags(fd)? & LOCKABLE.difference(MsFlags::MS_RDONLY | MsFlags::MS_STRICTATIME);
    remount(fd, flags | keep | MsFlags::MS_REMOUNT).ctx("remount")
}

/// mount(2) on the mount at `fd` with only `flags`: a remount or a change of propagation.
fn remount(fd: BorrowedFd, flags: MsFlags) -> nix::Result<()> {
    mount(
        None::<&str>,
        fd_path(fd).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )
}

/// cgroup v1: a tmpfs with one directory per hierarchy, each showing the container's own
/// cgroup (a fresh cgroup mount inside a cgroup namespace, a bind of it otherwise).
/// cgroup v2: the unified hierarchy, likewise.
fn mount_cgroup(root: &Root, dest: &Path, opts: &MountOpts, plan: &RootfsPlan) -> Result<()> {
    let flags = opts.flags
        & !(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let target = root.mkdir_all(dest, false)?;
    let hierarchies = match crate::cgroups::from_paths(plan.cgroup_paths.to_vec()).mount_layout() {
        MountLayout::Hierarchies(h) => h,
        MountLayout::Unified(p) => {
            let t = fd_path(target.as_fd());
            if plan.cgroupns {
                mount(
                    Some("cgroup2"),
                    t.as_str(),
                    Some("cgroup2"),
                    opts.flags,
                    None::<&str>,
                )
                .ctx("mount cgroup2")?;
            } else {
                mount(
                    Some(&p),
                    t.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .ctx("bind cgroup")?;
                if ro {
                    remount_keep_locked(
                        root.resolve(dest)?.as_fd(),
                        MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                    )?;
                }
            }
            return Ok(());
        }
    };
    let data = lsm::label_mount_data("mode=755", plan.mount_label);
    mount(
        Some("tmpfs"),
        fd_path(target.as_fd()).as_str(),
        Some("tmpfs"),
        flags,
        Some(data.as_str()),
    )
    .with_ctx(|| format!("mount tmpfs for cgroups with data {data}"))?;
    for (name, dir) in &hierarchies {
        let name = name.as_path();
        let sub = dest.join(name);
        let t = root.mkdir_all(&sub, false)?;
        let tp = fd_path(t.as_fd());
        if plan.cgroupns {
            let ctrls = name
                .to_string_lossy()
                .replace("systemd", "none,name=systemd");
            mount(
                Some("cgroup"),
                tp.as_str(),
                Some("cgroup"),
                flags,
                Some(ctrls.as_str()),
            )
            .with_ctx(|| format!("mount cgroup {}", name.display()))?;
        } else {
            mount(
                Some(dir),
                tp.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_ctx(|| format!("bind cgroup {}", dir.display()))?;
        }
        if ro {
            remount_keep_locked(
                root.resolve(&sub)?.as_fd(),
                MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags,
            )?;
        }
        // Co-mounted controllers ("cpu,cpuacct") are also reachable by each name.
        let n = name.to_string_lossy();
        if n.contains(',') {
            let parent = root.resolve(dest)?;
            for part in n.split(',') {
                match nix::unistd::symlinkat(name, parent.as_fd(), part) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e).with_ctx(|| format!("symlink cgroup {part}")),
                }
            }
        }
    }
    if ro {
        remount_keep_locked(
            root.resolve(dest)?.as_fd(),
            MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags,
        )?;
    }
    Ok(())
}

/// (path, major, minor): the devices every container gets.
pub(crate) const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn create_devices(root: &Root, plan: &RootfsPlan) -> Result<()> {
    for (path, major, minor) in DEFAULT_DEVICES {
        if plan.devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            root,
            Path::new(path),
            SFlag::S_IFCHR,
            *major,
            *minor,
            0o666,
            0,
            0,
            plan.userns,
        )?;
    }
    for d in plan.devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::msg(format!(
                    "linux.devices: {} has type a",
                    d.path().display()
                )))
            }
        };
        make_device(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
            plan.userns,
        )?;
    }
    let dev = root.mkdir_all(Path::new("/dev"), false)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("symlink /dev/{name}")),
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &Root,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    userns: bool,
) -> Result<()> {
    let parent_path = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::msg(format!("linux.devices: bad path {}", path.display())))?;
    let parent = root.mkdir_all(parent_path, false)?;
    // An O_PATH handle cannot be used for mknodat; reopen the directory itself.
    let dir = openat2(
        parent.as_fd(),
        ".",
        OpenHow::new().flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC),
    )
    .with_ctx(|| format!("open {}", parent_path.display()))?;
    if userns {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        let target = root.mkdir_all(path, true)?;
        return mount(
            Some(path),
            fd_path(target.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_ctx(|| format!("bind device {}", path.display()));
    }
    match nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e).with_ctx(|| format!("remove {}", path.display())),
    }
    mknodat(
        dir.as_fd(),
        name,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .with_ctx(|| format!("mknod {}", path.display()))?;
    // mknod honours the umask; the spec's mode is meant exactly.
    nix::sys::stat::fchmodat(
        dir.as_fd(),
        name,
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == nix::errno::Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .with_ctx(|| format!("chmod {}", path.display()))?;
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_ctx(|| format!("chown {}", path.display()))
}

/// Makes the rootfs "/" with pivot_root (or MS_MOVE + chroot with --no-pivot) and detaches the
/// old root so nothing of the host stays reachable.
pub fn enter(root: &Root, no_pivot: bool) -> Result<()> {
    let newroot = openat2(
        root.fd.as_fd(),
        ".",
        OpenHow::new().flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC),
    )
    .ctx("open rootfs")?;
    nix::unistd::fchdir(&newroot).ctx("chdir to rootfs")?;
    if no_pivot {
        unmount_host_pseudo_fs(&root.path)?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .ctx("move rootfs to /")?;
        nix::unistd::chroot(".").ctx("chroot")?;
    } else {
        let oldroot = nix::fcntl::open(
            "/",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open /")?;
        nix::unistd::pivot_root(".", ".").ctx("pivot_root")?;
        // The old root is now stacked under "."; detach it without touching the host's mounts.
        nix::unistd::fchdir(&oldroot).ctx("chdir to old root")?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx("make old root rslave")?;
        umount2(".", MntFlags::MNT_DETACH).ctx("unmount old root")?;
    }
    nix::unistd::chdir("/").ctx("chdir /")
}

/// Detaches every full procfs and sysfs mount outside `rootfs` (as runc's msMoveRoot does).
/// chroot leaves them in the mount namespace, and one there lets a nested user namespace mount
/// a fresh procfs or sysfs that the masks do not cover (fs/namespace.c, mount_too_revealing).
/// A mount that cannot be unmounted (locked, in a user namespace) is covered with a tmpfs,
/// which a nested namespace then finds locked over it.
fn unmount_host_pseudo_fs(rootfs: &Path) -> Result<()> {
    let mut found: Vec<PathBuf> = crate::util::mountinfo::read()?
        .into_iter()
        .filter(|m| {
            m.root == "/"
                && matches!(m.fs_type.as_str(), "proc" | "sysfs")
                && !m.mount_point.starts_with(rootfs)
        })
        .map(|m| m.mount_point)
        .collect();
    // Deepest first, so that no mount point has vanished with its parent.
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in found {
        // A slave first, so that the unmount does not propagate to the host.
        match mount(
            None::<&str>,
            &p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.with_ctx(|| format!("make {} rslave", p.display()))?,
        }
        match umount2(&p, MntFlags::MNT_DETACH) {
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .with_ctx(|| format!("cover {} with a tmpfs", p.display()))?,
            r => r.with_ctx(|| format!("unmount {}", p.display()))?,
        }
    }
    Ok(())
}

/// runc's reOpenDevNull: stdio that is the host's /dev/null (inherited from `run -d
/// </dev/null`) becomes the container's own, on a mount the container has: CRIU cannot dump a
/// descriptor on a mount outside it. A container without /dev/null keeps what it has.
pub fn reopen_dev_null() -> Result<()> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::{fstat, Mode, SFlag};
    let null = match open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        r => r.ctx("open /dev/null")?,
    };
    let rdev = fstat(&null).ctx("stat /dev/null")?.st_rdev;
    for fd in 0..3 {
        // SAFETY: a stdio descriptor of this process, borrowed for fstat; a closed one fails.
        let Ok(st) = fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }) else {
            continue;
        };
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && st.st_rdev == rdev
        {
            // SAFETY: dup2 onto a stdio descriptor this process owns.
            nix::errno::Errno::result(unsafe { libc::dup2(null.as_raw_fd(), fd) })
                .ctx("reopen /dev/null as stdio")?;
        }
    }
    Ok(())
}

/// After the pivot: makes the tmpfs and /dev mounts that were asked for read-only so, hides
/// `masked` paths (/dev/null over files, a read-only tmpfs over directories) and makes
/// `readonly` paths read-only.
pub fn finish(
    later: &[(PathBuf, MsFlags)],
    masked: &[String],
    readonly: &[String],
    root_readonly: bool,
    mount_label: Option<&str>,
) -> Result<()> {
    let slash = Root::open(Path::new("/"))?;
    for (dest, flags) in later {
        remount_keep_locked(slash.resolve(dest)?.as_fd(), *flags | MsFlags::MS_BIND)
            .with_ctx(|| format!("remount {} read-only", dest.display()))?;
    }
    for p in readonly {
        let fd = match slash.resolve(Path::new(p)) {
            Ok(fd) => fd,
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        mount(
            Some(fd_path(fd.as_fd()).as_str()),
            fd_path(fd.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_ctx(|| format!("bind readonly path {p}"))?;
        let top = slash.resolve(Path::new(p))?;
        remount_keep_locked(
            top.as_fd(),
            MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        )
        .with_ctx(|| format!("remount readonly path {p}"))?;
    }
    if !masked.is_empty() {
        let null = open_dev_null(&slash)?;
        // Masked directories share one read-only tmpfs, each a bind of the first: the same
        // empty, read-only directory, and one file system for a checkpoint to archive (CRIU
        // runs tar and gzip for each tmpfs it dumps or restores, 5 ms apiece here).
        let mut mask: Option<OwnedFd> = None;
        for p in masked {
            let fd = match slash.resolve(Path::new(p)) {
                Ok(fd) => fd,
                Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            let target = fd_path(fd.as_fd());
            let is_dir = fstat(fd.as_fd())
                .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
                .unwrap_or(false);
            let bind = |src: &OwnedFd| {
                mount(
                    Some(fd_path(src.as_fd()).as_str()),
                    target.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .with_ctx(|| format!("mask {p}"))
            };
            match (is_dir, &mask) {
                (false, _) => bind(&null)?,
                (true, Some(first)) => {
                    bind(first)?;
                    remount_keep_locked(
                        slash.resolve(Path::new(p))?.as_fd(),
                        MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                    )
                    .with_ctx(|| format!("mask {p}"))?;
                }
                (true, None) => {
                    let data = lsm::label_mount_data("", mount_label);
                    mount(
                        Some("tmpfs"),
                        target.as_str(),
                        Some("tmpfs"),
                        MsFlags::MS_RDONLY,
                        (!data.is_empty()).then_some(data.as_str()),
                    )
                    .with_ctx(|| match data.as_str() {
                        "" => "mount tmpfs".to_string(),
                        d => format!("mount tmpfs with data {d}"),
                    })
                    .with_ctx(|| format!("mask {p}"))?;
                    mask = Some(slash.resolve(Path::new(p))?);
                }
            }
        }
    }
    if root_readonly {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .or_else(|_| remount_keep_locked(slash.fd.as_fd(), MsFlags::MS_BIND | MsFlags::MS_RDONLY))
        .ctx("remount / read-only")?;
    }
    Ok(())
}

/// /dev/null, checked to be the real character device 1:3 and not something the container put
/// there (CVE-2025-31133), so masking cannot be turned into a bind of an arbitrary file.
fn open_dev_null(root: &Root) -> Result<OwnedFd> {
    let fd = openat2(
        root.fd.as_fd(),
        "dev/null",
        how(OFlag::O_PATH | OFlag::O_NOFOLLOW),
    )
    .ctx("open /dev/null")?;
    let st = fstat(fd.as_fd()).ctx("stat /dev/null")?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || st.st_rdev != makedev(1, 3) {
        return Err(Error::msg("/dev/null is not the null device"));
    }
    Ok(fd)
}

/// Checks that the process can execute `path` (used to find args[0] before reporting ready).
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file())
        .unwrap_or(false)
        && nix::unistd::access(path, AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_split_like_runc() {
        let o = parse_mount_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        let o = parse_mount_options(&["rbind".into(), "ro".into(), "rw".into(), "rprivate".into()]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn tmpcopyup_is_no_mount_data() {
        let o = parse_mount_options(&["tmpcopyup".into(), "size=1m".into()]);
        assert!(o.copyup);
        assert_eq!(o.data, ["size=1m"]);
        assert!(!parse_mount_options(&["size=1m".into()]).copyup);
    }

    #[test]
    fn copy_up_keeps_symlinks_and_stops_deep() {
        let dir = std::env::temp_dir().join(format!("husk-copyup-test-{}", std::process::id()));
        let (src, dst) = (dir.join("src"), dir.join("dst"));
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("d/f"), "x").unwrap();
        // Followed, these would copy the host's root or loop.
        std::os::unix::fs::symlink("/", src.join("up")).unwrap();
        std::os::unix::fs::symlink("..", src.join("d/loop")).unwrap();
        let open = |p: &Path| Root::open(p).unwrap().fd;
        copy_up(open(&src).as_fd(), open(&dst).as_fd(), Path::new("/s"), 0).unwrap();
        assert_eq!(std::fs::read_link(dst.join("up")).unwrap(), Path::new("/"));
        assert_eq!(
            std::fs::read_link(dst.join("d/loop")).unwrap(),
            Path::new("..")
        );
        assert_eq!(std::fs::read_to_string(dst.join("d/f")).unwrap(), "x");
        let deep = (0..=COPY_UP_DEPTH).fold(dir.join("deep"), |p, _| p.join("d"));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(dir.join("deepdst")).unwrap();
        let e = copy_up(
            open(&dir.join("deep")).as_fd(),
            open(&dir.join("deepdst")).as_fd(),
            Path::new("/s"),
            0,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("copy /s/d/d/"), "{e}");
        assert!(
            e.to_string()
                .ends_with(": more than 128 levels of directories"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recursive_and_idmap_options_like_runc() {
        let o = parse_mount_options(&[
            "rbind".into(),
            "rro".into(),
            "rnoexec".into(),
            "rexec".into(),
            "rnoatime".into(),
            "ridmap".into(),
            "nosymfollow".into(),
        ]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC | NOSYMFOLLOW);
        // As runc: a later clear does not take back an earlier set; an atime mode clears the
        // whole atime field.
        assert_eq!(
            o.rec_set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_clr, libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR__ATIME);
        assert_eq!(o.idmap, Some(true));
        assert!(o.data.is_empty());
    }

    #[test]
    fn resolution_stays_in_root() {
        let dir = std::env::temp_dir().join(format!("husk-rootfs-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        // An absolute symlink inside the root points inside the root, not at the host.
        std::os::unix::fs::symlink("/", dir.join("a/up")).unwrap();
        let root = Root::open(&dir).unwrap();
        let fd = root.mkdir_all(Path::new("/a/up/etc/made"), false).unwrap();
        assert!(dir.join("etc/made").is_dir());
        drop(fd);
        // A dangling symlink to a host path gets its target made inside the root.
        std::os::unix::fs::symlink("/host/only", dir.join("dev")).unwrap();
        drop(root.mkdir_all(Path::new("/dev/pts"), false).unwrap());
        assert!(dir.join("host/only/pts").is_dir());
        let f = root.mkdir_all(Path::new("/a/file"), true).unwrap();
        drop(f);
        assert!(dir.join("a/file").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
