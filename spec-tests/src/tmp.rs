//! A temporary directory removed on drop, without a `tempfile` dependency.

use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::proc;

/// A directory under /tmp made with mkdtemp(3); removed recursively on drop unless something
/// is still mounted below it (then it is left for inspection: removing it could reach through a
/// bind mount into a host directory).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `prefix` ends up in the directory name to make leftovers easy to attribute.
    pub fn new(prefix: &str) -> TempDir {
        let template = CString::new(format!("/tmp/spec-tests-{prefix}-XXXXXX")).unwrap();
        let mut buf = template.into_bytes_with_nul();
        // SAFETY: buf is a NUL-terminated, writable template as mkdtemp requires.
        let p = unsafe { libc::mkdtemp(buf.as_mut_ptr().cast()) };
        assert!(!p.is_null(), "mkdtemp: {}", std::io::Error::last_os_error());
        buf.pop(); // the NUL
        TempDir {
            path: PathBuf::from(std::ffi::OsString::from_vec(buf)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let still_mounted = proc::mounts_mentioning(&self.path);
        if !still_mounted.is_empty() {
            eprintln!(
                "spec-tests: leaving {} in place, still mounted below it: {still_mounted:?}",
                self.path.display()
            );
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            // Drop cannot fail; say so loudly instead of hiding it.
            eprintln!("spec-tests: removing {}: {e}", self.path.display());
        }
    }
}
