//! One module per runc command, named as the command. Each reads its flags, calls into the
//! parent side (crate::container) or the cgroup manager (crate::cgroups), and prints.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
