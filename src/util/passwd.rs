//! Reads /etc/passwd directly: the container's for HOME, the host's for `list`'s owner. (NSS
//! through libc would need shared libraries a static husk does not load.)

/// (name, home) of `uid` in the passwd file at `path`. A fifo there (the container's own) is
/// no passwd file, rather than a wait for a writer.
pub fn lookup(path: &str, uid: u32) -> Option<(String, String)> {
    let text = String::from_utf8(super::read_regular(path.as_ref()).ok()?).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[5].to_string()))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_root() {
        let (name, home) = super::lookup("/etc/passwd", 0).expect("root in /etc/passwd");
        assert_eq!(name, "root");
        assert!(home.starts_with('/'));
        assert_eq!(super::lookup("/nonexistent/passwd", 0), None);
    }
}
