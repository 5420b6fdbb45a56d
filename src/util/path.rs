//! Lexical path cleaning: "." and ".." resolved without touching the filesystem.

use std::path::{Component, Path, PathBuf};

/// As Go's filepath.Clean: ".." removes the component before it and never climbs above the root
/// (or the start of a relative path).
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `p` cleaned and made relative to "/", so that nothing joined onto a root can climb out of it.
pub fn below_root(p: &Path) -> PathBuf {
    let c = clean(p);
    match c.strip_prefix("/") {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_cannot_climb_out() {
        assert_eq!(clean(Path::new("/a/../../b/./c")), Path::new("/b/c"));
        assert_eq!(clean(Path::new("a/../../b")), Path::new("b"));
        assert_eq!(
            below_root(Path::new("/../../etc/./passwd")),
            Path::new("etc/passwd")
        );
        assert_eq!(below_root(Path::new("/a/..")), Path::new(""));
    }
}
