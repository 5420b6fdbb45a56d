//! The options containerd's CRI plugin sends every runtime type but runc's:
//! `runtimeoptions.v1.Options` { TypeUrl = 1, ConfigPath = 2, ConfigBody = 3 }. ConfigPath
//! names a TOML file; containerd 1.7 sends the runtime's whole `options` table as ConfigBody
//! when ConfigPath is empty (1.6 drops every key but the two). Either TOML holds runc's options
//! under the names containerd's config gives them (`SystemdCgroup = true`, `BinaryName = ...`),
//! so an operator can set for `io.containerd.husk.v2` what they set for runc's type. gVisor's
//! shim takes its own options the same way.

use containerd_shim::protos::protobuf::{CodedInputStream, UnknownFields};
use containerd_shim::protos::shim::oci::Options;

/// The CRI plugin's options type, as the Any's type URL ends.
pub const TYPE: &str = "runtimeoptions.v1.Options";
/// runc's options type: the only TypeUrl these options may name.
pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";

/// runc's options from the CRI plugin's message (the Any's value). Every error is one line
/// that names the field, the file or the key.
pub fn parse(value: &[u8]) -> Result<Options, String> {
    let (type_url, path, body) =
        decode(value).map_err(|e| format!("runtime options ({TYPE}): {e}"))?;
    check_type_url(&type_url).map_err(|e| format!("runtime options: TypeUrl {e}"))?;
    if !path.is_empty() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("runtime options: ConfigPath {path}: {e}"))?;
        return from_toml(&text).map_err(|e| format!("runtime options: ConfigPath {path}: {e}"));
    }
    let text = String::from_utf8(body)
        .map_err(|_| "runtime options: ConfigBody is not UTF-8 text".to_string())?;
    from_toml(&text).map_err(|e| format!("runtime options: ConfigBody: {e}"))
}

fn check_type_url(url: &str) -> Result<(), String> {
    if url.is_empty() || url.ends_with(RUNC_OPTIONS) {
        Ok(())
    } else {
        Err(format!(
            "{url:?}: only runc's options ({RUNC_OPTIONS}) are understood"
        ))
    }
}

/// TypeUrl, ConfigPath and ConfigBody, by hand: the protos this shim is built with do not have
/// the message, and it is three fields.
fn decode(value: &[u8]) -> Result<(String, String, Vec<u8>), String> {
    let mut is = CodedInputStream::from_bytes(value);
    let (mut type_url, mut path, mut body) = (String::new(), String::new(), Vec::new());
    let e = |e: containerd_shim::protos::protobuf::Error| e.to_string();
    while let Some(tag) = is.read_raw_tag_or_eof().map_err(e)? {
        // Field 1..3, each length-delimited (wire type 2).
        match tag {
            0x0a => type_url = is.read_string().map_err(e)?,
            0x12 => path = is.read_string().map_err(e)?,
            0x1a => body = is.read_bytes().map_err(e)?,
            t => return Err(format!("unknown field {} (wire type {})", t >> 3, t & 7)),
        }
    }
    Ok((type_url, path, body))
}

/// runc's options from TOML: each key one of runc's Options, by its name in containerd's
/// config. An unknown key, or a value of the wrong type, is an error naming the key.
pub fn from_toml(text: &str) -> Result<Options, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // toml's message spans lines (it quotes the input); its first line says what.
        e.message().lines().next().unwrap_or("not TOML").to_string()
    })?;
    let mut o = Options::default();
    for (key, v) in &table {
        let string = || {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{key} must be a string, not {}", v.type_str()))
        };
        let boolean = || {
            v.as_bool()
                .ok_or_else(|| format!("{key} must be a boolean, not {}", v.type_str()))
        };
        let id = || match v.as_integer() {
            Some(i) => u32::try_from(i)
                .map_err(|_| format!("{key} must be a uid or gid (0 to 4294967295), not {i}")),
            None => Err(format!("{key} must be an integer, not {}", v.type_str())),
        };
        match key.as_str() {
            "BinaryName" => o.binary_name = string()?,
            "Root" => o.root = string()?,
            "ShimCgroup" => o.shim_cgroup = string()?,
            "CriuImagePath" => o.criu_image_path = string()?,
            "CriuWorkPath" => o.criu_work_path = string()?,
            // Field 8, which containerd 1.6 and 1.7 still have and these protos have not; the
            // shim reads it from the unknown fields, as it arrives from runc's type.
            "CriuPath" => {
                let p = string()?;
                if !p.is_empty() {
                    let mut u = UnknownFields::new();
                    u.add_length_delimited(8, p.into_bytes());
                    *o.special_fields.mut_unknown_fields() = u;
                }
            }
            "NoPivotRoot" => o.no_pivot_root = boolean()?,
            "NoNewKeyring" => o.no_new_keyring = boolean()?,
            "SystemdCgroup" => o.systemd_cgroup = boolean()?,
            "IoUid" => o.io_uid = id()?,
            "IoGid" => o.io_gid = id()?,
            // containerd 1.7's ConfigBody is the options table as written, which may hold these
            // two for the CRI plugin itself (ConfigPath is empty whenever a body is sent).
            "TypeUrl" => check_type_url(&string()?).map_err(|e| format!("TypeUrl {e}"))?,
            "ConfigPath" if string()?.is_empty() => {}
            _ => {
                return Err(format!(
                    "unknown option {key:?} (runc's options are BinaryName, Root, SystemdCgroup, \
                     NoPivotRoot, NoNewKeyring, IoUid, IoGid, ShimCgroup, CriuPath, \
                     CriuImagePath and CriuWorkPath)"
                ))
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::CodedOutputStream;

    fn message(type_url: &str, path: &str, body: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut os = CodedOutputStream::vec(&mut out);
        for (n, s) in [(1, type_url), (2, path), (3, body)] {
            if !s.is_empty() {
                os.write_bytes(n, s.as_bytes()).unwrap();
            }
        }
        os.flush().unwrap();
        drop(os);
        out
    }

    #[test]
    fn every_runc_option_is_read_by_its_containerd_name() {
        let o = from_toml(
            "BinaryName = \"/usr/sbin/runc\"\nRoot = \"/run/r\"\nShimCgroup = \"/s\"\n\
             CriuImagePath = \"/i\"\nCriuWorkPath = \"/w\"\nCriuPath = \"/c\"\n\
             NoPivotRoot = true\nNoNewKeyring = true\nSystemdCgroup = true\nIoUid = 1000\n\
             IoGid = 1001\nTypeUrl = \"io.containerd.runc.v1.Options\"\nConfigPath = \"\"\n",
        )
        .unwrap();
        assert_eq!(o.binary_name, "/usr/sbin/runc");
        assert_eq!(o.root, "/run/r");
        assert_eq!(o.shim_cgroup, "/s");
        assert_eq!(o.criu_image_path, "/i");
        assert_eq!(o.criu_work_path, "/w");
        assert!(o.no_pivot_root && o.no_new_keyring && o.systemd_cgroup);
        assert_eq!((o.io_uid, o.io_gid), (1000, 1001));
        assert_eq!(crate::service::criu_path(&o), "/c");
    }

    #[test]
    fn config_path_and_config_body_both_carry_the_options() {
        let dir = std::env::temp_dir().join(format!("husk-cri-options-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("husk.toml");
        std::fs::write(&file, "SystemdCgroup = true\n").unwrap();
        let o = parse(&message("", file.to_str().unwrap(), "")).unwrap();
        assert!(o.systemd_cgroup);
        // A body is only read when no path is given.
        let o = parse(&message("", "", "BinaryName = \"crun\"\n")).unwrap();
        assert_eq!(o.binary_name, "crun");
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let missing = dir.join("none.toml");
        let e = parse(&message("", missing.to_str().unwrap(), "")).unwrap_err();
        assert_eq!(
            e,
            format!(
                "runtime options: ConfigPath {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        // The test's own directory: a failure to remove it fails nothing.
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_options_are_one_line_naming_the_key() {
        let e = |t: &str| parse(&message("", "", t)).unwrap_err();
        assert!(
            e("SystemdCgrop = true").starts_with(
                "runtime options: ConfigBody: unknown option \"SystemdCgrop\" (runc's options are"
            ),
            "{}",
            e("SystemdCgrop = true")
        );
        assert_eq!(
            e("SystemdCgroup = \"yes\""),
            "runtime options: ConfigBody: SystemdCgroup must be a boolean, not string"
        );
        assert_eq!(
            e("IoUid = -1"),
            "runtime options: ConfigBody: IoUid must be a uid or gid (0 to 4294967295), not -1"
        );
        assert_eq!(
            e("ConfigPath = \"/x\""),
            "runtime options: ConfigBody: unknown option \"ConfigPath\" (runc's options are \
             BinaryName, Root, SystemdCgroup, NoPivotRoot, NoNewKeyring, IoUid, IoGid, \
             ShimCgroup, CriuPath, CriuImagePath and CriuWorkPath)"
        );
        let bad = e("SystemdCgroup = ");
        assert!(
            bad.starts_with("runtime options: ConfigBody: ") && !bad.contains('\n'),
            "{bad:?}"
        );
        assert_eq!(
            parse(&message("x.Other", "", "")).unwrap_err(),
            "runtime options: TypeUrl \"x.Other\": only runc's options \
             (containerd.runc.v1.Options) are understood"
        );
        assert_eq!(
            parse(&[0x20, 1]).unwrap_err(),
            "runtime options (runtimeoptions.v1.Options): unknown field 4 (wire type 0)"
        );
    }
}
