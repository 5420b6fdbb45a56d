//! Defences of the host against the container: the sealed copy of the husk binary
//! (CVE-2019-5736) and writes to /proc that cannot be redirected.

pub mod procfs;
pub mod sealed;
