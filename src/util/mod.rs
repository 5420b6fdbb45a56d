//! Small pieces both sides and the commands share: runc's log and time formats, signal names,
//! lexical path cleaning, $LISTEN_FDS, pidfds, /etc/passwd lookups, and the HUSK_FAULT test hook.

pub(crate) mod fault;
pub mod fds;
pub mod logging;
pub mod mountinfo;
pub mod passwd;
pub mod path;
pub mod pidfd;
pub mod signal;
pub mod timefmt;
