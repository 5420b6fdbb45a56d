//! `events`: a container's resource usage as JSON lines shaped like runc's `types.Event`, once
//! (`--stats`) or every interval along with OOM kills as they happen, until the container's
//! cgroup goes away (see cgroups::oom for when that is). One thread: poll on a timerfd and the
//! OOM watch's descriptor.

use crate::cgroups::oom::Notice;
use crate::cgroups::stats::Stats;
use crate::container;
use crate::container::state::Status;
use crate::error::{Context, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use serde::Serialize;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Stats>,
}

pub fn run(root: &Path, e: &crate::cli::Events) -> anyhow::Result<i32> {
    watch(root, &e.id, &e.interval, e.stats)?;
    Ok(0)
}

/// Runs `events` for container `id`; `interval` is a Go duration ("5s", "100ms", "1m30s").
fn watch(root: &Path, id: &str, interval: &str, stats_only: bool) -> Result<()> {
    // runc's checks, in runc's order: the flag's syntax, the container, the interval's sign,
    // the container's status.
    let nanos = parse_go_duration(interval).ok_or_else(|| {
        Error::msg(format!(
            "invalid value {interval:?} for flag -interval: parse error"
        ))
    })?;
    let (dir, state) = container::open_existing(root, id)?;
    if nanos <= 0 {
        return Err(Error::msg("duration interval must be greater than 0"));
    }
    if state.status(&dir) == Status::Stopped {
        return Err(Error::msg(format!("container with id {id} is not running")));
    }
    let cg = crate::rootless::from_state(&state.cgroup_paths);
    let stats = || cg.stats().ctx("unable to get container cgroup stats");
    let mut out = std::io::stdout().lock();
    if stats_only {
        return emit(&mut out, "stats", id, Some(&stats()?));
    }
    let mut watch = cg.oom_watch()?;
    let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC).ctx("timerfd")?;
    let every = TimeSpec::from_duration(Duration::from_nanos(nanos as u64));
    timer
        .set(Expiration::Interval(every), TimerSetTimeFlags::empty())
        .ctx("arm timerfd")?;
    loop {
        // The watch first: once the cgroup is gone there are no stats left to read.
        for notice in watch.notices()? {
            match notice {
                Notice::Oom => emit(&mut out, "oom", id, None)?,
                Notice::Gone => return Ok(()),
            }
        }
        let mut fds = [
            PollFd::new(watch.fd(), PollFlags::POLLIN),
            PollFd::new(timer.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).ctx("poll"),
        }
        let tick = fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if tick {
            timer.wait().ctx("read timerfd")?;
            // As runc: a failed reading is logged and the stream goes on.
            match stats() {
                Ok(s) => emit(&mut out, "stats", id, Some(&s))?,
                Err(e) => log::error!("{e}"),
            }
        }
    }
}

/// One event as a JSON line (Go's json.Encoder), flushed at once for readers of a pipe.
fn emit(out: &mut impl Write, kind: &str, id: &str, data: Option<&Stats>) -> Result<()> {
    let mut line = serde_json::to_vec(&Event { kind, id, data })
        .map_err(|e| Error::msg(format!("encode event: {e}")))?;
    line.push(b'\n');
    out.write_all(&line)
        .and_then(|()| out.flush())
        .ctx("write event")
}

/// Go's time.ParseDuration, in nanoseconds: a sign, then one or more decimal numbers each with
/// a unit (ns, us, µs, ms, s, m, h), e.g. "1h2m3.5s"; "0" needs no unit. None if malformed or
/// out of range.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (neg, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int, rest) = s.split_at(int_len);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(r) => r.split_at(r.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", rest),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        total = total.checked_add(whole.checked_mul(scale)?)?;
        if !frac.is_empty() {
            // Go keeps the fraction's leading digits that fit and scales in floating point.
            let digits = &frac[..frac.len().min(18)];
            let f: u64 = digits.parse().ok()?;
            total += (f as f64 * (scale as f64 / 10f64.powi(digits.len() as i32))) as u128;
        }
        if total > 1 << 63 {
            return None;
        }
        s = rest;
    }
    if neg {
        Some((total as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(total).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = 1_000_000;
        assert_eq!(parse_go_duration("5s"), Some(5_000 * ms));
        assert_eq!(parse_go_duration("100ms"), Some(100 * ms));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000 * ms));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000 * ms));
        assert_eq!(parse_go_duration(".5s"), Some(500 * ms));
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(3_723_500 * ms));
        assert_eq!(parse_go_duration("2µs"), Some(2_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("-1s"), Some(-1_000 * ms));
        assert_eq!(parse_go_duration("+3ns"), Some(3));
        for bad in ["", "5", "1x", "s", ".s", "1s2", "-", "1e3s", "9999999999h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn event_lines_look_like_runc() {
        let mut out = Vec::new();
        emit(&mut out, "oom", "c1", None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"oom\",\"id\":\"c1\"}\n"
        );
        let mut out = Vec::new();
        emit(&mut out, "stats", "c1", Some(&Stats::default())).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.starts_with("{\"type\":\"stats\",\"id\":\"c1\",\"data\":{\"cpu\":{"),
            "{line}"
        );
    }
}
