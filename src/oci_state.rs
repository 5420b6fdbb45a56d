//! The runtime-spec's state of a container: what `state` prints and what every hook reads on
//! its stdin, on either side of the clone.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The runtime-spec version husk implements, which every state it reports carries, whatever the
/// bundle's ociVersion (runc: specs.Version, "1.0.2-dev" in 1.1.5, "1.2.0" in 1.2).
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Annotations in key order, as Go's encoder writes a map.
pub fn sorted(annotations: &HashMap<String, String>) -> BTreeMap<&str, &str> {
    annotations
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The runtime-spec's state of a container, with runc's field order and sorted annotations.
#[derive(Serialize, Debug)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<&'a str, &'a str>,
}
