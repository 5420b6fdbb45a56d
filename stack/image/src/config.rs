//! The parts of an image's config that a container's OCI spec is built from.

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use serde::Serialize;

/// An image's run-time defaults, as `docker image inspect` shows them under `Config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// "80/tcp", "53/udp", sorted.
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub volumes: Vec<String>,
}

impl From<&ImageConfiguration> for ImageConfig {
    fn from(image: &ImageConfiguration) -> Self {
        let Some(c) = image.config() else {
            return Self::default();
        };
        let sorted = |v: &Option<Vec<String>>| {
            let mut v = v.clone().unwrap_or_default();
            v.sort();
            v
        };
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Self {
            entrypoint: c.entrypoint().clone(),
            cmd: c.cmd().clone(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: nonempty(c.working_dir()),
            user: nonempty(c.user()),
            exposed_ports: sorted(c.exposed_ports()),
            stop_signal: nonempty(c.stop_signal()),
            labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
            volumes: sorted(c.volumes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_with_nulls() {
        // As Docker writes configs: nulls where nothing was set, maps for ports and volumes.
        let json = r#"{"architecture":"amd64","os":"linux",
            "config":{"Hostname":"","Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,
              "Volumes":null,"WorkingDir":"","User":"","OnBuild":null,
              "ExposedPorts":{"80/tcp":{},"53/udp":{}},"StopSignal":"SIGQUIT",
              "Labels":{"a":"b"}},
            "container_config":{"Cmd":null},"docker_version":"20.10.24",
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let image: ImageConfiguration = serde_json::from_str(json).unwrap();
        let c = ImageConfig::from(&image);
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.working_dir, None);
        assert_eq!(c.exposed_ports, ["53/udp", "80/tcp"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.labels.get("a").map(String::as_str), Some("b"));
    }
}
