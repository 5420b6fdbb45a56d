//! The file descriptors a container inherits beyond stdio: socket activation's $LISTEN_FDS
//! (systemd's protocol) and --preserve-fds.

/// $LISTEN_FDS as a count; anything but a number is none.
pub fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
