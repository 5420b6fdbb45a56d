//! husk: an OCI container runtime with runc's command line. The library holds the runtime; the
//! `husk` binary (src/main.rs) is the command-line edge. See the README's "Architecture".
//!
//! - `commands`: one module per runc command, the edge that reads flags and prints;
//! - `container`: the parent side, in husk's own process (create, the sync loop, state, start,
//!   kill, delete, exec's parent);
//! - `init`: the child side, after clone and before execve (rootfs, process, seccomp);
//! - `cgroups`: the cgroup manager, one implementation per hierarchy;
//! - `security`, `util`: what both sides share.

pub mod cgroups;
pub mod cli;
pub mod commands;
pub(crate) mod container;
pub mod error;
pub(crate) mod hooks;
pub(crate) mod init;
pub(crate) mod namespaces;
pub(crate) mod oci_state;
pub mod rootless;
pub(crate) mod security;
pub(crate) mod sync;
pub(crate) mod util;

/// What the fuzz targets (fuzz/) and tests/fuzz_regressions.rs drive: not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::container::create::{parse_spec, validate_spec};
    pub use crate::container::exec::process_from_flags;
    pub use crate::hooks::deadline as hook_deadline;
    pub use crate::init::seccomp::program as seccomp_filter;
    pub use crate::util::fds::kept_fds;
    pub use crate::util::signal::parse_signal;
}
pub use util::logging;
