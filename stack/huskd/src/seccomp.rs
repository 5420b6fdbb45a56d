//! A container's `linux.seccomp`, as Docker chooses and builds it: no filter for `--privileged`
//! or `seccomp=unconfined`; otherwise Docker's default profile (or the one the client sent in
//! `HostConfig.SecurityOpt`), cut down to this machine and the container's capabilities the way
//! moby's `seccomp.Setup` does it.
//!
//! seccomp_default.json is moby's profiles/seccomp/default.json (Apache-2.0; the version of
//! Docker 24 to 27), laid out more compactly but otherwise the same data. It keeps moby's own
//! schema, which is also what `docker run --security-opt seccomp=<file>` sends (the CLI reads the
//! file and sends its JSON), so one code path serves both.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};

const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

/// A profile the container's filter cannot be made from: the message names the option or field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SeccompError(String);

/// moby's profile (profiles/seccomp `Seccomp`): a runtime-spec `linux.seccomp` whose rules carry
/// conditions, and an `archMap` from the native architecture to the ones it also runs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    /// Passed through as given: the runtime checks them.
    #[serde(default)]
    args: Vec<Value>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

/// When a rule applies: every capability held (or, in `excludes`, any), the architecture among
/// these (Go's names: amd64, x86, arm64...), the kernel at least this version.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

/// What `HostConfig.SecurityOpt` asks of seccomp; the last `seccomp=` wins, as in moby.
#[derive(Debug, PartialEq)]
enum Choice {
    Default,
    Unconfined,
    Custom(String),
}

fn choice(host: &Value) -> Result<Choice, SeccompError> {
    let mut choice = Choice::Default;
    for opt in host["SecurityOpt"].as_array().into_iter().flatten() {
        let Some(opt) = opt.as_str() else {
            return Err(SeccompError(format!(
                "HostConfig.SecurityOpt: {opt} is not a string"
            )));
        };
        // moby still takes the old `seccomp:value` form.
        let Some(value) = opt
            .strip_prefix("seccomp=")
            .or_else(|| opt.strip_prefix("seccomp:"))
        else {
            continue;
        };
        choice = match value {
            "unconfined" => Choice::Unconfined,
            "builtin" => Choice::Default,
            v if v.trim_start().starts_with('{') => Choice::Custom(v.to_string()),
            v => {
                return Err(SeccompError(format!(
                    "HostConfig.SecurityOpt: seccomp={v}: expected unconfined, builtin or a profile's JSON (the client reads a profile file and sends its content)"
                )))
            }
        };
    }
    Ok(choice)
}

/// Go's name for this architecture, the one the profile's `arches` use.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    }
}

/// libseccomp's name for Go's architecture (moby's `nativeToSeccomp`).
fn native_seccomp_arch(go: &str) -> Option<&'static str> {
    Some(match go {
        "amd64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390x" => "SCMP_ARCH_S390X",
        _ => return None,
    })
}

/// `major.minor[.patch]` from a kernel release ("6.1.0-18-amd64") or a `minKernel`; what is
/// not a number ends the version.
fn version(s: &str) -> Option<[u32; 3]> {
    let mut v = [0u32; 3];
    let mut parts = s.trim().splitn(3, '.');
    for (i, slot) in v.iter_mut().enumerate() {
        let Some(p) = parts.next() else { break };
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse() {
            Ok(n) => *slot = n,
            Err(_) if i >= 2 => break,
            Err(_) => return None,
        }
    }
    Some(v)
}

fn kernel() -> Result<[u32; 3], SeccompError> {
    static KERNEL: OnceLock<Option<[u32; 3]>> = OnceLock::new();
    KERNEL
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .and_then(|r| version(&r))
        })
        .ok_or_else(|| {
            SeccompError(
                "seccomp: cannot read the kernel version from /proc/sys/kernel/osrelease".into(),
            )
        })
}

fn at_least(min: &str, field: &str, kernel: [u32; 3]) -> Result<bool, SeccompError> {
    let min = version(min).ok_or_else(|| {
        SeccompError(format!(
            "{field}.minKernel: {min:?} is not a kernel version"
        ))
    })?;
    Ok(kernel >= min)
}

/// moby's `setupSeccomp`: the rules that apply to `arch`, `kernel` and the bounding set `caps`,
/// as a runtime-spec `linux.seccomp`; None for a profile with neither default action nor rules.
fn setup(
    p: Profile,
    caps: &[String],
    arch: &str,
    kernel: impl Fn() -> Result<[u32; 3], SeccompError>,
) -> Result<Option<Value>, SeccompError> {
    if p.default_action.is_empty() && p.syscalls.is_empty() {
        return Ok(None);
    }
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err(SeccompError(
            "seccomp profile: both architectures and archMap are given, use one".into(),
        ));
    }
    let mut arches = p.architectures;
    let native = native_seccomp_arch(arch);
    for m in p.arch_map {
        if Some(m.architecture.as_str()) == native {
            arches.push(m.architecture);
            arches.extend(m.sub_architectures);
        }
    }
    let held = |c: &String| caps.contains(c);
    let mut rules = Vec::new();
    for (i, r) in p.syscalls.into_iter().enumerate() {
        let field = format!("seccomp profile: syscalls[{i}]");
        let names = match (r.name.is_empty(), r.names.is_empty()) {
            (false, false) => {
                return Err(SeccompError(format!(
                    "{field}: both name and names are given, use one"
                )))
            }
            (false, true) => vec![r.name],
            _ => r.names,
        };
        if let Some(ex) = &r.excludes {
            if ex.arches.iter().any(|a| a == arch) || ex.caps.iter().any(held) {
                continue;
            }
            if let Some(min) = &ex.min_kernel {
                if at_least(min, &format!("{field}.excludes"), kernel()?)? {
                    continue;
                }
            }
        }
        if let Some(inc) = &r.includes {
            if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
                continue;
            }
            if !inc.caps.iter().all(held) {
                continue;
            }
            if let Some(min) = &inc.min_kernel {
                if !at_least(min, &format!("{field}.includes"), kernel()?)? {
                    continue;
                }
            }
        }
        let mut rule = json!({"names": names, "action": r.action});
        if let Some(e) = r.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if !r.args.is_empty() {
            rule["args"] = json!(r.args);
        }
        rules.push(rule);
    }
    let mut out = json!({"defaultAction": p.default_action, "syscalls": rules});
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    if !p.flags.is_empty() {
        out["flags"] = json!(p.flags);
    }
    if let Some(l) = p.listener_path {
        out["listenerPath"] = json!(l);
    }
    if let Some(m) = p.listener_metadata {
        out["listenerMetadata"] = json!(m);
    }
    Ok(Some(out))
}

fn parse(json: &str) -> Result<Profile, SeccompError> {
    serde_json::from_str(json)
        .map_err(|e| SeccompError(format!("HostConfig.SecurityOpt: seccomp profile: {e}")))
}

/// The container's `linux.seccomp`, or None when it runs without a filter. `caps` is the
/// bounding set the spec gives the process.
pub fn for_container(host: &Value, caps: &[String]) -> Result<Option<Value>, SeccompError> {
    // moby checks unconfined before privileged, so a bad seccomp= is an error even then.
    let choice = choice(host)?;
    if choice == Choice::Unconfined || host["Privileged"].as_bool() == Some(true) {
        return Ok(None);
    }
    let profile = match &choice {
        Choice::Custom(json) => parse(json)?,
        _ => parse(DEFAULT_PROFILE).expect("the built-in profile parses"),
    };
    setup(profile, caps, go_arch(), kernel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(extra: &[&str]) -> Vec<String> {
        ["CAP_CHOWN", "CAP_SYS_CHROOT", "CAP_KILL"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    }

    fn rules_for<'a>(s: &'a Value, name: &str) -> Vec<&'a Value> {
        s["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().contains(&json!(name)))
            .collect()
    }

    fn default_for(host: &Value, extra: &[&str]) -> Value {
        for_container(host, &caps(extra)).unwrap().unwrap()
    }

    #[test]
    fn default_caps_deny_mount_and_filter_clone() {
        let s = default_for(&json!({}), &[]);
        assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(s["defaultErrnoRet"], 1);
        if go_arch() == "amd64" {
            assert_eq!(
                s["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
            assert_eq!(rules_for(&s, "arch_prctl").len(), 1);
        }
        for denied in ["mount", "umount2", "setns", "unshare", "reboot", "bpf"] {
            assert!(rules_for(&s, denied).is_empty(), "{denied}");
        }
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0]["args"],
            json!([{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0]["errnoRet"], 38);
        assert_eq!(rules_for(&s, "chroot").len(), 1);
        assert_eq!(rules_for(&s, "personality").len(), 5);
        assert_eq!(rules_for(&s, "socket")[0]["args"][0]["value"], 40);
        // minKernel 4.8, and this machine's kernel is newer.
        assert_eq!(rules_for(&s, "ptrace").len(), 1);
        assert!(rules_for(&s, "s390_runtime_instr").is_empty());
    }

    #[test]
    fn sys_admin_unlocks_mount_and_plain_clone() {
        let s = default_for(&json!({}), &["CAP_SYS_ADMIN"]);
        assert_eq!(rules_for(&s, "mount").len(), 1);
        assert_eq!(rules_for(&s, "setns").len(), 1);
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].get("args").is_none());
        assert!(rules_for(&s, "clone3")
            .iter()
            .all(|r| r["action"] == "SCMP_ACT_ALLOW"));
        let s = default_for(&json!({}), &["CAP_SYS_PTRACE"]);
        assert_eq!(rules_for(&s, "kcmp").len(), 1);
    }

    #[test]
    fn privileged_and_unconfined_have_no_filter() {
        let none = |h: Value| for_container(&h, &caps(&[])).unwrap().is_none();
        assert!(none(json!({"Privileged": true})));
        assert!(none(json!({"SecurityOpt": ["seccomp=unconfined"]})));
        assert!(none(json!({"SecurityOpt": ["seccomp:unconfined"]})));
        assert!(!none(
            json!({"SecurityOpt": ["no-new-privileges", "seccomp=builtin"]})
        ));
        assert!(!none(
            json!({"SecurityOpt": ["seccomp=unconfined", "seccomp=builtin"]})
        ));
    }

    #[test]
    fn custom_profile_as_the_client_sends_it() {
        let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO"},
            {"names":["chmod"],"action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        let h = json!({"SecurityOpt": [format!("seccomp={p}")]});
        let s = default_for(&h, &[]);
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(s["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(
            s["syscalls"],
            json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
        );
        // An empty profile means no filter, as in moby.
        let h = json!({"SecurityOpt": ["seccomp={}"]});
        assert!(for_container(&h, &caps(&[])).unwrap().is_none());
    }

    #[test]
    fn bad_options_name_themselves() {
        let err = |opt: &str, privileged: bool| {
            let h = json!({"SecurityOpt": [opt], "Privileged": privileged});
            for_container(&h, &caps(&[])).unwrap_err().0
        };
        // Refused even when privileged, as moby parses the option first.
        let e = err("seccomp=/etc/profile.json", true);
        assert!(e.contains("seccomp=/etc/profile.json"), "{e}");
        for (opt, says) in [
            ("seccomp={not json", "seccomp profile"),
            (
                r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "syscalls[0]",
            ),
            (
                r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
                "archMap",
            ),
        ] {
            let e = err(opt, false);
            assert!(e.contains(says), "{opt}: {e}");
        }
    }

    #[test]
    fn min_kernel_and_arch_filters() {
        let p = |min: &str| {
            parse(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{{"minKernel":"{min}"}}}},
                {{"names":["b"],"action":"SCMP_ACT_ALLOW","excludes":{{"minKernel":"{min}"}}}},
                {{"names":["c"],"action":"SCMP_ACT_ALLOW","includes":{{"arches":["arm64"]}}}}]}}"#
            ))
            .unwrap()
        };
        let names = |s: Value| -> Vec<String> {
            s["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["names"][0].as_str().unwrap().to_string())
                .collect()
        };
        let k = || Ok([5, 10, 0]);
        let s = setup(p("5.10"), &[], "amd64", k).unwrap().unwrap();
        assert_eq!(names(s), ["a"]);
        let s = setup(p("5.11"), &[], "arm64", k).unwrap().unwrap();
        assert_eq!(names(s), ["b", "c"]);
        assert!(setup(p("x"), &[], "amd64", k)
            .unwrap_err()
            .0
            .contains("minKernel"));
        assert_eq!(version("6.1.0-18-amd64"), Some([6, 1, 0]));
        assert_eq!(version("4.8"), Some([4, 8, 0]));
        assert_eq!(version("6.18.3+"), Some([6, 18, 3]));
    }
}
