//! A test hook: `HUSK_FAULT=<step>` makes `husk create` SIGKILL itself at that step, so that
//! tests can check that whatever a crash leaves behind, `husk delete` cleans up. The steps, in
//! order: mkdir, state, cgroup, clone, apply, hooks, ready, saved; and `husk restore` at
//! criu-root (the rootfs bound in the state directory for CRIU).

pub fn point(step: &str) {
    if std::env::var_os("HUSK_FAULT").is_some_and(|v| v == step) {
        // SIGKILL to ourselves does not return.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
