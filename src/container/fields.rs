//! No field of config.json goes unnoticed. Each field husk's config model (oci-spec) knows is
//! applied where its subject is set up, refused here when husk does not implement it, or - only
//! where the runtime-spec says so - ignored; notes/config-fields.md says which, field by field.
//! A key the model does not know is ignored, as the runtime-spec's "Extensibility" rule demands,
//! but with a warning that names it. The tests below keep that table, this code and oci-spec in
//! step: a field oci-spec adds fails them until someone decides what husk does with it.

use crate::error::{Error, Result};
use oci_spec::runtime::Spec;
use serde::Serialize;
use serde_json::Value;

/// Refuses, in one line naming the field, what husk does not implement: the sections of other
/// platforms, the Windows-only process fields, and the Linux features husk lacks. The
/// runtime-spec: "runtimes MUST generate an error when invalid or unsupported values are
/// encountered". runc ignores all of these but `linux.netDevices` (which runc 1.4 implements).
pub fn refuse_unsupported(spec: &Spec) -> Result<()> {
    let other_platform = [
        ("windows", spec.windows().is_some()),
        ("solaris", spec.solaris().is_some()),
        ("zos", spec.zos().is_some()),
    ];
    if let Some((name, _)) = other_platform.iter().find(|(_, set)| *set) {
        return Err(Error::msg(format!(
            "{name}: configuration for another platform; husk runs Linux containers"
        )));
    }
    if spec.vm().is_some() {
        return Err(Error::msg(
            "vm: husk runs containers, not virtual machines (the vm section is for VM-based runtimes)",
        ));
    }
    if let Some(p) = spec.process() {
        if p.command_line().as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(Error::msg(
                "process.commandLine: Windows only; a Linux container runs process.args",
            ));
        }
        if p.user().username().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(Error::msg(
                "process.user.username: Windows only; a Linux container's user is process.user.uid",
            ));
        }
    }
    let linux = spec.linux().as_ref();
    if linux
        .and_then(|l| l.net_devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        return Err(Error::msg(
            "linux.netDevices: moving host network devices into the container is not supported by husk",
        ));
    }
    Ok(())
}

/// Warns about what parsing `raw` into `parsed` dropped: the keys the config model does not
/// know, found by writing `parsed` back. `what` prefixes the message (the file or flag the JSON
/// came from; empty for config.json).
pub fn warn_dropped<T: Serialize>(what: &str, raw: &Value, parsed: &T) {
    // Through bytes, not serde_json::to_value: see util::json_indented.
    let Ok(known) =
        crate::util::json_indented(parsed, b"\t").and_then(|b| serde_json::from_slice::<Value>(&b))
    else {
        return;
    };
    let mut dropped = Vec::new();
    unknown_keys(raw, &known, "", &mut dropped);
    for path in dropped {
        log::warn!("{what}{path}: unknown field, ignored");
    }
}

/// oci-spec's top-level `uidMappings`/`gidMappings` ("never existed in the OCI runtime spec",
/// says oci-spec): parsed, but nothing reads them.
pub fn warn_not_runtime_spec(raw: &Value) {
    for key in ["uidMappings", "gidMappings"] {
        if raw.get(key).is_some_and(|v| !is_empty(v)) {
            log::warn!(
                "{key}: not a top-level field of the runtime-spec (linux.{key} is), ignored"
            );
        }
    }
}

/// Nothing asked for: what Go's `omitempty` leaves out and oci-spec may not write back.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The paths of the keys of `raw` that `known` (the same document, parsed and written back)
/// lacks.
fn unknown_keys(raw: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (raw, known) {
        (Value::Object(r), Value::Object(k)) => {
            for (key, v) in r {
                if is_empty(v) {
                    continue;
                }
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_keys(v, kv, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(r), Value::Array(k)) => {
            for (i, (rv, kv)) in r.iter().zip(k).enumerate() {
                unknown_keys(rv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// A config.json with every field of husk's config model set, none to its default.
    const EVERY_FIELD: &str = include_str!("testdata/every-field.json");

    /// Objects whose keys are data (names of annotations, sysctls, devices, clocks), written
    /// `*` in the table.
    const MAPS: [&str; 7] = [
        "annotations",
        "linux.sysctl",
        "linux.resources.unified",
        "linux.resources.rdma",
        "linux.netDevices",
        "linux.timeOffsets",
        "windows.credentialSpec",
    ];

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every key path of `v`: `a.b`, `a[].b` for arrays of objects, `a.*.b` for MAPS.
    fn key_paths(v: &Value, path: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) if MAPS.contains(&path) => {
                for child in o.values() {
                    key_paths(child, &format!("{path}.*"), out);
                }
            }
            Value::Object(o) => {
                for (k, child) in o {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.insert(p.clone());
                    key_paths(child, &p, out);
                }
            }
            Value::Array(a) => {
                for child in a {
                    key_paths(child, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }

    fn every_field_spec() -> Spec {
        crate::container::create::parse_spec(EVERY_FIELD.as_bytes()).expect("fixture parses")
    }

    /// The field paths of the config model, read from a fully populated Spec written back.
    fn model_paths() -> BTreeSet<String> {
        let spec = every_field_spec();
        // oci-spec adds fields as Options: one the fixture does not set prints as `None`.
        let debug = format!("{spec:#?}");
        let unset: Vec<&str> = debug
            .lines()
            .filter(|l| l.trim_end().ends_with(": None,"))
            .collect();
        assert!(
            unset.is_empty(),
            "src/container/testdata/every-field.json leaves fields of oci-spec's Spec unset \
             (a new oci-spec field?). Set them there, decide what husk does with each, and \
             add it to notes/config-fields.md:\n{}",
            unset.join("\n")
        );
        let mut paths = BTreeSet::new();
        key_paths(&serde_json::to_value(&spec).unwrap(), "", &mut paths);
        paths
    }

    /// One row of a table in notes/config-fields.md.
    #[derive(Debug)]
    struct Row {
        field: String,
        handling: String,
        note: String,
        place: String,
        test: String,
    }

    /// The rows of the tables of notes/config-fields.md whose first cell is a `field`.
    fn table() -> Vec<Row> {
        let text = std::fs::read_to_string(repo().join("notes/config-fields.md")).unwrap();
        let cell = |s: &str| s.trim().trim_matches('`').to_string();
        text.lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let c: Vec<&str> = l.trim().trim_matches('|').split('|').collect();
                assert_eq!(c.len(), 5, "notes/config-fields.md: row with 5 cells: {l}");
                Row {
                    field: cell(c[0]),
                    handling: cell(c[1]),
                    note: c[2].trim().to_string(),
                    place: c[3].trim().to_string(),
                    test: c[4].trim().to_string(),
                }
            })
            .collect()
    }

    /// A row covers its own path and, written `x.**`, everything under `x`.
    fn covers(row: &str, path: &str) -> bool {
        match row.strip_suffix(".**") {
            Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}.")),
            None => row == path,
        }
    }

    #[test]
    fn every_field_of_the_model_is_in_the_table_once() {
        let model = model_paths();
        let rows = table();
        let mut problems = Vec::new();
        for path in &model {
            let n = rows.iter().filter(|r| covers(&r.field, path)).count();
            if n != 1 {
                problems.push(format!("{path}: {n} rows in notes/config-fields.md"));
            }
        }
        for r in &rows {
            if !model.iter().any(|p| covers(&r.field, p)) {
                problems.push(format!("{}: in the table, not in the model", r.field));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// `file.rs: name` cells name a function or test that exists.
    fn check_refs(cell: &str, problems: &mut Vec<String>, field: &str) {
        for part in cell.split(", ").filter(|p| p.contains(".rs: ")) {
            let (file, name) = part.trim_matches('`').split_once(": ").unwrap();
            let path = repo().join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.contains(&format!("fn {name}(")) && !text.contains(&format!("fn {name}<")) {
                problems.push(format!("{field}: {file} has no fn {name}"));
            }
        }
    }

    #[test]
    fn the_table_names_code_and_tests_that_exist() {
        let mut problems = Vec::new();
        for r in table() {
            let known = ["applied", "refused", "ignored", "warned"];
            if !known.contains(&r.handling.as_str()) {
                problems.push(format!("{}: handling {:?}", r.field, r.handling));
            }
            if r.handling == "applied" && !r.place.contains(".rs: ") {
                problems.push(format!("{}: applied where?", r.field));
            }
            if r.handling == "applied" && !r.test.contains(".rs: ") {
                problems.push(format!("{}: applied but no test named", r.field));
            }
            check_refs(&r.place, &mut problems, &r.field);
            check_refs(&r.test, &mut problems, &r.field);
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// The value at a table path in `v` (the first element of arrays, the first map entry).
    fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
        let mut cur = v;
        for seg in path.split('.') {
            let (key, array) = match seg.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (seg, false),
            };
            cur = if key == "*" {
                cur.as_object().unwrap().values().next().unwrap()
            } else {
                &cur[key]
            };
            if array {
                cur = &cur[0];
            }
        }
        cur
    }

    /// A minimal valid config with `path` (no `[]` or `*` in it) set to its value in `full`, or,
    /// where that alone does not parse (a required sibling missing), its parent.
    fn with(full: &Value, path: &str) -> Spec {
        let segs: Vec<&str> = path.split('.').collect();
        for n in (1..=segs.len()).rev() {
            let mut v = json!({
                "ociVersion": "1.2.0",
                "root": {"path": "rootfs"},
                "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
                "linux": {"namespaces": [{"type": "mount"}]}
            });
            let mut cur = &mut v;
            for seg in &segs[..n] {
                cur = &mut cur[*seg];
            }
            *cur = at(full, &segs[..n].join(".")).clone();
            if let Ok(spec) = serde_json::from_value(v) {
                return spec;
            }
        }
        panic!("{path}: no config with it parses");
    }

    /// Each refused field, set alone in a valid config, is refused with a line naming it: the
    /// note cell gives the name the message uses (the field or the section holding it).
    #[test]
    fn refused_fields_are_refused_by_name() {
        let full: Value = serde_json::from_str(EVERY_FIELD).unwrap();
        let mut problems = Vec::new();
        for r in table().into_iter().filter(|r| r.handling == "refused") {
            // The refusal is decided where the field or its section is first set.
            let top = r.field.trim_end_matches(".**");
            let settable = top
                .split('.')
                .take_while(|s| !s.ends_with("[]") && *s != "*")
                .collect::<Vec<_>>()
                .join(".");
            let spec = with(&full, &settable);
            let name = r.note.split('`').nth(1).unwrap_or_default();
            let res = crate::container::create::validate_spec(&spec)
                .and_then(|()| crate::container::create::validate_host(&spec));
            match res {
                Ok(()) => problems.push(format!("{}: accepted", r.field)),
                Err(e) if name.is_empty() || !r.field.contains(name) => problems.push(format!(
                    "{}: the note must give, in backquotes, the name the error uses ({e})",
                    r.field
                )),
                Err(e) if !e.to_string().contains(name) => {
                    problems.push(format!("{}: {e:?} does not name {name}", r.field))
                }
                Err(_) => {}
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn unknown_keys_are_found_and_known_ones_are_not() {
        let raw: Value = serde_json::from_str(EVERY_FIELD).unwrap();
        let spec = every_field_spec();
        let known: Value = serde_json::from_slice(&serde_json::to_vec(&spec).unwrap()).unwrap();
        let mut out = Vec::new();
        unknown_keys(&raw, &known, "", &mut out);
        assert!(out.is_empty(), "{out:?}");

        let mut raw = raw;
        raw["linux"]["resources"]["memory"]["futureKnob"] = json!(1);
        raw["mounts"][0]["extra"] = json!({"a": 1});
        raw["brandNew"] = json!("x");
        raw["linux"]["nothing"] = json!(null);
        let mut out = Vec::new();
        unknown_keys(&raw, &known, "", &mut out);
        out.sort();
        assert_eq!(
            out,
            [
                "brandNew",
                "linux.resources.memory.futureKnob",
                "mounts[0].extra"
            ]
        );
    }

    /// What runc, crun, containerd (ctr), Docker and podman wrote on this machine (and two
    /// configs shaped like containerd's CRI and Docker's) is neither refused nor warned about.
    #[test]
    fn configs_of_real_tools_are_accepted() {
        let dir = repo().join("fuzz/seeds/config");
        let mut problems = Vec::new();
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let tools = [
                "runc-",
                "crun-",
                "containerd-",
                "docker-",
                "podman-",
                "cri-",
            ];
            if !tools.iter().any(|t| name.starts_with(t)) {
                continue;
            }
            n += 1;
            let data = std::fs::read(&path).unwrap();
            let spec = crate::container::create::parse_spec(&data).unwrap();
            if let Err(e) = refuse_unsupported(&spec) {
                problems.push(format!("{name}: {e}"));
            }
            let raw: Value = serde_json::from_slice(&data).unwrap();
            let mut unknown = Vec::new();
            unknown_keys(
                &raw,
                &serde_json::to_value(&spec).unwrap(),
                "",
                &mut unknown,
            );
            if !unknown.is_empty() {
                problems.push(format!("{name}: unknown keys {unknown:?}"));
            }
        }
        assert!(n >= 12, "only {n} tool configs in {}", dir.display());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
