//! What `state` and `list` print, in runc's shapes: Go's json.MarshalIndent with two spaces for
//! `state`, a tabwriter table or a JSON array for `list`.

use crate::container::state::{State, Status};
use serde::Serialize;

#[derive(Serialize)]
pub struct ContainerState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a std::path::Path,
    pub rootfs: &'a std::path::Path,
    pub created: &'a str,
    /// Sorted, as Go's encoder writes map keys.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<&'a str, &'a str>,
    pub owner: &'a str,
}

impl<'a> ContainerState<'a> {
    pub fn new(s: &'a State, status: Status) -> Self {
        ContainerState {
            oci_version: &s.ociversion,
            id: &s.id,
            pid: s.visible_pid(status),
            status: status.as_str(),
            bundle: &s.bundle,
            rootfs: &s.rootfs,
            created: &s.created,
            annotations: crate::container::state::sorted(&s.annotations),
            owner: &s.owner,
        }
    }
}

pub fn state_json(s: &State, status: Status) -> String {
    serde_json::to_string_pretty(&ContainerState::new(s, status)).unwrap_or_default()
}

/// Go's `json.MarshalIndent(v, "", indent)`, for values whose serialisation cannot fail (fixed
/// structs, string-keyed maps).
pub fn marshal_indent(v: &impl Serialize, indent: &[u8]) -> String {
    let out =
        crate::util::json_indented(v, indent).expect("serialising a fixed struct cannot fail");
    String::from_utf8(out).expect("serde_json emits UTF-8")
}

/// Go's text/tabwriter with runc's settings (minwidth 12, padding 3, spaces): every cell but
/// the last of a line is padded to its column's width.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            width[i] = width[i].max((c.chars().count() + 3).max(12));
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.extend(std::iter::repeat_n(' ', width[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_like_tabwriter() {
        let t = table(&[
            vec!["ID".into(), "PID".into(), "OWNER".into()],
            vec!["a-very-long-container".into(), "1".into(), "root".into()],
        ]);
        assert_eq!(
            t,
            "ID                      PID         OWNER\na-very-long-container   1           root\n"
        );
    }
}
