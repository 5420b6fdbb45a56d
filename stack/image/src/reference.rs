//! Image references (`busybox`, `busybox:1.36`, `127.0.0.1:5000/a/b:tag`), in the short form
//! Docker shows them.

use crate::{Error, Result};

/// `name:tag` with `:latest` added when no tag is given and Docker Hub's default prefixes
/// (`docker.io/library/`, `docker.io/`) dropped, so that `docker.io/library/busybox` and
/// `busybox` name one image. Digest references (`name@sha256:…`) are not tags and refused.
pub fn normalize(reference: &str) -> Result<String> {
    let bad = || Error::Reference(reference.to_string());
    if reference.contains('@') {
        return Err(bad());
    }
    let short = [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ]
    .iter()
    .find_map(|p| reference.strip_prefix(p))
    .unwrap_or(reference);
    let (name, tag) = match short.rfind(':') {
        Some(i) if !short[i..].contains('/') => (&short[..i], &short[i + 1..]),
        _ => (short, "latest"),
    };
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !tag_ok || name.is_empty() {
        return Err(bad());
    }
    for (i, part) in name.split('/').enumerate() {
        // The first of several components may be a registry host, with a port and capitals.
        let host =
            i == 0 && name.contains('/') && (part.contains(['.', ':']) || part == "localhost");
        let ok = !part.is_empty()
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"._-".contains(&b)
                    || (host && (b == b':' || b.is_ascii_uppercase()))
            });
        if !ok {
            return Err(bad());
        }
    }
    Ok(format!("{name}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn forms() {
        assert_eq!(normalize("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            normalize("docker.io/library/busybox:1.36").unwrap(),
            "busybox:1.36"
        );
        assert_eq!(normalize("docker.io/me/app").unwrap(), "me/app:latest");
        assert_eq!(
            normalize("127.0.0.1:5000/a/b:v1").unwrap(),
            "127.0.0.1:5000/a/b:v1"
        );
        assert_eq!(
            normalize("127.0.0.1:5000/a").unwrap(),
            "127.0.0.1:5000/a:latest"
        );
        for bad in [
            "",
            "Busybox",
            "a:",
            "a:b:c",
            "a b",
            "a@sha256:00",
            "a//b",
            ":x",
            "a:.x",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
