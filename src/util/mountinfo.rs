//! /proc/self/mountinfo through the procfs crate, with each mount point unescaped: the kernel
//! writes a space, tab, newline or backslash in a path as `\040`, `\011`, `\012`, `\134`,
//! and procfs leaves them so.

use crate::error::{Context, Result};
use procfs::process::{MountInfo, MountInfos};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

pub fn read() -> Result<Vec<MountInfo>> {
    let f = std::fs::File::open("/proc/self/mountinfo").ctx("open /proc/self/mountinfo")?;
    parse(f).ctx("read /proc/self/mountinfo")
}

pub(crate) fn parse(r: impl std::io::Read) -> procfs::ProcResult<Vec<MountInfo>> {
    use procfs::FromRead;
    Ok(MountInfos::from_read(r)?
        .into_iter()
        .map(|mut m| {
            m.mount_point = unescape(m.mount_point.as_os_str().as_bytes());
            m
        })
        .collect())
}

/// Undoes the kernel's `\ooo` escapes (fs/proc_namespace.c); a backslash not followed by three
/// octal digits of a byte is kept as it is.
fn unescape(s: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        let byte = tail
            .get(..3)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match (c, byte) {
            (b'\\', Some(b)) => {
                out.push(b);
                rest = &tail[3..];
            }
            _ => {
                out.push(c);
                rest = tail;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        let text = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
            36 35 98:0 /x /mnt/a\\040b\\011c\\012d\\134e\\134040 rw master:1 - ext4 /dev/vda rw\n\
            37 35 98:0 / /odd\\\\9\\777\\04 rw - ext4 /dev/vda rw\n";
        let m = parse(text.as_bytes()).unwrap();
        let points: Vec<_> = m.iter().map(|m| m.mount_point.clone()).collect();
        assert_eq!(
            points,
            [
                PathBuf::from("/proc"),
                PathBuf::from("/mnt/a b\tc\nd\\e\\040"),
                PathBuf::from("/odd\\\\9\\777\\04"),
            ]
        );
        assert_eq!(m[1].fs_type, "ext4");
    }
}
