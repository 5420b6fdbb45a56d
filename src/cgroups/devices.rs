//! Device rules as the v1 devices controller applies them: a default (allow or deny all) and
//! exceptions to it. Both cgroup versions start from this model: v1 is moved to it with the
//! fewest writes (so that `update` does not take devices away from a live container, even for a
//! moment), v2 gets it compiled into an eBPF program (bpf.rs). Holes punched into a wildcard
//! exception are refused, as runc refuses them: v1 would silently ignore them.

use crate::error::{Error, Result};
use oci_spec::runtime::LinuxDeviceCgroup;
use std::collections::BTreeMap;

pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const MKNOD: u8 = 4;

/// A device or a range of them; -1 is the wildcard. Ordered by (major, minor, kind), the order
/// runc writes rules in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dev {
    pub major: i64,
    pub minor: i64,
    /// 'b' or 'c'.
    pub kind: char,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub default_allow: bool,
    /// Devices whose access differs from the default, with the access bits concerned.
    pub exceptions: BTreeMap<Dev, u8>,
}

/// The devices every container gets after its own rules (runc's default allow list): mknod of
/// anything, the standard character devices, /dev/console, /dev/ptmx, /dev/net/tun and the ptys.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

fn access_bits(s: &str) -> u8 {
    // Like runc, letters other than r, w and m are ignored.
    s.chars().fold(0, |a, c| match c {
        'r' => a | READ,
        'w' => a | WRITE,
        'm' => a | MKNOD,
        _ => a,
    })
}

pub(super) fn access_text(bits: u8) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, c)| c)
        .collect()
}

fn num(n: i64) -> String {
    if n < 0 {
        "*".into()
    } else {
        n.to_string()
    }
}

/// A rule as the devices.allow/devices.deny files take it and devices.list shows it.
pub fn line(dev: &Dev, bits: u8) -> String {
    format!(
        "{} {}:{} {}",
        dev.kind,
        num(dev.major),
        num(dev.minor),
        access_text(bits)
    )
}

impl Rules {
    /// The container's rules: deny all, then the spec's rules in order, then the defaults.
    pub fn for_container(spec: &[LinuxDeviceCgroup]) -> Result<Rules> {
        let mut r = Rules::default();
        for (i, d) in spec.iter().enumerate() {
            let access = d.access().as_deref().unwrap_or("");
            if access.is_empty() {
                return Err(Error::msg(format!(
                    "device access at {i} field cannot be empty"
                )));
            }
            let typ = d.typ().map_or("a".to_string(), |t| t.as_str().to_string());
            let dev = match typ.as_str() {
                "a" => None,
                k @ ("b" | "c") => Some(Dev {
                    major: d.major().unwrap_or(-1),
                    minor: d.minor().unwrap_or(-1),
                    kind: k.chars().next().unwrap_or('c'),
                }),
                other => return Err(Error::msg(format!("invalid cgroup device type {other:?}"))),
            };
            r.apply(d.allow(), dev, access_bits(access))?;
        }
        for l in DEFAULT_ALLOWED {
            if let Some((dev, bits)) = parse_line(l)? {
                r.apply(true, Some(dev), bits)?;
            }
        }
        Ok(r)
    }

    /// One rule; `None` is "a" (every device), which resets the default.
    pub fn apply(&mut self, allow: bool, dev: Option<Dev>, bits: u8) -> Result<()> {
        let Some(dev) = dev else {
            *self = Rules {
                default_allow: allow,
                exceptions: BTreeMap::new(),
            };
            return Ok(());
        };
        if allow != self.default_allow {
            if bits != 0 {
                *self.exceptions.entry(dev).or_default() |= bits;
            }
            return Ok(());
        }
        // A rule like the default takes access out of the exceptions, but only out of the one
        // that names exactly this device.
        let wider = [
            Dev { major: -1, ..dev },
            Dev { minor: -1, ..dev },
            Dev {
                major: -1,
                minor: -1,
                ..dev
            },
        ];
        for w in wider.iter().filter(|w| **w != dev) {
            let held = self.exceptions.get(w).copied().unwrap_or(0);
            if held & bits != 0 {
                let kind = if self.default_allow { "deny" } else { "allow" };
                return Err(Error::msg(format!(
                    "unable to remove '{kind}' exception: requested rule [{}] not supported by \
                     devices cgroupv1 (cannot punch hole in existing wildcard rule [{}])",
                    line(&dev, bits),
                    line(w, held)
                )));
            }
        }
        if let Some(held) = self.exceptions.get_mut(&dev) {
            *held &= !bits;
            if *held == 0 {
                self.exceptions.remove(&dev);
            }
        }
        Ok(())
    }

    /// What a v1 devices.list says. It lists what is allowed: "a *:* rwm" alone means allow all
    /// (whose deny exceptions it does not show), anything else is an allow list.
    pub fn from_list(text: &str) -> Result<Rules> {
        let mut r = Rules::default();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let parsed = parse_line(l)?;
            let (dev, bits) = match parsed {
                Some((dev, bits)) => (Some(dev), bits),
                None => (None, READ | WRITE | MKNOD),
            };
            r.apply(true, dev, bits)?;
        }
        Ok(r)
    }

    /// The writes (allow?, rule) that take a v1 cgroup showing `self` to `target`. Resetting
    /// the default denies everything for a moment, so it is done only when the defaults differ
    /// or when the current deny exceptions cannot be known (allow-all lists none).
    pub fn transition(&self, target: &Rules) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let old = if self.default_allow || self.default_allow != target.default_allow {
            out.push((target.default_allow, "a *:* rwm".to_string()));
            &empty
        } else {
            &self.exceptions
        };
        for (dev, bits) in old {
            let dropped = bits & !target.exceptions.get(dev).copied().unwrap_or(0);
            if dropped != 0 {
                out.push((target.default_allow, line(dev, dropped)));
            }
        }
        for (dev, bits) in &target.exceptions {
            let gained = bits & !old.get(dev).copied().unwrap_or(0);
            if gained != 0 {
                out.push((!target.default_allow, line(dev, gained)));
            }
        }
        out
    }
}

/// "c 1:3 rwm" -> (device, access); "a ..." -> None.
fn parse_line(l: &str) -> Result<Option<(Dev, u8)>> {
    let bad = || Error::msg(format!("invalid device rule {l:?}"));
    let mut it = l.split_whitespace();
    let (kind, nums, access) = match (it.next(), it.next(), it.next()) {
        (Some(k), Some(n), Some(a)) => (k, n, a),
        (Some("a"), ..) => return Ok(None),
        _ => return Err(bad()),
    };
    let kind = match kind {
        "a" => return Ok(None),
        "b" => 'b',
        "c" => 'c',
        _ => return Err(bad()),
    };
    let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
    let n = |s: &str| -> Result<i64> {
        if s == "*" {
            Ok(-1)
        } else {
            s.parse::<u32>().map(i64::from).map_err(|_| bad())
        }
    };
    Ok(Some((
        Dev {
            major: n(major)?,
            minor: n(minor)?,
            kind,
        },
        access_bits(access),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    fn rule(
        allow: bool,
        typ: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access.to_string());
        b = match typ {
            "b" => b.typ(LinuxDeviceType::B),
            "c" => b.typ(LinuxDeviceType::C),
            _ => b.typ(LinuxDeviceType::A),
        };
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    fn lines(r: &Rules) -> Vec<String> {
        r.exceptions.iter().map(|(d, b)| line(d, *b)).collect()
    }

    #[test]
    fn deny_all_then_defaults() {
        let r = Rules::for_container(&[rule(false, "a", None, None, "rwm")]).unwrap();
        assert!(!r.default_allow);
        assert_eq!(
            lines(&r),
            [
                "b *:* m",
                "c *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
                "c 136:* rwm"
            ]
        );
    }

    #[test]
    fn exceptions_merge_and_shrink() {
        let r = Rules::for_container(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(4), None, "r"),
            rule(true, "c", Some(4), None, "w"),
            rule(true, "b", Some(8), Some(0), "rw"),
            rule(false, "b", Some(8), Some(0), "w"),
        ])
        .unwrap();
        assert!(lines(&r).contains(&"c 4:* rw".to_string()));
        assert!(lines(&r).contains(&"b 8:0 r".to_string()));
    }

    #[test]
    fn allow_all_keeps_deny_exceptions_until_defaults_lift_them() {
        let r = Rules::for_container(&[
            rule(true, "a", None, None, "rwm"),
            rule(false, "c", Some(1), Some(3), "rw"),
            rule(false, "b", Some(8), Some(0), "w"),
        ])
        .unwrap();
        assert!(r.default_allow);
        // The default allow list re-allows /dev/null; the block device stays denied.
        assert_eq!(lines(&r), ["b 8:0 w"]);
    }

    #[test]
    fn punching_a_hole_is_refused_like_runc() {
        let e = Rules::for_container(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), None, "rw"),
            rule(false, "c", Some(1), Some(3), "w"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to remove 'allow' exception: requested rule [c 1:3 w] not supported by \
             devices cgroupv1 (cannot punch hole in existing wildcard rule [c 1:* rw])"
        );
    }

    #[test]
    fn bad_rules_are_named_like_runc() {
        let mut r = rule(false, "a", None, None, "");
        assert_eq!(
            Rules::for_container(&[r.clone()]).unwrap_err().to_string(),
            "device access at 0 field cannot be empty"
        );
        r.set_access(Some("rwm".into()));
        r.set_typ(Some(LinuxDeviceType::P));
        assert_eq!(
            Rules::for_container(&[r]).unwrap_err().to_string(),
            "invalid cgroup device type \"p\""
        );
    }

    #[test]
    fn transition_writes_only_the_difference() {
        let target = Rules::for_container(&[]).unwrap();
        // A fresh cgroup below an allow-all parent: reset, then every allow.
        let fresh = Rules::from_list("a *:* rwm\n").unwrap();
        let t = fresh.transition(&target);
        assert_eq!(t[0], (false, "a *:* rwm".to_string()));
        assert_eq!(t.len(), 1 + target.exceptions.len());
        assert!(t[1..].iter().all(|(allow, _)| *allow));
        // Already there: nothing to write.
        let list: String = lines(&target).iter().map(|l| format!("{l}\n")).collect();
        assert!(Rules::from_list(&list)
            .unwrap()
            .transition(&target)
            .is_empty());
        // One device more, one less: one deny, one allow, no reset.
        let mut more = target.clone();
        more.apply(
            true,
            Some(Dev {
                major: 10,
                minor: 229,
                kind: 'c',
            }),
            READ | WRITE,
        )
        .unwrap();
        more.apply(
            false,
            Some(Dev {
                major: 1,
                minor: 9,
                kind: 'c',
            }),
            WRITE,
        )
        .unwrap();
        assert_eq!(
            Rules::from_list(&list).unwrap().transition(&more),
            [
                (false, "c 1:9 w".to_string()),
                (true, "c 10:229 rw".to_string())
            ]
        );
    }
}
