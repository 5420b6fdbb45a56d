//! Defences of the host against the container: the sealed copy of the husk binary
//! (CVE-2019-5736) and writes to /proc that cannot be redirected; and the LSM labels that
//! confine the container.

pub mod lsm;
pub mod procfs;
pub mod sealed;
