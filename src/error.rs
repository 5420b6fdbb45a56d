//! The library's error type. Messages are lower-case and name the path or field involved, as
//! runc's do; containerd surfaces the last one to its user.

use std::fmt::Display;

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("container does not exist")]
    NotExist,
    #[error("container with given ID already exists")]
    Exists(String),
    #[error("container not running")]
    NotRunning,
    #[error("container not paused")]
    NotPaused,
    /// The init's last words: why the container's process could not start.
    #[error("unable to start container process: {0}")]
    StartFailed(String),
    /// A message from the other side of the sync channel that does not fit the protocol.
    #[error("unexpected message from {from}: {msg}")]
    Protocol { from: &'static str, msg: String },
    #[error("{0}")]
    Msg(String),
    #[error("{ctx}: {}", errno_text(*errno))]
    Sys { ctx: String, errno: nix::Error },
    #[error("{ctx}: {}", io_text(err))]
    Io { ctx: String, err: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn msg(m: impl Into<String>) -> Self {
        Error::Msg(m.into())
    }
}

/// Attaches what was being done (and to which path) to a syscall or I/O error.
pub trait Context<T> {
    fn ctx<D: Display>(self, what: D) -> Result<T>;
    fn with_ctx<D: Display, F: FnOnce() -> D>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx<D: Display>(self, what: D) -> Result<T> {
        self.map_err(|errno| Error::Sys {
            ctx: what.to_string(),
            errno,
        })
    }
    fn with_ctx<D: Display, F: FnOnce() -> D>(self, f: F) -> Result<T> {
        self.map_err(|errno| Error::Sys {
            ctx: f().to_string(),
            errno,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx<D: Display>(self, what: D) -> Result<T> {
        self.map_err(|err| Error::Io {
            ctx: what.to_string(),
            err,
        })
    }
    fn with_ctx<D: Display, F: FnOnce() -> D>(self, f: F) -> Result<T> {
        self.map_err(|err| Error::Io {
            ctx: f().to_string(),
            err,
        })
    }
}

/// More context on one of our own errors keeps its errno, so callers can still match it.
impl<T> Context<T> for Result<T> {
    fn ctx<D: Display>(self, what: D) -> Result<T> {
        self.map_err(|e| e.wrap(what))
    }
    fn with_ctx<D: Display, F: FnOnce() -> D>(self, f: F) -> Result<T> {
        self.map_err(|e| e.wrap(f()))
    }
}

impl<T> Context<T> for std::result::Result<T, caps::errors::CapsError> {
    fn ctx<D: Display>(self, what: D) -> Result<T> {
        self.map_err(|e| Error::Msg(format!("{what}: {e}")))
    }
    fn with_ctx<D: Display, F: FnOnce() -> D>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Msg(format!("{}: {e}", f())))
    }
}

/// procfs's errors as the errno behind them, so that they read like the others.
impl<T> Context<T> for std::result::Result<T, procfs::ProcError> {
    fn ctx<D: Display>(self, what: D) -> Result<T> {
        self.with_ctx(|| what)
    }
    fn with_ctx<D: Display, F: FnOnce() -> D>(self, f: F) -> Result<T> {
        use nix::errno::Errno;
        use procfs::ProcError;
        self.map_err(|e| {
            let ctx = f().to_string();
            match e {
                ProcError::PermissionDenied(_) => Error::Sys {
                    ctx,
                    errno: Errno::EACCES,
                },
                ProcError::NotFound(_) => Error::Sys {
                    ctx,
                    errno: Errno::ENOENT,
                },
                ProcError::Io(err, _) => Error::Io { ctx, err },
                e => Error::Msg(format!("{ctx}: {e}")),
            }
        })
    }
}

impl Error {
    fn wrap<D: Display>(self, what: D) -> Error {
        match self {
            Error::Sys { ctx, errno } => Error::Sys {
                ctx: format!("{what}: {ctx}"),
                errno,
            },
            Error::Io { ctx, err } => Error::Io {
                ctx: format!("{what}: {ctx}"),
                err,
            },
            e => Error::Msg(format!("{what}: {e}")),
        }
    }

    /// The errno behind this error, if it came from a syscall.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { err, .. } => err.raw_os_error().map(nix::errno::Errno::from_raw),
            _ => None,
        }
    }
}

/// An errno as Go prints it ("no such file or directory"), which is what runc's callers match.
pub fn errno_text(e: nix::errno::Errno) -> String {
    e.desc().to_lowercase()
}

pub(crate) fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(nix::errno::Errno::from_raw(n)),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_go() {
        let e: Result<()> = Err(nix::errno::Errno::ENOENT).ctx("open /x");
        assert_eq!(
            e.unwrap_err().to_string(),
            "open /x: no such file or directory"
        );
        let e: Result<()> = std::fs::read("/nonexistent/husk")
            .map(drop)
            .ctx("read /nonexistent/husk");
        assert_eq!(
            e.unwrap_err().to_string(),
            "read /nonexistent/husk: no such file or directory"
        );
    }
}
