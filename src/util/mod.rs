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

/// A connection to the unix socket at `addr` that never waits, as Go's (runc's) dial: a
/// listener whose backlog is full fails it at once (EAGAIN) rather than blocking until an
/// accept that may never come. The socket stays non-blocking, so that a peer that does not
/// read cannot block a send either.
pub fn connect_unix(addr: &nix::sys::socket::UnixAddr) -> nix::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    connect(sock.as_raw_fd(), addr)?;
    Ok(sock)
}

/// The content of the regular file at `path`, opened without waiting: a fifo (or a device) in
/// its place is refused, not waited on for a writer that may never come.
pub fn read_regular(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    // Sized from the stat we have (through `take`, std's File would stat again).
    let mut data = Vec::with_capacity(meta.len().min(1 << 20) as usize + 1);
    f.by_ref().take(u64::MAX).read_to_end(&mut data)?;
    Ok(data)
}

/// `value` as Go's `json.MarshalIndent(v, "", indent)` writes it. Every JSON of an oci-spec
/// type husk writes or re-reads goes through this one serializer, so each type's serializer is
/// compiled in once (the config audit's own copy, through serde_json's `Value` serializer, made
/// the binary 22 KB larger; `run` maps nearly all of husk's code in, so size is peak RSS).
pub fn json_indented<T: serde::Serialize + ?Sized>(
    value: &T,
    indent: &[u8],
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent);
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))?;
    Ok(out)
}

/// Creates (or truncates) the file at `path` for writing, without waiting: a fifo in its place
/// that nobody reads is an error (ENXIO), a symlink too (ELOOP), where a plain open would wait
/// for a reader or write through the link.
pub fn create_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
}
