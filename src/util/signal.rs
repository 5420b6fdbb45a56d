//! Signal names as runc accepts them: `KILL`, `SIGKILL`, `kill` or a number.

use crate::error::{Error, Result};
use nix::sys::signal::Signal;
use std::str::FromStr;

pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        // 0 sends nothing: a check that the process is alive.
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::msg(format!("invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Ok(sig) = Signal::from_str(&name) {
        return Ok(sig as i32);
    }
    // Real-time signals: SIGRTMIN, SIGRTMIN+n, SIGRTMAX-n.
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let rt = match name.as_str() {
        "SIGRTMIN" => Some(rtmin),
        "SIGRTMAX" => Some(rtmax),
        n => n
            .strip_prefix("SIGRTMIN+")
            .and_then(|k| k.parse::<i32>().ok())
            .and_then(|k| rtmin.checked_add(k))
            .or_else(|| {
                n.strip_prefix("SIGRTMAX-")
                    .and_then(|k| k.parse::<i32>().ok())
                    .and_then(|k| rtmax.checked_sub(k))
            }),
    };
    match rt {
        Some(n) if (rtmin..=rtmax).contains(&n) => Ok(n),
        _ => Err(Error::msg(format!("unknown signal {s:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_forms() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert!(parse_signal("65").is_err());
        // The offset used to overflow i32 (a panic in a debug build, a wrap in release).
        assert!(parse_signal("SIGRTMIN+2147483647").is_err());
        assert!(parse_signal("RTMAX--2147483648").is_err());
    }
}
