//! The store: blobs and unpacked layers as files by digest, images and tags in redb.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::config::ImageConfig;
use crate::reference::normalize;
use crate::{db_err, io_err, sha256_hex, Error, Result};

/// `name:tag` → image id.
pub(crate) const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
/// image id (the config's digest, as Docker names images) → [`Record`] (serde_json). The
/// same image loaded from another archive (other compression, other format) is one image:
/// the last load's manifest and blobs replace the earlier ones.
pub(crate) const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");

/// What the store keeps of one image, beside its blobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub manifest: String,
    pub layers: Vec<LayerRecord>,
    /// Nanoseconds since the epoch when it was loaded: `images` lists the newest first
    /// (seconds would tie for loads in quick succession).
    pub loaded: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The blob's digest, as in the manifest (compressed or not).
    pub digest: String,
    /// The digest of the uncompressed tar, as in the config's rootfs.diff_ids.
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

/// One line of `images`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// The config's digest, as Docker names images.
    pub id: String,
    pub manifest_digest: String,
    pub repo_tags: Vec<String>,
    pub created: Option<String>,
    /// The layers' blobs, added up.
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    pub r#type: String,
    pub layers: Vec<String>,
}

/// `image inspect`, in Docker's field names where Docker has one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub manifest_digest: String,
    pub repo_tags: Vec<String>,
    pub created: Option<String>,
    pub architecture: String,
    pub os: String,
    pub size: u64,
    pub config: ImageConfig,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    /// The unpacked layers, top first: overlayfs's `lowerdir=` in order.
    pub layer_dirs: Vec<PathBuf>,
}

/// What `rmi` did, in Docker's words: `Untagged: busybox:latest`, `Deleted: sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

pub struct Store {
    pub(crate) root: PathBuf,
    pub(crate) db: Database,
    pub(crate) seq: u64,
}

impl Store {
    /// Opens (creating if need be) the store at `root`. One process at a time: redb locks
    /// its file, which is what makes clearing `tmp/` and sweeping unreferenced blobs and
    /// layers here safe (both are what a load killed half-way leaves).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let mut dirs = fs::DirBuilder::new();
        dirs.recursive(true).mode(0o700);
        for d in ["blobs/sha256", "layers", "tmp"] {
            let p = root.join(d);
            dirs.create(&p).map_err(io_err(p.display()))?;
        }
        let db_path = root.join("images.redb");
        let db = Database::create(&db_path)
            .map_err(|e| Error::Db(format!("{}: {e}", db_path.display())))?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(TAGS).map_err(db_err)?;
        txn.open_table(IMAGES).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        let mut store = Self { root, db, seq: 0 };
        let tmp = store.root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err(tmp.display()))? {
            let path = entry.map_err(io_err(tmp.display()))?.path();
            fs::remove_dir_all(&path).map_err(io_err(path.display()))?;
        }
        store.sweep()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        self.root
            .join("blobs/sha256")
            .join(sha256_hex(digest).unwrap_or("invalid"))
    }

    /// Where the layer of this diff-id is (or would be) unpacked.
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root
            .join("layers")
            .join(sha256_hex(diff_id).unwrap_or("invalid"))
    }

    pub(crate) fn records(&self) -> Result<Vec<(String, Record)>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(IMAGES).map_err(db_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let record: Record = serde_json::from_slice(v.value()).map_err(db_err)?;
            out.push((k.value().to_string(), record));
        }
        Ok(out)
    }

    /// image id → its tags, sorted.
    fn tags_by_id(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(TAGS).map_err(db_err)?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in table.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.entry(v.value().to_string())
                .or_default()
                .push(k.value().to_string());
        }
        Ok(out)
    }

    /// A reference is a tag (`busybox`, `busybox:1.36`), else an image id or manifest digest,
    /// whole (`sha256:…`) or a prefix of its hex of at least 4 characters, as Docker accepts.
    /// Returns the image id, the record, and whether the reference was a tag.
    fn resolve(&self, reference: &str) -> Result<(String, Record, bool)> {
        let not_found = || Error::NotFound(reference.to_string());
        if let Ok(tag) = normalize(reference) {
            let txn = self.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(TAGS).map_err(db_err)?;
            if let Some(id) = table.get(tag.as_str()).map_err(db_err)? {
                let id = id.value().to_string();
                let record = self
                    .records()?
                    .into_iter()
                    .find(|(d, _)| *d == id)
                    .ok_or_else(|| Error::Db(format!("tag {tag} names a missing image")))?
                    .1;
                return Ok((id, record, true));
            }
        }
        let prefix = reference.strip_prefix("sha256:").unwrap_or(reference);
        if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let matches: Vec<_> = self
            .records()?
            .into_iter()
            .filter(|(m, r)| {
                [m, &r.manifest]
                    .iter()
                    .any(|d| sha256_hex(d).is_some_and(|h| h.starts_with(prefix)))
            })
            .collect();
        match <[_; 1]>::try_from(matches) {
            Ok([(m, r)]) => Ok((m, r, false)),
            Err(v) if v.is_empty() => Err(not_found()),
            Err(_) => Err(Error::Conflict(format!(
                "{reference} names more than one image"
            ))),
        }
    }

    pub(crate) fn read_config(&self, id: &str) -> Result<ImageConfiguration> {
        let path = self.blob_path(id);
        let bytes = fs::read(&path).map_err(io_err(path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Db(format!("config {id}: {e}")))
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let mut tags = self.tags_by_id()?;
        let mut records = self.records()?;
        records.sort_by(|a, b| b.1.loaded.cmp(&a.1.loaded).then(a.0.cmp(&b.0)));
        records
            .into_iter()
            .map(|(id, record)| {
                let config = self.read_config(&id)?;
                Ok(ImageSummary {
                    repo_tags: tags.remove(&id).unwrap_or_default(),
                    id,
                    manifest_digest: record.manifest,
                    created: config.created().clone(),
                    size: record.layers.iter().map(|l| l.size).sum(),
                })
            })
            .collect()
    }

    pub fn inspect(&self, reference: &str) -> Result<ImageInspect> {
        let (id, record, _) = self.resolve(reference)?;
        let config = self.read_config(&id)?;
        Ok(ImageInspect {
            repo_tags: self.tags_by_id()?.remove(&id).unwrap_or_default(),
            id,
            manifest_digest: record.manifest.clone(),
            created: config.created().clone(),
            architecture: config.architecture().to_string(),
            os: config.os().to_string(),
            size: record.layers.iter().map(|l| l.size).sum(),
            config: ImageConfig::from(&config),
            root_fs: RootFs {
                r#type: "layers".into(),
                layers: record.layers.iter().map(|l| l.diff_id.clone()).collect(),
            },
            layer_dirs: record
                .layers
                .iter()
                .rev()
                .map(|l| self.layer_dir(&l.diff_id))
                .collect(),
        })
    }

    /// Gives the image `source` names the tag `target` too (moving it from another image).
    pub fn tag(&mut self, source: &str, target: &str) -> Result<()> {
        let target = normalize(target)?;
        let (id, _, _) = self.resolve(source)?;
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(TAGS)
            .map_err(db_err)?
            .insert(target.as_str(), id.as_str())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Removes a tag; the image goes when its last tag does. By id, an image with several
    /// tags is removed only with `force`, as Docker does. Blobs and layers no image uses any
    /// more are deleted. Whether a container still uses the image is the caller's to check.
    pub fn rmi(&mut self, reference: &str, force: bool) -> Result<Vec<Removed>> {
        let (id, _, by_tag) = self.resolve(reference)?;
        let tags = self.tags_by_id()?.remove(&id).unwrap_or_default();
        let untag: Vec<String> = if by_tag {
            vec![normalize(reference)?]
        } else if tags.len() > 1 && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short_id(&id)
            )));
        } else {
            tags.clone()
        };
        let delete = untag.len() == tags.len();
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(TAGS).map_err(db_err)?;
            for t in &untag {
                table.remove(t.as_str()).map_err(db_err)?;
            }
            if delete {
                txn.open_table(IMAGES)
                    .map_err(db_err)?
                    .remove(id.as_str())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        let mut out: Vec<Removed> = untag.into_iter().map(Removed::Untagged).collect();
        if delete {
            out.push(Removed::Deleted(id));
            self.sweep()?;
        }
        Ok(out)
    }

    /// Deletes every blob and unpacked layer that no image in the database names.
    pub(crate) fn sweep(&mut self) -> Result<()> {
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for (id, record) in self.records()? {
            blobs.insert(id);
            blobs.insert(record.manifest);
            for l in record.layers {
                blobs.insert(l.digest);
                layers.insert(l.diff_id);
            }
        }
        let keep = |set: &HashSet<String>, name: &str| set.contains(&format!("sha256:{name}"));
        for (dir, set, is_dir) in [("blobs/sha256", &blobs, false), ("layers", &layers, true)] {
            let dir = self.root.join(dir);
            for entry in fs::read_dir(&dir).map_err(io_err(dir.display()))? {
                let path = entry.map_err(io_err(dir.display()))?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if keep(set, &name) {
                    continue;
                }
                if is_dir {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                }
                .map_err(io_err(path.display()))?;
            }
        }
        Ok(())
    }
}

/// The 12 hex characters Docker shows of an id.
pub fn short_id(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}
