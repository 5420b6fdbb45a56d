//! `load`: a `docker save` archive or an OCI image-layout tarball into the store.
//!
//! The archive is read once, each file copied to the store's `tmp/` while hashed; then the
//! manifests are read, every blob checked against its digest, each new layer unpacked into
//! `tmp/` while its uncompressed stream is hashed and checked against the config's diff_id.
//! Only when all of it checks out are blobs and layers renamed into place and the image
//! recorded, in one redb transaction: a bad archive leaves the store as it was.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::reference::normalize;
use crate::store::{LayerRecord, Record, Store, IMAGES, TAGS};
use crate::{db_err, io_err, sha256_hex, unpack, Error, Result};

/// What a load reports as it goes, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Bytes of the archive read so far, and its size when known.
    Read { done: u64, total: Option<u64> },
    /// Layer `index` (from 0) of `count` of one image: unpacked now, or already in the store.
    Layer {
        index: usize,
        count: usize,
        diff_id: &'a str,
        reused: bool,
    },
}

/// One image a load put in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub id: String,
    pub manifest_digest: String,
    pub tags: Vec<String>,
}

const MAX_JSON: u64 = 16 << 20;
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

fn bad(msg: impl Into<String>) -> Error {
    Error::Archive(msg.into())
}

/// A file of the archive, copied out and hashed.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    path: PathBuf,
    digest: String,
    size: u64,
}

pub(crate) enum Item {
    File(Staged),
    Link(String),
}

/// The archive's files by their normalised path.
pub(crate) struct Archive(HashMap<String, Item>);

impl Archive {
    /// The files under `dir` (an OCI layout a pull wrote), hashed.
    #[cfg(feature = "pull")]
    pub(crate) fn from_dir(dir: &Path) -> Result<Self> {
        let mut items = HashMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).map_err(io_err(d.display()))? {
                let path = entry.map_err(io_err(d.display()))?.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let mut hashing = Hashing {
                    inner: File::open(&path).map_err(io_err(path.display()))?,
                    hash: Sha256::new(),
                };
                let size =
                    io::copy(&mut hashing, &mut io::sink()).map_err(io_err(path.display()))?;
                let name = path.strip_prefix(dir).unwrap_or(&path);
                items.insert(
                    name.to_string_lossy().into_owned(),
                    Item::File(Staged {
                        path: path.clone(),
                        digest: digest_of(hashing.hash),
                        size,
                    }),
                );
            }
        }
        Ok(Self(items))
    }

    fn get(&self, path: &str) -> Result<&Staged> {
        let mut p = path.to_string();
        for _ in 0..16 {
            match self.0.get(&p) {
                Some(Item::File(f)) => return Ok(f),
                Some(Item::Link(target)) => p = target.clone(),
                None => return Err(bad(format!("{path} is missing"))),
            }
        }
        Err(bad(format!("{path}: too many levels of symlinks")))
    }

    /// The file at `path`, checked against `digest` and the digest its name says
    /// (`blobs/sha256/<hex>`, Docker's `<hex>.json`), when either is known.
    fn blob(&self, path: &str, digest: Option<&str>) -> Result<&Staged> {
        let f = self.get(path)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        let named = format!("sha256:{}", name.strip_suffix(".json").unwrap_or(name));
        for want in digest
            .into_iter()
            .chain(sha256_hex(&named).map(|_| named.as_str()))
        {
            if f.digest != want {
                return Err(bad(format!(
                    "{path}: content does not match digest {want} (it is {})",
                    f.digest
                )));
            }
        }
        Ok(f)
    }

    fn by_descriptor(&self, what: &str, d: &Descriptor) -> Result<&Staged> {
        let digest = d.digest().to_string();
        let hex = sha256_hex(&digest)
            .ok_or_else(|| bad(format!("{what} digest {digest} is not a sha256 digest")))?;
        let f = self
            .blob(&format!("blobs/sha256/{hex}"), Some(&digest))
            .map_err(|e| match e {
                Error::Archive(m) if m.ends_with("is missing") => {
                    bad(format!("{what} blob {digest} is missing"))
                }
                e => e,
            })?;
        if f.size != d.size() {
            return Err(bad(format!(
                "{what} blob {digest} is {} bytes, its descriptor says {}",
                f.size,
                d.size()
            )));
        }
        Ok(f)
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, what: &str, f: &Staged) -> Result<T> {
        if f.size > MAX_JSON {
            return Err(bad(format!("{what} is {} bytes, too large", f.size)));
        }
        let bytes = fs::read(&f.path).map_err(io_err(f.path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{what}: {e}")))
    }
}

/// One image of the archive, its blobs found and checked, not yet unpacked.
struct Plan {
    tags: Vec<String>,
    manifest: Staged,
    config: Staged,
    layers: Vec<(Staged, String)>,
    diff_ids: Vec<String>,
}

/// `manifest.json` of `docker save`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Removes the staging directory however the load ends.
pub(crate) struct Staging(pub(crate) PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: Store::open clears tmp/ of whatever this leaves.
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Counts what is read, for the progress hook.
struct Counting<'a, 'p, R> {
    inner: R,
    done: u64,
    reported: u64,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(Progress<'p>),
}

impl<R: Read> Read for Counting<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if n == 0 || self.done - self.reported >= 1 << 20 {
            self.reported = self.done;
            (self.progress)(Progress::Read {
                done: self.done,
                total: self.total,
            });
        }
        Ok(n)
    }
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn digest_of(hash: Sha256) -> String {
    format!("sha256:{:x}", hash.finalize())
}

/// `a/./b//c` → `a/b/c`; `..` pops, and None if it climbs out.
fn normal(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

impl Store {
    /// Loads the archive at `path` (its size gives the progress a total).
    pub fn load_file(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Loaded>> {
        let file = File::open(path).map_err(io_err(path.display()))?;
        let total = file.metadata().map_err(io_err(path.display()))?.len();
        self.load(file, Some(total), progress)
    }

    /// Loads a `docker save` archive or an OCI image-layout tarball (as `docker save` and
    /// `skopeo copy … oci-archive:` write them, or gzipped) from `reader`.
    pub fn load(
        &mut self,
        reader: impl Read,
        total: Option<u64>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Loaded>> {
        let staging = self.staging()?;
        // Counted before decompression: the total is the file's size.
        let mut counted = BufReader::new(Counting {
            inner: reader,
            done: 0,
            reported: 0,
            total,
            progress,
        });
        let head = counted
            .fill_buf()
            .map_err(|e| bad(format!("cannot read it: {e}")))?;
        // `docker save | gzip` is loaded as is, as `docker load` does.
        let reader: Box<dyn Read + '_> = if head.starts_with(GZIP_MAGIC) {
            Box::new(MultiGzDecoder::new(counted))
        } else {
            Box::new(counted)
        };
        let archive = read_archive(reader, &staging.0)?;
        self.finish_load(archive, &staging, progress)
    }

    /// A new directory under `tmp/`, removed when the value is dropped.
    pub(crate) fn staging(&mut self) -> Result<Staging> {
        self.seq += 1;
        let staging = Staging(self.root.join(format!("tmp/load-{}", self.seq)));
        let mut dirs = fs::DirBuilder::new();
        dirs.mode(0o700);
        for d in ["", "in", "layers"] {
            let p = staging.0.join(d);
            dirs.create(&p).map_err(io_err(p.display()))?;
        }
        Ok(staging)
    }

    /// Everything after reading: the images found in `archive`, checked, unpacked, committed.
    pub(crate) fn finish_load(
        &mut self,
        archive: Archive,
        staging: &Staging,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Loaded>> {
        let plans = if archive.0.contains_key("manifest.json") {
            docker_plans(&archive, &staging.0)?
        } else if archive.0.contains_key("index.json") {
            oci_plans(&archive)?
        } else {
            return Err(bad(
                "neither manifest.json (docker save) nor index.json (OCI image layout) in it",
            ));
        };
        if plans.is_empty() {
            return Err(bad("no image in it"));
        }

        // Verify every layer against its diff_id, unpacking those the store lacks.
        let mut unpacked: HashMap<String, PathBuf> = HashMap::new();
        for plan in &plans {
            for (i, ((blob, _), diff_id)) in plan.layers.iter().zip(&plan.diff_ids).enumerate() {
                let hex = sha256_hex(diff_id).ok_or_else(|| {
                    bad(format!("config: diff_id {diff_id} is not a sha256 digest"))
                })?;
                let reused = unpacked.contains_key(diff_id) || self.layer_dir(diff_id).exists();
                progress(Progress::Layer {
                    index: i,
                    count: plan.layers.len(),
                    diff_id,
                    reused,
                });
                let dest = (!reused).then(|| staging.0.join("layers").join(hex));
                let got = layer_diff_id(blob, dest.as_deref())?;
                if got != *diff_id {
                    return Err(bad(format!(
                        "layer {}: uncompressed content is {got}, the config's diff_id is {diff_id}",
                        blob.digest
                    )));
                }
                if let Some(dest) = dest {
                    unpacked.insert(diff_id.clone(), dest);
                }
            }
        }
        self.commit(plans, unpacked).inspect_err(|_| {
            // What was moved in before the failure is referenced by nothing.
            let _ = self.sweep();
        })
    }

    fn commit(
        &mut self,
        plans: Vec<Plan>,
        unpacked: HashMap<String, PathBuf>,
    ) -> Result<Vec<Loaded>> {
        let place = |from: &Path, to: PathBuf| -> Result<()> {
            if !to.exists() {
                fs::rename(from, &to).map_err(io_err(to.display()))?;
            }
            Ok(())
        };
        for plan in &plans {
            for blob in [&plan.manifest, &plan.config]
                .into_iter()
                .chain(plan.layers.iter().map(|(b, _)| b))
            {
                place(&blob.path, self.blob_path(&blob.digest))?;
            }
        }
        for (diff_id, dir) in &unpacked {
            place(dir, self.layer_dir(diff_id))?;
        }
        // The files must be on disk before the database says they are there.
        let root = File::open(&self.root).map_err(io_err(self.root.display()))?;
        nix::unistd::syncfs(&root).map_err(|e| Error::Io("syncfs".into(), e.into()))?;

        let loaded = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut out = Vec::new();
        {
            let mut images = txn.open_table(IMAGES).map_err(db_err)?;
            let mut tags = txn.open_table(TAGS).map_err(db_err)?;
            for plan in plans {
                let record = Record {
                    manifest: plan.manifest.digest.clone(),
                    layers: plan
                        .layers
                        .iter()
                        .zip(&plan.diff_ids)
                        .map(|((b, media_type), diff_id)| LayerRecord {
                            digest: b.digest.clone(),
                            diff_id: diff_id.clone(),
                            size: b.size,
                            media_type: media_type.clone(),
                        })
                        .collect(),
                    loaded,
                };
                let json = serde_json::to_vec(&record).map_err(db_err)?;
                let id = plan.config.digest.as_str();
                images.insert(id, json.as_slice()).map_err(db_err)?;
                for t in &plan.tags {
                    tags.insert(t.as_str(), id).map_err(db_err)?;
                }
                out.push(Loaded {
                    id: plan.config.digest,
                    manifest_digest: record.manifest,
                    tags: plan.tags,
                });
            }
        }
        txn.commit().map_err(db_err)?;
        // An image loaded again from another archive may leave its earlier blobs unused.
        self.sweep()?;
        Ok(out)
    }
}

/// Copies every regular file of the archive to `staging/in/`, hashed on the way.
fn read_archive(reader: impl Read, staging: &Path) -> Result<Archive> {
    let tar_err = |e: io::Error| bad(format!("not a readable tar archive: {e}"));
    let mut items = HashMap::new();
    let mut tar = tar::Archive::new(reader);
    for (n, entry) in tar.entries().map_err(tar_err)?.enumerate() {
        let mut entry = entry.map_err(tar_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normal(&raw).ok_or_else(|| bad(format!("entry {raw}: path escapes it")))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() {
            continue;
        }
        if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let resolved = (!target.starts_with('/'))
                .then(|| normal(&format!("{dir}/{target}")))
                .flatten()
                .ok_or_else(|| bad(format!("entry {raw}: symlink {target} points out of it")))?;
            items.insert(path, Item::Link(resolved));
            continue;
        }
        if !kind.is_file() && !matches!(kind, tar::EntryType::Continuous) {
            return Err(bad(format!("entry {raw}: unexpected type {kind:?}")));
        }
        let dest = staging.join("in").join(n.to_string());
        let mut file = File::create(&dest).map_err(io_err(dest.display()))?;
        let mut hashing = Hashing {
            inner: &mut entry,
            hash: Sha256::new(),
        };
        let size = io::copy(&mut hashing, &mut file).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => tar_err(e),
            _ => Error::Io(dest.display().to_string(), e),
        })?;
        let digest = digest_of(hashing.hash);
        items.insert(
            path,
            Item::File(Staged {
                path: dest,
                digest,
                size,
            }),
        );
    }
    // To the end (tar's padding, gzip's trailer and its check), so that progress reaches
    // the total.
    io::copy(&mut tar.into_inner(), &mut io::sink())
        .map_err(|e| bad(format!("after the tar's end: {e}")))?;
    Ok(Archive(items))
}

fn tags_of(names: &[String]) -> Result<Vec<String>> {
    let mut tags: Vec<String> = names
        .iter()
        .map(|t| normalize(t).map_err(|_| bad(format!("bad image name {t}"))))
        .collect::<Result<_>>()?;
    tags.sort();
    tags.dedup();
    Ok(tags)
}

fn check_config(archive: &Archive, config: &Staged, layers: usize) -> Result<Vec<String>> {
    let image: ImageConfiguration = archive.json("config", config)?;
    let diff_ids = image.rootfs().diff_ids().clone();
    if diff_ids.len() != layers {
        return Err(bad(format!(
            "config {} lists {} diff_ids for {layers} layers",
            config.digest,
            diff_ids.len()
        )));
    }
    Ok(diff_ids)
}

fn media_type_of(blob: &Staged) -> Result<String> {
    let mut magic = [0u8; 4];
    let mut f = File::open(&blob.path).map_err(io_err(blob.path.display()))?;
    let n = f.read(&mut magic).map_err(io_err(blob.path.display()))?;
    Ok(if magic[..n].starts_with(GZIP_MAGIC) {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
    .to_string())
}

fn docker_plans(archive: &Archive, staging: &Path) -> Result<Vec<Plan>> {
    let manifest = archive.get("manifest.json")?;
    let entries: Vec<DockerManifest> = archive.json("manifest.json", manifest)?;
    entries
        .iter()
        .enumerate()
        .map(|(n, m)| {
            let config = archive.blob(&m.config, None)?.clone();
            let diff_ids = check_config(archive, &config, m.layers.len())?;
            let mut layers = Vec::new();
            let mut descriptors = Vec::new();
            for path in &m.layers {
                let blob = archive.blob(path, None)?.clone();
                let media_type = media_type_of(&blob)?;
                descriptors.push(serde_json::json!({
                    "mediaType": media_type, "digest": blob.digest, "size": blob.size,
                }));
                layers.push((blob, media_type));
            }
            // docker save has no manifest blob: the store keeps an OCI manifest made from
            // manifest.json, so that every image is named by a manifest digest alike.
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.digest, "size": config.size,
                },
                "layers": descriptors,
            }))
            .map_err(db_err)?;
            let path = staging.join(format!("manifest-{n}"));
            let mut f = File::create(&path).map_err(io_err(path.display()))?;
            f.write_all(&manifest).map_err(io_err(path.display()))?;
            Ok(Plan {
                tags: tags_of(m.repo_tags.as_deref().unwrap_or_default())?,
                manifest: Staged {
                    path,
                    digest: digest_of(Sha256::new_with_prefix(&manifest)),
                    size: manifest.len() as u64,
                },
                config,
                layers,
                diff_ids,
            })
        })
        .collect()
}

pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// This machine's platform in OCI's words.
fn this_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The manifest for linux on this machine's architecture (or one naming no platform).
pub(crate) fn platform_manifest(index: &ImageIndex) -> Option<Descriptor> {
    index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_none_or(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == this_arch()
            })
        })
        .cloned()
}

fn oci_plans(archive: &Archive) -> Result<Vec<Plan>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let layout: Layout = archive.json("oci-layout", archive.get("oci-layout")?)?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(bad(format!(
            "oci-layout: unsupported version {}",
            layout.image_layout_version
        )));
    }
    let index: ImageIndex = archive.json("index.json", archive.get("index.json")?)?;
    // One image per manifest digest, with all the names the index gives it.
    let mut images: BTreeMap<String, (Descriptor, Vec<String>)> = BTreeMap::new();
    for d in index.manifests() {
        let mut desc = d.clone();
        if is_index(d.media_type().as_ref()) {
            let nested: ImageIndex = archive.json(
                &format!("index {}", d.digest()),
                archive.by_descriptor("index", d)?,
            )?;
            desc = platform_manifest(&nested).ok_or_else(|| {
                bad(format!(
                    "index {} has no image for linux/{}",
                    d.digest(),
                    this_arch()
                ))
            })?;
        }
        let annotations = d.annotations().clone().unwrap_or_default();
        // containerd's annotation carries a whole reference; the OCI one is often a bare tag,
        // which names no repository, and then the image is loaded untagged.
        let name = annotations
            .get("io.containerd.image.name")
            .or_else(|| {
                annotations
                    .get("org.opencontainers.image.ref.name")
                    .filter(|r| r.contains(['/', ':']))
            })
            .cloned();
        let entry = images
            .entry(desc.digest().to_string())
            .or_insert((desc, Vec::new()));
        entry.1.extend(name);
    }
    images
        .into_values()
        .map(|(desc, names)| {
            let manifest = archive.by_descriptor("manifest", &desc)?.clone();
            let m: ImageManifest =
                archive.json(&format!("manifest {}", manifest.digest), &manifest)?;
            let config = archive.by_descriptor("config", m.config())?.clone();
            let diff_ids = check_config(archive, &config, m.layers().len())?;
            let layers = m
                .layers()
                .iter()
                .map(|l| {
                    let blob = archive.by_descriptor("layer", l)?.clone();
                    Ok((blob, l.media_type().to_string()))
                })
                .collect::<Result<_>>()?;
            Ok(Plan {
                tags: tags_of(&names)?,
                manifest,
                config,
                layers,
                diff_ids,
            })
        })
        .collect()
}

/// The diff_id of a layer blob (gzip or not), unpacking it into `dest` on the way if given.
fn layer_diff_id(blob: &Staged, dest: Option<&Path>) -> Result<String> {
    let file = File::open(&blob.path).map_err(io_err(blob.path.display()))?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    let n = reader
        .read(&mut magic)
        .map_err(io_err(blob.path.display()))?;
    let head = io::Cursor::new(magic[..n].to_vec());
    let raw: Box<dyn Read> = if magic[..n].starts_with(GZIP_MAGIC) {
        Box::new(MultiGzDecoder::new(head.chain(reader)))
    } else if magic[..n].starts_with(ZSTD_MAGIC) {
        return Err(bad(format!(
            "layer {}: zstd compression is not supported",
            blob.digest
        )));
    } else {
        Box::new(head.chain(reader))
    };
    let mut hashing = Hashing {
        inner: raw,
        hash: Sha256::new(),
    };
    let layer_err = |error| Error::Layer {
        layer: blob.digest.clone(),
        error,
    };
    if let Some(dest) = dest {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(dest)
            .map_err(io_err(dest.display()))?;
        unpack::unpack_layer(&mut hashing, dest).map_err(layer_err)?;
    }
    // The tar's end may be followed by padding, which the diff_id covers too.
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| layer_err(unpack::UnpackError::Tar(e)))?;
    Ok(digest_of(hashing.hash))
}
