//! runc's log output: logrus text (`time="..." level=error msg="..."`) or JSON lines
//! (`{"level":"error","msg":"...","time":"..."}`), to `--log FILE` or stderr. containerd's shim
//! reads the last JSON line of the log file to report why a command failed.

use crate::util::timefmt::rfc3339_now_secs;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

pub struct Logger {
    file: Option<File>,
    json: bool,
    level: log::LevelFilter,
}

impl Logger {
    /// Installs the global logger. A log file that cannot be opened falls back to stderr, with
    /// a message, rather than hiding the command's own error; so does a fifo that nobody reads,
    /// which a plain open would wait on forever.
    pub fn init(path: Option<&Path>, json: bool, debug: bool) {
        let file = path.and_then(|p| match open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("husk: cannot open log file {}: {e}", p.display());
                None
            }
        });
        let level = if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Warn
        };
        let logger = Box::leak(Box::new(Logger { file, json, level }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(level);
        }
    }

    fn format(&self, level: log::Level, msg: &str) -> String {
        let level = match level {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        let time = rfc3339_now_secs();
        if self.json {
            let mut line = String::with_capacity(msg.len() + 64);
            line.push_str("{\"level\":\"");
            line.push_str(level);
            line.push_str("\",\"msg\":");
            line.push_str(&serde_json::to_string(msg).unwrap_or_else(|_| "\"\"".into()));
            line.push_str(",\"time\":\"");
            line.push_str(&time);
            line.push_str("\"}\n");
            line
        } else {
            format!("time=\"{time}\" level={level} msg={}\n", quote_logfmt(msg))
        }
    }
}

/// Opens the log for appending without waiting for a fifo's reader (ENXIO if there is none);
/// writes then block as usual, so that no line is lost to a slow reader.
fn open(path: &Path) -> std::io::Result<File> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::unix::fs::OpenOptionsExt;
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let flags = OFlag::from_bits_truncate(fcntl(&f, FcntlArg::F_GETFL)?);
    fcntl(&f, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(f)
}

/// logrus quotes a value only when it holds characters outside a safe set.
fn quote_logfmt(msg: &str) -> String {
    let plain = !msg.is_empty()
        && msg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        msg.to_string()
    } else {
        serde_json::to_string(msg).unwrap_or_else(|_| format!("\"{msg}\""))
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = self.format(record.level(), &record.args().to_string());
        // A failed log write has nowhere better to be reported.
        match &self.file {
            Some(f) => {
                let _ = (&*f).write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_runc_key_order() {
        let l = Logger {
            file: None,
            json: true,
            level: log::LevelFilter::Warn,
        };
        let line = l.format(log::Level::Error, "container \"x\" does not exist");
        assert!(line.starts_with(
            "{\"level\":\"error\",\"msg\":\"container \\\"x\\\" does not exist\",\"time\":\""
        ));
        assert!(line.ends_with("Z\"}\n"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
    }

    #[test]
    fn text_line_quotes_like_logrus() {
        let l = Logger {
            file: None,
            json: false,
            level: log::LevelFilter::Warn,
        };
        let line = l.format(log::Level::Error, "container does not exist");
        assert!(
            line.contains(" level=error msg=\"container does not exist\"\n"),
            "{line}"
        );
        assert!(l
            .format(log::Level::Warn, "plain")
            .ends_with("level=warning msg=plain\n"));
    }
}
