//! `pull` from an OCI/Docker registry through oci-client.
//!
//! The manifest (this platform's, through an index), the config and the layers are downloaded
//! into `tmp/` as an OCI image layout, which then goes through the same checks, unpacking and
//! commit as a loaded OCI archive: a pull that fails half-way leaves the store as it was.

use std::fs;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::load::{Archive, Progress};
use crate::reference::normalize;
use crate::{io_err, sha256_hex, Error, Loaded, Result, Store};

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Registries (`host:port`) spoken to over plain HTTP, as Docker's
    /// `insecure-registries`; all others over HTTPS.
    pub insecure: Vec<String>,
    pub auth: Option<(String, String)>,
}

fn pull_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Pull(format!("{what}: {e}"))
}

impl Store {
    /// Pulls `reference` (`busybox`, `127.0.0.1:5000/busybox:1.36`) and tags it.
    ///
    /// The download is async; checking and unpacking the layers that follows is not (it is
    /// the same code as `load`): call it where blocking a while is fine.
    pub async fn pull(
        &mut self,
        reference: &str,
        options: &PullOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Loaded> {
        let tag = normalize(reference)?;
        let image: Reference = reference
            .parse()
            .map_err(|e| Error::Reference(format!("{reference}: {e}")))?;
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(options.insecure.clone()),
            ..Default::default()
        });
        let auth = match &options.auth {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        };

        let (mut bytes, mut digest) = client
            .pull_manifest_raw(&image, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| pull_err(reference, e))?;
        let media_type = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        if crate::load::is_index(&media_type(&bytes)) {
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| pull_err("index", e))?;
            let chosen = crate::load::platform_manifest(&index)
                .ok_or_else(|| pull_err(reference, "no image for this platform"))?;
            let by_digest = Reference::with_digest(
                image.registry().to_string(),
                image.repository().to_string(),
                chosen.digest().to_string(),
            );
            (bytes, digest) = client
                .pull_manifest_raw(&by_digest, &auth, MANIFEST_TYPES)
                .await
                .map_err(|e| pull_err(reference, e))?;
        }
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| pull_err("manifest", e))?;

        let staging = self.staging()?;
        let layout = staging.0.join("pull");
        let blobs = layout.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_err(blobs.display()))?;
        let blob_path = |digest: &str| {
            sha256_hex(digest)
                .map(|hex| blobs.join(hex))
                .ok_or_else(|| pull_err(digest, "not a sha256 digest"))
        };
        let write = |path: std::path::PathBuf, data: &[u8]| {
            fs::write(&path, data).map_err(io_err(path.display()))
        };
        write(blob_path(&digest)?, &bytes)?;
        write(
            layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": media_type(&bytes),
                "digest": digest,
                "size": bytes.len(),
                "annotations": {"io.containerd.image.name": tag},
            }],
        });
        write(layout.join("index.json"), index.to_string().as_bytes())?;

        let total: u64 =
            manifest.layers().iter().map(|l| l.size()).sum::<u64>() + manifest.config().size();
        let mut done = 0;
        for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
            let path = blob_path(d.digest().as_ref())?;
            let file = tokio::fs::File::create(&path)
                .await
                .map_err(io_err(path.display()))?;
            client
                .pull_blob(&image, d.digest().as_ref(), file)
                .await
                .map_err(|e| pull_err(&format!("blob {}", d.digest()), e))?;
            done += d.size();
            progress(Progress::Read {
                done,
                total: Some(total),
            });
        }

        let archive = Archive::from_dir(&layout)?;
        let mut loaded = self.finish_load(archive, &staging, progress)?;
        loaded
            .pop()
            .ok_or_else(|| pull_err(reference, "nothing was loaded"))
    }
}
