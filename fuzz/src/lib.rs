//! What the fuzz targets feed their input through, shared with husk's tests/fuzz_regressions.rs,
//! which replays the inputs kept in fuzz/regressions/. Each function returns for any input:
//! husk's errors are expected and dropped; a panic (or a sanitizer report) is the bug.

use clap::Parser;
use husk::cli::{Cli, Command};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// config.json bytes through what `create` checks before it touches the system: parsing (with
/// its retry without unknown capabilities), validation, building the seccomp program (the
/// filter behind its ENOSYS stub), which the init would otherwise be the first to do, and the
/// deadline of every hook.
pub fn config(data: &[u8]) {
    let Ok(spec) = husk::fuzzing::parse_spec(data) else {
        return;
    };
    if husk::fuzzing::validate_spec(&spec).is_err() {
        return;
    }
    if let Some(h) = spec.hooks() {
        let now = std::time::Instant::now();
        for list in [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
            h.poststart(),
            h.poststop(),
        ] {
            for hook in list.iter().flatten() {
                std::hint::black_box(husk::fuzzing::hook_deadline(hook, now));
            }
        }
    }
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        // The filter is built in memory only; never loaded.
        drop(husk::fuzzing::seccomp_filter(s));
    }
}

/// husk's argv: "husk", then one argument per NUL-separated chunk of `data`.
fn argv(data: &[u8]) -> Vec<OsString> {
    let mut args = vec![OsString::from("husk")];
    if !data.is_empty() {
        args.extend(
            data.split(|&b| b == 0)
                .map(|a| OsString::from_vec(a.to_vec())),
        );
    }
    args
}

/// A command line through what husk does with it before acting: the single-dash rewriting, clap's
/// parsing, the usage error message, and the parsing of flag values that takes place before any
/// container is looked at (kill's signal, update's limits, exec's user and capabilities, the
/// count of fds kept, with no $LISTEN_FDS and with the most a caller can pass).
pub fn cli(data: &[u8]) {
    let args = husk::cli::normalize_args(argv(data));
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            drop(husk::cli::usage_error(&e, &args));
            drop(husk::cli::logging_flags(&args));
            return;
        }
    };
    let preserve = match &cli.command {
        Some(Command::Create(c)) => Some(c.opts.preserve_fds),
        Some(Command::Run(r)) => Some(r.opts.preserve_fds),
        Some(Command::Exec(e)) => Some(e.preserve_fds),
        _ => None,
    };
    for listen in [0, u32::MAX] {
        drop(preserve.map(|p| husk::fuzzing::kept_fds(listen, p)));
    }
    match cli.command {
        Some(Command::Kill(k)) => drop(husk::fuzzing::parse_signal(&k.signal)),
        // With --resources husk reads a file or stdin: not for a fuzzer.
        Some(Command::Update(u)) if u.resources.is_none() => {
            drop(husk::commands::update::resources(&u))
        }
        Some(Command::Exec(e)) if e.process.is_none() => {
            drop(
                husk::cgroups::SubCgroups::parse(&e.cgroup)
                    .map(|s| s.apply(&[std::path::PathBuf::from("/sys/fs/cgroup/unified/c")])),
            );
            drop(husk::fuzzing::process_from_flags(
                &oci_spec::runtime::Process::default(),
                &e,
            ))
        }
        _ => {}
    }
}
