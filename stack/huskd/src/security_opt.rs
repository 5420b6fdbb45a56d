//! `HostConfig.SecurityOpt` other than seccomp (seccomp.rs): moby's parseSecurityOpt, with its
//! error words. This host has neither AppArmor nor SELinux, so dockerd would drop a profile or a
//! label without a word; huskd takes only what asks for no confinement and refuses the rest,
//! naming it, rather than run a container less confined than it was asked to be.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecurityOptError(String);

#[derive(Debug, Default, PartialEq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    /// An AppArmor profile other than `unconfined`; the runtime applies it, or fails naming it
    /// where AppArmor is off.
    pub apparmor: Option<String>,
}

pub fn parse(host: &Value) -> Result<SecurityOpts, SecurityOptError> {
    let mut out = SecurityOpts::default();
    for opt in host["SecurityOpt"].as_array().into_iter().flatten() {
        let Some(opt) = opt.as_str() else {
            return Err(SecurityOptError(format!(
                "HostConfig.SecurityOpt: {opt} is not a string"
            )));
        };
        match opt {
            "no-new-privileges" => {
                out.no_new_privileges = true;
                continue;
            }
            // The old spelling of label=disable.
            "disable" => continue,
            _ => {}
        }
        let Some((k, v)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(SecurityOptError(format!(
                "invalid --security-opt 1: {opt:?}"
            )));
        };
        match (k, v) {
            ("seccomp", _) | ("label", "disable") | ("apparmor", "unconfined") => {}
            ("no-new-privileges", v) => {
                out.no_new_privileges = go_bool(v)
                    .ok_or_else(|| SecurityOptError(format!("invalid --security-opt 2: {opt:?}")))?
            }
            ("apparmor", v) => out.apparmor = Some(v.to_owned()),
            ("label", _) => {
                return Err(SecurityOptError(format!(
                    "HostConfig.SecurityOpt: {opt}: SELinux labels are not supported by huskd (only label=disable)"
                )))
            }
            _ => return Err(SecurityOptError(format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    Ok(out)
}

/// Go's strconv.ParseBool.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(opts: &[&str]) -> Result<SecurityOpts, SecurityOptError> {
        parse(&json!({ "SecurityOpt": opts }))
    }

    #[test]
    fn no_new_privileges_in_moby_spellings() {
        assert!(!of(&[]).unwrap().no_new_privileges);
        for yes in [
            &["no-new-privileges"][..],
            &["no-new-privileges=true"],
            &["no-new-privileges:1"],
        ] {
            assert!(of(yes).unwrap().no_new_privileges, "{yes:?}");
        }
        assert!(
            !of(&["no-new-privileges", "no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        let e = of(&["no-new-privileges=maybe"]).unwrap_err().to_string();
        assert_eq!(e, r#"invalid --security-opt 2: "no-new-privileges=maybe""#);
    }

    #[test]
    fn unconfined_is_taken_confinement_is_passed_on_or_refused() {
        let ok = of(&[
            "apparmor=unconfined",
            "label=disable",
            "label:disable",
            "disable",
            "seccomp=unconfined",
        ]);
        assert_eq!(ok.unwrap(), SecurityOpts::default());
        assert_eq!(
            of(&["apparmor=docker-default"])
                .unwrap()
                .apparmor
                .as_deref(),
            Some("docker-default")
        );
        let e = of(&["label=type:svirt_apache_t"]).unwrap_err().to_string();
        assert!(e.contains("label=type:svirt_apache_t"), "{e}");
        let e = of(&["bogus=1"]).unwrap_err().to_string();
        assert_eq!(e, r#"invalid --security-opt 2: "bogus=1""#);
        let e = of(&["bogus"]).unwrap_err().to_string();
        assert_eq!(e, r#"invalid --security-opt 1: "bogus""#);
        assert!(parse(&json!({"SecurityOpt": [1]})).is_err());
    }
}
