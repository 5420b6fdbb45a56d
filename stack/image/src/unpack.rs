//! Unpacking one layer (an uncompressed tar stream) into an empty directory, in the form
//! overlayfs wants for a lower directory.
//!
//! Layers are untrusted. Every entry is created relative to a directory fd with the final
//! component alone, and directories are opened with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`: nothing is ever created through a symlink, so an entry can never land
//! outside the layer, whatever symlinks earlier entries made. What cannot be unpacked safely is
//! refused with an error naming the entry: `..` components, absolute paths, paths through a
//! symlink, device nodes and fifos, hard links to what is not already in the layer, and
//! `trusted.overlay.*` xattrs (which would steer overlayfs itself).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

/// Why an entry of a layer was refused or could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("entry {entry}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("malformed tar: {0}")]
    Tar(io::Error),
    #[error("{0}: {1}")]
    Io(String, io::Error),
}

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

fn reject(entry: &[u8], reason: impl Into<String>) -> UnpackError {
    UnpackError::Entry {
        entry: String::from_utf8_lossy(entry).into_owned(),
        reason: reason.into(),
    }
}

/// The components of an entry's path: `.` and empty components dropped, `..` and absolute
/// paths refused.
fn components(path: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if path.first() == Some(&b'/') {
        return Err("absolute path");
    }
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path escapes the layer (..)"),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Unpacks the tar stream `reader` into `dest`, an empty directory.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<(), UnpackError> {
    let root: OwnedFd = File::open(dest)
        .map_err(|e| UnpackError::Io(dest.display().to_string(), e))?
        .into();
    let mut u = Unpacker {
        root,
        cache: None,
        dirs: HashMap::new(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(UnpackError::Tar)? {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        u.entry(&mut entry)?;
    }
    u.finish()
}

/// What a header says about an entry's owner, mode, times and xattrs.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

struct Unpacker {
    root: OwnedFd,
    /// The last parent directory opened, by path: tar streams list a directory's entries
    /// together. Safe to keep: directories are never removed or replaced while unpacking.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// Directories' mtimes, set at the end since creating entries inside changes them.
    dirs: HashMap<Vec<u8>, TimeSpec>,
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let comps = components(&raw).map_err(|r| reject(&raw, r))?;
        let meta = meta(entry).map_err(|r| reject(&raw, r))?;
        let Some((&base, parents)) = comps.split_last() else {
            // The layer's root directory itself ("./").
            if !kind.is_dir() {
                return Err(reject(&raw, "not a directory at the layer's root"));
            }
            let root = self.root.try_clone().map_err(|e| self.io(&raw, e))?;
            self.apply(&raw, root.as_fd(), c".", &meta, false)?;
            self.dirs.insert(Vec::new(), meta.mtime);
            return Ok(());
        };
        let parent_path = parents.join(&b'/');
        let parent = self.dir(&raw, &parent_path)?;
        let parent = parent.as_fd();
        let name = CString::new(base).map_err(|_| reject(&raw, "nul byte in path"))?;

        if base.starts_with(WHITEOUT) {
            if base == OPAQUE {
                return set_xattr(parent, c".", OPAQUE_XATTR, b"y")
                    .map_err(|e| reject(&raw, format!("setting {OPAQUE_XATTR}: {e}")));
            }
            if base.starts_with(b".wh..wh.") {
                // aufs's own bookkeeping (.wh..wh.plnk, .wh..wh.aufs), not content.
                return Ok(());
            }
            let hidden = &base[WHITEOUT.len()..];
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(reject(&raw, "whiteout of no name"));
            }
            let hidden = CString::new(hidden).map_err(|_| reject(&raw, "nul byte in path"))?;
            self.make_room(&raw, parent, &hidden, false)?;
            // overlayfs's whiteout: a character device 0:0.
            mknodat(parent, hidden.as_c_str(), SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| self.io(&raw, e.into()))?;
            return Ok(());
        }

        match kind {
            EntryType::Directory => {
                let exists = self.make_room(&raw, parent, &name, true)?;
                if !exists {
                    mkdirat(parent, name.as_c_str(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| self.io(&raw, e.into()))?;
                }
                self.apply(&raw, parent, &name, &meta, false)?;
                self.dirs.insert(comps.join(&b'/'), meta.mtime);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_room(&raw, parent, &name, false)?;
                let how = OpenHow::new()
                    .flags(
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                    )
                    .mode(Mode::from_bits_truncate(0o600))
                    .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
                let fd =
                    openat2(parent, name.as_c_str(), how).map_err(|e| self.io(&raw, e.into()))?;
                let mut file = File::from(fd);
                io::copy(entry, &mut file).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                        UnpackError::Tar(e)
                    }
                    _ => self.io(&raw, e),
                })?;
                self.apply(&raw, parent, &name, &meta, false)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| reject(&raw, "symlink without a target"))?
                    .into_owned();
                self.make_room(&raw, parent, &name, false)?;
                // The target is only stored: nothing here ever resolves it.
                let target = CString::new(target).map_err(|_| reject(&raw, "nul byte in link"))?;
                symlinkat(target.as_c_str(), parent, name.as_c_str())
                    .map_err(|e| self.io(&raw, e.into()))?;
                self.apply(&raw, parent, &name, &meta, true)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| reject(&raw, "hard link without a target"))?
                    .into_owned();
                let tcomps = components(&target).map_err(|r| {
                    reject(&raw, format!("hard link target outside the layer ({r})"))
                })?;
                let Some((&tbase, tparents)) = tcomps.split_last() else {
                    return Err(reject(&raw, "hard link to the layer's root"));
                };
                let tparent = self.existing_dir(&raw, &tparents.join(&b'/'))?;
                let tname = CString::new(tbase).map_err(|_| reject(&raw, "nul byte in link"))?;
                match fstatat(
                    tparent.as_fd(),
                    tname.as_c_str(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                ) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                        return Err(reject(&raw, "hard link to a directory"))
                    }
                    Ok(_) => {}
                    Err(Errno::ENOENT) => {
                        return Err(reject(
                            &raw,
                            format!(
                                "hard link target {} is not in the layer",
                                String::from_utf8_lossy(&target)
                            ),
                        ))
                    }
                    Err(e) => return Err(self.io(&raw, e.into())),
                }
                self.make_room(&raw, parent, &name, false)?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                linkat(
                    tparent.as_fd(),
                    tname.as_c_str(),
                    parent,
                    name.as_c_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| self.io(&raw, e.into()))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(reject(
                    &raw,
                    "device nodes and fifos are not accepted from a layer",
                ));
            }
            other => {
                return Err(reject(&raw, format!("unsupported entry type {other:?}")));
            }
        }
        Ok(())
    }

    fn io(&self, entry: &[u8], e: io::Error) -> UnpackError {
        UnpackError::Io(format!("entry {}", String::from_utf8_lossy(entry)), e)
    }

    /// The directory at `path` under the root, created (with its parents, 0755, root's) when
    /// missing. A symlink on the way is refused, never followed.
    fn dir(&mut self, entry: &[u8], path: &[u8]) -> Result<OwnedFd, UnpackError> {
        if let Some((p, fd)) = &self.cache {
            if p == path {
                return fd.try_clone().map_err(|e| self.io(entry, e));
            }
        }
        let fd = match open_beneath(self.root.as_fd(), path) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let mut cur = self.root.try_clone().map_err(|e| self.io(entry, e))?;
                for c in path.split(|&b| b == b'/') {
                    let c = CString::new(c).map_err(|_| reject(entry, "nul byte in path"))?;
                    match mkdirat(cur.as_fd(), c.as_c_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(self.io(entry, e.into())),
                    }
                    cur = open_beneath(cur.as_fd(), c.as_bytes())
                        .map_err(|e| self.dir_error(entry, e))?;
                }
                cur
            }
            Err(e) => return Err(self.dir_error(entry, e)),
        };
        self.cache = Some((
            path.to_vec(),
            fd.try_clone().map_err(|e| self.io(entry, e))?,
        ));
        Ok(fd)
    }

    fn existing_dir(&self, entry: &[u8], path: &[u8]) -> Result<OwnedFd, UnpackError> {
        open_beneath(self.root.as_fd(), path).map_err(|e| match e {
            Errno::ENOENT => reject(entry, "hard link target is not in the layer"),
            e => self.dir_error(entry, e),
        })
    }

    fn dir_error(&self, entry: &[u8], e: Errno) -> UnpackError {
        match e {
            Errno::ELOOP => reject(entry, "path goes through a symlink"),
            Errno::ENOTDIR => reject(entry, "a parent is not a directory"),
            Errno::EXDEV => reject(entry, "path escapes the layer"),
            e => self.io(entry, e.into()),
        }
    }

    /// Clears the way for a new entry `name` in `parent`: a later entry of the same path
    /// replaces an earlier one, as tar does. Returns whether a directory is kept (a directory
    /// entry over a directory only updates its metadata).
    fn make_room(
        &self,
        entry: &[u8],
        parent: BorrowedFd,
        name: &CString,
        is_dir: bool,
    ) -> Result<bool, UnpackError> {
        match fstatat(parent, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.io(entry, e.into())),
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                if is_dir {
                    Ok(true)
                } else {
                    Err(reject(entry, "would replace a directory of the same layer"))
                }
            }
            Ok(_) => {
                unlinkat(parent, name.as_c_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| self.io(entry, e.into()))?;
                Ok(false)
            }
        }
    }

    /// Owner, then mode (a chown clears setuid bits), then xattrs (a chown clears
    /// security.capability), then times.
    fn apply(
        &self,
        entry: &[u8],
        parent: BorrowedFd,
        name: &std::ffi::CStr,
        meta: &Meta,
        symlink: bool,
    ) -> Result<(), UnpackError> {
        let err = |what: &str, e: Errno| self.io(entry, io::Error::other(format!("{what}: {e}")));
        fchownat(
            parent,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("chown", e))?;
        if !symlink {
            let mode = Mode::from_bits_truncate(meta.mode);
            if name == c"." {
                fchmod(parent, mode).map_err(|e| err("chmod", e))?;
            } else {
                // Not a symlink (created just now by us, in a directory no one else writes),
                // so following is moot.
                fchmodat(parent, name, mode, FchmodatFlags::FollowSymlink)
                    .map_err(|e| err("chmod", e))?;
            }
        }
        for (key, value) in &meta.xattrs {
            set_xattr(parent, name, key.to_str().unwrap_or_default(), value)
                .map_err(|e| err(&format!("xattr {}", key.to_string_lossy()), e))?;
        }
        utimensat(
            parent,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| err("utimensat", e))?;
        Ok(())
    }

    fn finish(self) -> Result<(), UnpackError> {
        for (path, mtime) in &self.dirs {
            let fd = open_beneath(self.root.as_fd(), path).map_err(|e| {
                UnpackError::Io(String::from_utf8_lossy(path).into_owned(), e.into())
            })?;
            futimens(&fd, mtime, mtime).map_err(|e| {
                UnpackError::Io(String::from_utf8_lossy(path).into_owned(), e.into())
            })?;
        }
        Ok(())
    }
}

/// Opens the directory `path` (relative, may be empty for `dir` itself) under `dir`,
/// following no symlink at all (ELOOP on one; no O_NOFOLLOW, which would turn a final one
/// into ENOTDIR).
fn open_beneath(dir: BorrowedFd, path: &[u8]) -> Result<OwnedFd, Errno> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    let how = OpenHow::new()
        .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    openat2(dir, path, how)
}

/// lsetxattr through the directory fd's /proc path: the same no-follow semantics as the
/// *at calls, for symlinks too, without reopening the entry.
fn set_xattr(
    parent: BorrowedFd,
    name: &std::ffi::CStr,
    key: &str,
    value: &[u8],
) -> Result<(), Errno> {
    let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.to_bytes());
    let path = CString::new(path).map_err(|_| Errno::EINVAL)?;
    let key = CString::new(key).map_err(|_| Errno::EINVAL)?;
    // SAFETY: both strings are NUL-terminated and the value's pointer and length match.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

fn meta<R: Read>(entry: &mut tar::Entry<R>) -> Result<Meta, String> {
    let h = entry.header();
    let bad = |what: &str, e: io::Error| format!("bad {what} in header: {e}");
    let mut uid = h.uid().map_err(|e| bad("uid", e))?;
    let mut gid = h.gid().map_err(|e| bad("gid", e))?;
    let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
    let mut mtime = TimeSpec::new(h.mtime().map_err(|e| bad("mtime", e))? as i64, 0);
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(|e| bad("pax header", e))? {
        for ext in pax {
            let ext = ext.map_err(|e| bad("pax header", e))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let number = || std::str::from_utf8(value).ok();
            match key {
                "uid" => uid = number().and_then(|v| v.parse().ok()).ok_or("bad pax uid")?,
                "gid" => gid = number().and_then(|v| v.parse().ok()).ok_or("bad pax gid")?,
                "mtime" => mtime = pax_time(number().ok_or("bad pax mtime")?)?,
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        if name.starts_with("trusted.overlay.") {
                            return Err(format!("xattr {name} is not accepted from a layer"));
                        }
                        let name = CString::new(name).map_err(|_| "nul byte in xattr name")?;
                        xattrs.push((name, value.to_vec()));
                    }
                }
            }
        }
    }
    let uid = u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| format!("gid {gid} out of range"))?;
    Ok(Meta {
        uid,
        gid,
        mode,
        mtime,
        xattrs,
    })
}

/// A pax time: seconds with an optional fraction ("1700000000.123456789").
fn pax_time(v: &str) -> Result<TimeSpec, String> {
    let bad = || format!("bad pax mtime {v:?}");
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let mut nanos = 0i64;
    for (i, d) in frac.bytes().take(9).enumerate() {
        if !d.is_ascii_digit() {
            return Err(bad());
        }
        nanos += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
    }
    if secs < 0 && nanos > 0 {
        let secs = secs.checked_sub(1).ok_or_else(bad)?;
        return Ok(TimeSpec::new(secs, 1_000_000_000 - nanos));
    }
    Ok(TimeSpec::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_escapes() {
        assert_eq!(components(b"./a//b/").unwrap(), vec![&b"a"[..], &b"b"[..]]);
        assert!(components(b"").unwrap().is_empty());
        assert!(components(b"a/../../x").is_err());
        assert!(components(b"/etc/passwd").is_err());
    }

    #[test]
    fn pax_times() {
        assert_eq!(pax_time("12.5").unwrap(), TimeSpec::new(12, 500_000_000));
        assert_eq!(pax_time("7").unwrap(), TimeSpec::new(7, 0));
        assert!(pax_time("x").is_err());
        assert!(pax_time("-9223372036854775808.5").is_err());
        assert_eq!(pax_time("-1.25").unwrap(), TimeSpec::new(-2, 750_000_000));
    }
}
