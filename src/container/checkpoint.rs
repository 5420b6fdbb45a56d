//! `checkpoint`: dumps a running container's processes with CRIU, telling it what runc tells
//! it: the rootfs, which mounts come from the host (binds, the cgroup v1 binds, devices, the
//! /dev/null over masked files), which namespaces were joined, the freezer to stop the tasks
//! with; and writes descriptors.json (the init's stdio) beside the images for `restore`.

use crate::cgroups::{self, MountLayout};
use crate::container::criu::{self, ReqType, Swrk};
use crate::container::state::{State, Status};
use crate::error::{Context, Error, Result};
use crate::init::rootfs::{is_bind, parse_mount_options, DEFAULT_DEVICES};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What `checkpoint` was asked for, flags parsed.
pub struct CheckpointOptions<'a> {
    pub criu: &'a Path,
    pub images: PathBuf,
    pub work: Option<PathBuf>,
    pub parent: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub status_fd: i32,
    pub page_server: Option<(String, i32)>,
    pub common: criu::Common,
}

pub const DESCRIPTORS: &str = "descriptors.json";
const DUMP_LOG: &str = "dump.log";

/// The container must be running (or paused); anything else is refused in runc's words.
pub fn check_status(root: &Path, id: &str) -> Result<()> {
    let (dir, state) = crate::container::open_existing(root, id)?;
    match state.status(&dir) {
        Status::Running | Status::Paused => Ok(()),
        s => Err(Error::msg(format!(
            "Container cannot be checkpointed in {} state",
            s.as_str()
        ))),
    }
}

pub fn checkpoint(root: &Path, id: &str, o: &CheckpointOptions) -> Result<()> {
    let (dir, state) = crate::container::open_existing(root, id)?;
    let lock = dir.lock()?;
    check_status(root, id)?;
    let (mut swrk, version) = Swrk::start(o.criu, criu::MIN_VERSION)?;
    mkdir_or_exists(&o.images)?;
    let images = open_dir(&o.images)?;
    let spec = crate::container::create::load_spec(&state.bundle)?;
    let mut opts = criu::base_opts(&images, DUMP_LOG);
    opts.set_root(state.rootfs.to_string_lossy().into_owned());
    opts.set_pid(state.pid);
    opts.set_leave_running(o.leave_running);
    o.common.apply(&mut opts);
    criu::config_file(&mut opts, &state.annotations);
    let (log_dir, work) = work_dir(&mut opts, &o.images, o.work.as_deref())?;
    for (t, name, min) in [
        (LinuxNamespaceType::Network, "net", 31100),
        (LinuxNamespaceType::Pid, "pid", 31500),
    ] {
        if let Some(ext) = external_namespace(&spec, t, name, version, min)? {
            opts.external.push(ext);
        }
    }
    let cgroup_file = format!("/proc/{}/cgroup", state.pid);
    let cgroups =
        std::fs::read_to_string(&cgroup_file).with_ctx(|| format!("read {cgroup_file}"))?;
    opts.cgroup_dump_controller = own_controllers(&cgroups);
    if yard_fits(&cgroups, &state.cgroup_paths, CGROUP_YARD) {
        opts.set_cgroup_yard(CGROUP_YARD.into());
    }
    if let Some(f) = state.freezer_paths.first().or(state.cgroup_paths.first()) {
        opts.set_freeze_cgroup(f.to_string_lossy().into_owned());
    }
    if let Some((addr, port)) = &o.page_server {
        let mut ps = criu::rpc::Criu_page_server_info::new();
        ps.set_address(addr.clone());
        ps.set_port(*port);
        opts.ps = protobuf::MessageField::some(ps);
    }
    if let Some(p) = &o.parent {
        opts.set_parent_img(p.to_string_lossy().into_owned());
        opts.set_track_mem(true);
    }
    if o.pre_dump {
        swrk.check_features(true, false)?;
    }
    let mut status_fd = None;
    if o.common.lazy_pages {
        swrk.check_features(false, true)?;
        status_fd = check_status_fd(o.status_fd)?;
    }
    if !o.pre_dump {
        for (k, v) in dump_mounts(&spec, &state)? {
            opts.ext_mnt.push(ext_mount(k, v));
        }
        write_descriptors(&o.images, state.pid)?;
    }
    // A network namespace of the container's own is locked with an nftables table that CRIU
    // makes in-process, where iptables costs it two iptables-restore runs at the dump and four
    // at the restore (which takes the method from the images). A CRIU built without
    // libnftables, or a kernel without nf_tables, fails the lock before anything is dumped:
    // then iptables, as runc always does. Other namespaces stay with iptables: a joined one
    // outlives the container with the dump's lock still in it, and CRIU 4.1's nftables restore
    // fails to make its table again there ("File exists"); in the host's, CRIU locks each
    // connection, with nftables only where sets can concatenate.
    let nft = own_network_namespace(&spec);
    if nft {
        opts.set_network_lock(criu::rpc::Criu_network_lock_method::NFTABLES);
    }
    let mut req = criu::rpc::Criu_req::new();
    req.set_type(if o.pre_dump {
        ReqType::PRE_DUMP
    } else {
        ReqType::DUMP
    });
    req.opts = protobuf::MessageField::some(opts);
    let mut notify = |n: &criu::Notify, _| {
        // The lazy-pages server is up: whoever waits on --status-fd may start the restore.
        if n.script() == "status-ready" {
            if let Some(fd) = status_fd.take() {
                if let Err(e) = nix::unistd::write(&fd, &[0]) {
                    log::warn!("can't write \\0 to status fd: {e}");
                }
            }
        }
        Ok(())
    };
    let mut res = swrk.call(&req, &mut notify);
    if res.is_err() && nft && nftables_failed(&log_dir.join(DUMP_LOG)) {
        log::warn!("criu could not lock the network with nftables; locking it with iptables");
        if let Some(opts) = req.opts.as_mut() {
            opts.set_network_lock(criu::rpc::Criu_network_lock_method::IPTABLES);
        }
        res = Swrk::start(o.criu, criu::MIN_VERSION).and_then(|(s, _)| s.call(&req, &mut notify));
    }
    drop((images, work));
    if let Err(e) = res {
        criu::quote_errors(&log_dir.join(DUMP_LOG));
        return Err(e);
    }
    if !(o.leave_running || o.pre_dump) {
        // CRIU has killed the tasks: the container is gone but for its cgroup and state.
        if let Err(e) = crate::container::destroy(&state, &dir, None) {
            log::warn!("{e}");
        }
    }
    drop(lock);
    Ok(())
}

/// The cgroup controllers the container has a cgroup of its own in, named as in
/// /proc/<pid>/cgroup ("cpu,cpuacct", "name=systemd", "" for the unified hierarchy). CRIU is
/// told to dump only these: in a hierarchy the runtime does not manage (hugetlb, on a host that
/// does not mount it) the container sits in the root cgroup, and CRIU would record, and a
/// restore recreate, the host's whole tree there (runc lets it: on this host its restores
/// copied that tree into new cgroups again and again, hundreds of thousands in a day).
fn own_controllers(proc_cgroup: &str) -> Vec<String> {
    proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':').skip(1);
            let (ctrls, p) = (f.next()?, f.next()?);
            (p != "/").then(|| ctrls.to_string())
        })
        .collect()
}

/// Whether the container has a network namespace of its own (not joined, not the host's).
fn own_network_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none())
        })
}

/// Whether CRIU's log says its nftables network lock failed.
fn nftables_failed(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| {
        t.contains("Locking network failed using nftables")
            || t.contains("built without libnftables support")
    })
}

/// Where the host mounts the cgroup v1 hierarchies. CRIU reads the container's cgroups there
/// instead of mounting every hierarchy again for the dump (10 ms of a 100 ms dump here) when
/// `yard_fits`.
const CGROUP_YARD: &str = "/sys/fs/cgroup";

/// Whether each hierarchy the container has a cgroup in (/proc/<pid>/cgroup) is at
/// <yard>/<the name CRIU gives it> ("cpu,cpuacct", "systemd" for name=systemd, "unified" for
/// the v2 hierarchy of a hybrid host), as the container's own cgroup directories show.
fn yard_fits(proc_cgroup: &str, cgroup_paths: &[PathBuf], yard: &str) -> bool {
    let mut any = false;
    for l in proc_cgroup.lines() {
        let mut f = l.splitn(3, ':').skip(1);
        let (Some(ctrls), Some(path)) = (f.next(), f.next()) else {
            return false;
        };
        if path == "/" {
            continue;
        }
        let name = match ctrls {
            "" => "unified",
            c => c.strip_prefix("name=").unwrap_or(c),
        };
        let dir = PathBuf::from(format!("{yard}/{name}{path}"));
        if !cgroup_paths.contains(&dir) {
            return false;
        }
        any = true;
    }
    any
}

/// runc's `mkdir(path, 0700)` that tolerates an existing directory: a container may be
/// checkpointed many times into the same one.
/// CRIU's work directory (`--work-path`), made and opened, given to CRIU; returns where its
/// logs go (the work directory, or the images') and the open directory to keep until the end.
pub fn work_dir(
    opts: &mut criu::Opts,
    images: &Path,
    work: Option<&Path>,
) -> Result<(PathBuf, Option<OwnedFd>)> {
    let Some(w) = work else {
        return Ok((images.to_path_buf(), None));
    };
    mkdir_or_exists(w)?;
    let fd = open_dir(w)?;
    opts.set_work_dir_fd(fd.as_raw_fd());
    Ok((w.to_path_buf(), Some(fd)))
}

pub fn mkdir_or_exists(p: &Path) -> Result<()> {
    match nix::unistd::mkdir(p, nix::sys::stat::Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e).with_ctx(|| format!("mkdir {}", p.display())),
    }
}

/// A directory CRIU reaches by fd (it runs elsewhere in the tree, and in the restore, in
/// another mount namespace).
pub fn open_dir(p: &Path) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(
        p,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_ctx(|| format!("open {}", p.display()))
}

pub fn ext_mount(key: String, val: String) -> criu::rpc::Ext_mount_map {
    let mut m = criu::rpc::Ext_mount_map::new();
    m.set_key(key);
    m.set_val(val);
    m
}

/// A joined network or pid namespace is external to the dump: CRIU records it by inode, under
/// the key that `restore` passes the namespace to join with.
fn external_namespace(
    spec: &Spec,
    t: LinuxNamespaceType,
    name: &str,
    version: u32,
    min: u32,
) -> Result<Option<String>> {
    if version < min {
        return Err(Error::msg(format!("criu lacks support for external {name} namespace during checkpointing process (old criu version?)")));
    }
    let Some(path) = joined(spec, t) else {
        return Ok(None);
    };
    let st = nix::sys::stat::stat(&path).with_ctx(|| format!("stat {}", path.display()))?;
    Ok(Some(format!("{name}[{}]:{}", st.st_ino, ns_key(name))))
}

/// The path of a namespace of type `t` that the container joins.
pub fn joined(spec: &Spec, t: LinuxNamespaceType) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == t)?
        .path()
        .clone()
}

/// runc's key for an external namespace: extRoot + Net|Pid + NS.
pub fn ns_key(name: &str) -> String {
    let mut c = name.chars();
    let first = c.next().map(|f| f.to_ascii_uppercase()).unwrap_or_default();
    format!("extRoot{first}{}NS", c.as_str())
}

/// Every mount the container has from the host, as (mountpoint in the container, source):
/// binds, the cgroup v1 hierarchies bound without a cgroup namespace, device nodes. The
/// source is `host(source)` for a bind and the container's cgroup directory for a cgroup.
pub fn host_mounts(
    spec: &Spec,
    cgroup_paths: &[PathBuf],
    bind_source: &dyn Fn(&Path) -> PathBuf,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let cgroupns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup));
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let dest = crate::util::path::clean(m.destination());
        let opts = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
        if is_bind(m, &opts) {
            let src = m.source().clone().unwrap_or_default();
            out.push((s(&dest), s(&bind_source(&src))));
        } else if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) && !cgroupns {
            match cgroups::from_paths(cgroup_paths.to_vec()).mount_layout() {
                MountLayout::Hierarchies(h) => {
                    for (name, dir) in h {
                        out.push((s(&dest.join(name)), s(&dir)));
                    }
                }
                MountLayout::Unified(dir) => out.push((s(&dest), s(&dir))),
            }
        }
    }
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    let paths = DEFAULT_DEVICES
        .iter()
        .map(|d| PathBuf::from(d.0))
        .chain(devices.iter().map(|d| d.path().clone()));
    for p in paths {
        out.push((s(&p), s(&p)));
    }
    out
}

/// What a dump names as external: each host mount under its own name, and /dev/null over the
/// masked files.
fn dump_mounts(spec: &Spec, state: &State) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = host_mounts(spec, &state.cgroup_paths, &|p| p.into())
        .into_iter()
        .map(|(k, _)| (k.clone(), k))
        .collect();
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    for p in masked {
        let inside = format!("/proc/{}/root/{}", state.pid, p.trim_start_matches('/'));
        match std::fs::metadata(&inside) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => out.push((p, "/dev/null".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_ctx(|| format!("stat {inside}")),
        }
    }
    Ok(out)
}

/// The init's stdio as it sees it ("pipe:[123]", "/dev/null"), for `restore` to reconnect
/// pipes to its own.
fn write_descriptors(images: &Path, pid: i32) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|i| {
            std::fs::read_link(format!("/proc/{pid}/fd/{i}"))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join(DESCRIPTORS);
    let data = serde_json::to_vec(&fds).map_err(|e| Error::msg(format!("encode fds: {e}")))?;
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&data))
        .with_ctx(|| format!("write {}", path.display()))
}

use std::os::unix::fs::OpenOptionsExt;

/// --status-fd must be open for writing; it is closed once the lazy-pages server is ready.
fn check_status_fd(fd: i32) -> Result<Option<OwnedFd>> {
    use std::os::fd::FromRawFd;
    if fd == -1 {
        return Ok(None);
    }
    // SAFETY: F_GETFL only reads the flags of whatever fd number the caller gave.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        let e = nix::errno::Errno::last();
        return Err(Error::msg(format!(
            "invalid --status-fd argument {fd}: {}",
            crate::error::errno_text(e)
        )));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(Error::msg(format!(
            "invalid --status-fd argument {fd}: not writable"
        )));
    }
    // SAFETY: the caller passed this fd to us to be written and closed.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_cgroup_mounts_are_the_yard_only_where_criu_would_name_them_so() {
        let paths = |ps: &[&str]| ps.iter().map(PathBuf::from).collect::<Vec<_>>();
        let hybrid = "9:name=systemd:/c\n4:memory:/a/c\n2:cpu,cpuacct:/c\n1:hugetlb:/\n0::/c\n";
        let mine = paths(&[
            "/y/systemd/c",
            "/y/memory/a/c",
            "/y/cpu,cpuacct/c",
            "/y/unified/c",
        ]);
        assert!(yard_fits(hybrid, &mine, "/y"));
        // cpu,cpuacct mounted as /y/cpu: CRIU would look for /y/cpu,cpuacct.
        let elsewhere = paths(&["/y/systemd/c", "/y/memory/a/c", "/y/cpu/c", "/y/unified/c"]);
        assert!(!yard_fits(hybrid, &elsewhere, "/y"));
        // Pure v2: the hierarchy is the mount point itself, which CRIU would call "unified".
        assert!(!yard_fits("0::/c\n", &paths(&["/y/c"]), "/y"));
        assert!(!yard_fits("garbage\n", &mine, "/y"));
        assert!(!yard_fits("", &mine, "/y"));
    }

    #[test]
    fn namespace_keys_are_runcs() {
        assert_eq!(ns_key("net"), "extRootNetNS");
        assert_eq!(ns_key("pid"), "extRootPidNS");
    }

    #[test]
    fn host_mounts_are_binds_devices_and_cgroup_binds() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data/", "type": "bind", "source": "rel", "options": ["rbind"]},
                {"destination": "/opt", "source": "/srv", "options": ["bind", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}
            ],
            "linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}
        }))
        .unwrap();
        let cg = [PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/x")];
        let got = host_mounts(&spec, &cg, &|p| Path::new("/b").join(p));
        let want = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(got[0], want("/data", "/b/rel"));
        assert_eq!(got[1], want("/opt", "/srv"));
        if !crate::cgroups::is_v2() {
            assert_eq!(
                got[2],
                want("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/x")
            );
        }
        assert!(got.contains(&want("/dev/null", "/dev/null")));
        assert!(got.contains(&want("/dev/fuse", "/dev/fuse")));
    }
}
