//! Small pieces both sides and the commands share: runc's log and time formats, signal names,
//! output tables, /etc/passwd lookups, and the HUSK_FAULT test hook.

pub(crate) mod fault;
pub mod logging;
pub mod mountinfo;
pub mod output;
pub mod passwd;
pub mod signal;
pub mod timefmt;
