//! Docker's output formats: its tables (Go's tabwriter with minwidth 10, padding 3), its
//! human durations and sizes (go-units), its short IDs.

use std::time::{SystemTime, UNIX_EPOCH};

/// Rows of cells printed as Docker's tables are: every column but the last padded to its widest
/// cell plus 3, and at least 10.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let w = (width[i] + 3).max(10);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// go-units' HumanDuration, for "Up 5 seconds" and "2 minutes ago".
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0 + 0.5) as i64;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(now() - unix))
}

/// Go's `%.<digits>g` for the small positive values sizes are printed with.
fn sig(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let int_digits = (v.abs().log10().floor() as i32 + 1).max(1);
    let decimals = (digits - int_digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn custom_size(size: f64, base: f64, units: &[&str], digits: i32) -> String {
    let mut v = size;
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", sig(v, digits), units[i])
}

/// go-units' HumanSizeWithPrecision(size, 3): decimal units, as `docker images` prints.
pub fn human_size(bytes: f64) -> String {
    custom_size(
        bytes,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
        3,
    )
}

/// go-units' BytesSize: binary units, as `docker stats` prints memory.
pub fn bytes_size(bytes: f64) -> String {
    custom_size(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
        4,
    )
}

/// An ID as `docker ps` shows it: without `sha256:`, 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's Ellipsis: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size(1_240_000.0), "1.24MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(4_270_000.0), "4.27MB");
        assert_eq!(human_size(12_500.0), "12.5kB");
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(bytes_size(1024.0 * 1024.0 * 1.5), "1.5MiB");
        assert_eq!(bytes_size(532.0 * 1024.0), "532KiB");
    }

    #[test]
    fn durations_as_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn table_pads_as_tabwriter() {
        let t = table(&[
            vec!["REPOSITORY".into(), "TAG".into(), "SIZE".into()],
            vec!["busybox".into(), "latest".into(), "1.24MB".into()],
        ]);
        assert_eq!(
            t,
            "REPOSITORY   TAG       SIZE\nbusybox      latest    1.24MB\n"
        );
        assert_eq!(
            ellipsis("sh -c 'echo hello; sleep 100'", 20)
                .chars()
                .count(),
            20
        );
    }
}
