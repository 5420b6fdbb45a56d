//! husk's image store: images loaded from `docker save` archives and OCI image-layout
//! tarballs, their layers unpacked once each, safely, as overlayfs lower directories.
//!
//! Layout under the store's root (see notes/image.md):
//! - `blobs/sha256/<hex>`: manifests, configs and layer blobs as loaded, by digest;
//! - `layers/<hex>/`: each layer unpacked once, named by its diff-id, whiteouts in overlayfs form;
//! - `images.redb`: which images exist (manifest digest → config and layers) and the tags;
//! - `tmp/`: where a load stages everything before it moves it into place.

mod config;
mod load;
#[cfg(feature = "pull")]
mod pull;
mod reference;
mod store;
pub mod unpack;

pub use config::ImageConfig;
pub use load::{Loaded, Progress};
#[cfg(feature = "pull")]
pub use pull::PullOptions;
pub use reference::normalize;
pub use store::{ImageInspect, ImageSummary, LayerRecord, Removed, RootFs, Store};
pub use unpack::{unpack_layer, UnpackError};

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive is not a well-formed image archive; the message names what is wrong.
    #[error("malformed archive: {0}")]
    Archive(String),
    #[error("layer {layer}: {error}")]
    Layer { layer: String, error: UnpackError },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("invalid reference format: {0}")]
    Reference(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}: {1}")]
    Io(String, io::Error),
    /// A pull failed talking to the registry.
    #[error("pull {0}")]
    Pull(String),
    #[error("image metadata: {0}")]
    Db(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::Io(context.to_string(), e)
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Db(e.to_string())
}

/// The hex part of a `sha256:<64 hex>` digest, or None.
fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}
