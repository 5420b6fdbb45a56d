//! husk: an OCI container runtime with runc's command line. The library holds the runtime; the
//! `husk` binary (src/main.rs) is the command-line edge.

pub mod cgroups;
pub mod cli;
pub mod container;
pub mod error;
pub mod events;
pub mod exec;
pub mod fault;
pub mod features;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod namespaces;
pub mod output;
pub mod passwd;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod sealed;
pub mod seccomp;
pub mod seccomp_notify;
pub mod signal;
pub mod spec_default;
pub mod state;
pub mod sync;
pub mod timefmt;
pub mod tty;
pub mod update;
pub mod wait;
