//! husk-init: a container's PID 1 with tini 0.19's behaviour, as Docker's docker-init is tini.
//!
//! It runs PROG as its only direct child, in a process group of its own that gets the
//! foreground of the tty (if stdin is one); it forwards every signal it receives to that child
//! (with -g to its process group) except SIGCHLD and the signals tini keeps for itself; it
//! reaps every child, its own and the orphans reparented to it (as PID 1, or with -s as a
//! child subreaper); and once PROG has been reaped it exits with PROG's exit code, or
//! 128+signal, remapped to 0 by -e.
//!
//! Single-threaded, no async: every signal but the synchronous ones is blocked and collected
//! with sigwaitinfo, which sleeps until one arrives (SIGCHLD included), so it never polls.
//! tini's messages, options, environment variables and exit codes are kept (notes/init.md).

// Not Rust's `main`: std's runtime would set SIGPIPE to SIG_IGN before our code runs, and an
// ignored signal stays ignored across execve, so PROG would inherit it. tini leaves every
// disposition as its parent gave it; so do we by being called as C's main.
#![cfg_attr(not(test), no_main)]

use std::ffi::{CStr, CString, OsString};
use std::fmt;
use std::io::Write;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{self, ForkResult, Pid};

const VERSION: &str = concat!("husk-init version ", env!("CARGO_PKG_VERSION"));

/// Signals tini neither forwards nor waits for: faults in its own code must kill it, and it
/// ignores the tty stop signals (it gives the tty's foreground to the child and must not be
/// stopped when it writes a message).
const KEPT: [Signal; 9] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// The names `-p` accepts: tini's table.
const PDEATHSIG_NAMES: [&str; 28] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGSYS",
];

const REAPER_WARNING: &str = "husk-init is not running as PID 1 and isn't registered as a child \
subreaper.\nZombie processes will not be re-parented to husk-init, so zombie reaping won't work.\n\
To fix the problem, use the -s option or set the environment variable TINI_SUBREAPER to register \
husk-init as a child subreaper, or run husk-init as PID 1.";

/// tini's levels: FATAL always, WARN above 0 (the default is 1), INFO, DEBUG and TRACE above
/// 1, 2 and 3, on stdout.
static VERBOSITY: AtomicU32 = AtomicU32::new(1);

#[derive(Clone, Copy)]
enum Level {
    Fatal,
    Warn,
    Info,
    Debug,
    Trace,
}

fn log(level: Level, msg: fmt::Arguments) {
    let (label, above) = match level {
        Level::Fatal => ("FATAL", None),
        Level::Warn => ("WARN ", Some(0)),
        Level::Info => ("INFO ", Some(1)),
        Level::Debug => ("DEBUG", Some(2)),
        Level::Trace => ("TRACE", Some(3)),
    };
    if above.is_some_and(|a| VERBOSITY.load(Ordering::Relaxed) <= a) {
        return;
    }
    let line = format_args!("[{label} husk-init ({})] {msg}\n", std::process::id());
    if matches!(level, Level::Fatal | Level::Warn) {
        say(&mut std::io::stderr(), line);
    } else {
        say(&mut std::io::stdout(), line);
    }
}

macro_rules! fatal { ($($a:tt)*) => { log(Level::Fatal, format_args!($($a)*)) } }
macro_rules! warn { ($($a:tt)*) => { log(Level::Warn, format_args!($($a)*)) } }
macro_rules! info { ($($a:tt)*) => { log(Level::Info, format_args!($($a)*)) } }
macro_rules! debug { ($($a:tt)*) => { log(Level::Debug, format_args!($($a)*)) } }
macro_rules! trace { ($($a:tt)*) => { log(Level::Trace, format_args!($($a)*)) } }

#[derive(Debug)]
struct Opts {
    subreaper: bool,
    group: bool,
    verbosity: u32,
    warn_on_reap: bool,
    /// Exit codes that -e turns into 0.
    remap: [bool; 256],
    pdeathsig: Option<Signal>,
    prog: Vec<CString>,
}

#[derive(Debug)]
enum Parsed {
    Run(Box<Opts>),
    Exit(i32),
}

/// Parses the command line as tini does, with glibc's getopt("p:hvwgle:s"): options may come
/// after PROG unless `--` or POSIXLY_CORRECT stops them, so `husk-init sh -c x` reads `-c` as
/// an option, as tini does; Docker always passes `--`. Then the environment, which overrides.
fn parse(args: &[Vec<u8>], env: &dyn Fn(&str) -> Option<OsString>) -> Parsed {
    let argv0 = String::from_utf8_lossy(args.first().map_or(&b"husk-init"[..], |a| a));
    if args.len() == 2 && args[1] == b"--version" {
        say(&mut std::io::stdout(), format_args!("{VERSION}\n"));
        return Parsed::Exit(0);
    }
    let posix = env("POSIXLY_CORRECT").is_some();
    let mut o = Opts {
        subreaper: false,
        group: false,
        verbosity: 1,
        warn_on_reap: false,
        remap: [false; 256],
        pdeathsig: None,
        prog: Vec::new(),
    };
    let mut operands: Vec<&[u8]> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i][..];
        i += 1;
        if a == b"--" {
            operands.extend(args[i..].iter().map(|a| &a[..]));
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            if posix {
                operands.extend(args[i - 1..].iter().map(|a| &a[..]));
                break;
            }
            operands.push(a);
            continue;
        }
        let mut j = 1;
        while j < a.len() {
            let c = a[j];
            j += 1;
            match c {
                b'h' => {
                    usage(&argv0, &mut std::io::stdout());
                    return Parsed::Exit(0);
                }
                b'l' => {
                    say(
                        &mut std::io::stdout(),
                        format_args!(
                            "husk-init is part of husk, licensed under the Apache License 2.0.\n"
                        ),
                    );
                    return Parsed::Exit(0);
                }
                b's' => o.subreaper = true,
                b'v' => o.verbosity = o.verbosity.saturating_add(1),
                b'w' => o.warn_on_reap = true,
                b'g' => o.group = true,
                b'e' | b'p' => {
                    let value = if j < a.len() {
                        let v = &a[j..];
                        j = a.len();
                        v
                    } else if i < args.len() {
                        i += 1;
                        &args[i - 1][..]
                    } else {
                        say(
                            &mut std::io::stderr(),
                            format_args!(
                                "{argv0}: option requires an argument -- '{}'\n",
                                c as char
                            ),
                        );
                        usage(&argv0, &mut std::io::stderr());
                        return Parsed::Exit(1);
                    };
                    let ok = if c == b'e' {
                        strtol(value)
                            .and_then(|v| usize::try_from(v).ok())
                            .and_then(|v| o.remap.get_mut(v))
                            .map(|slot| *slot = true)
                            .is_some()
                    } else {
                        o.pdeathsig = std::str::from_utf8(value)
                            .ok()
                            .filter(|v| PDEATHSIG_NAMES.contains(v))
                            .and_then(|v| v.parse().ok());
                        o.pdeathsig.is_some()
                    };
                    if !ok {
                        let value = String::from_utf8_lossy(value);
                        fatal!("Not a valid option for -{}: {value}", c as char);
                        return Parsed::Exit(1);
                    }
                }
                _ => {
                    say(
                        &mut std::io::stderr(),
                        format_args!("{argv0}: invalid option -- '{}'\n", c as char),
                    );
                    usage(&argv0, &mut std::io::stderr());
                    return Parsed::Exit(1);
                }
            }
        }
    }
    if operands.is_empty() {
        usage(&argv0, &mut std::io::stderr());
        return Parsed::Exit(1);
    }
    // Arguments come from C strings: they hold no NUL.
    o.prog = operands
        .iter()
        .map(|a| CString::new(*a).expect("argv holds no NUL"))
        .collect();
    // Set at all, even empty, counts, as with tini's getenv.
    o.subreaper |= env("TINI_SUBREAPER").is_some();
    o.group |= env("TINI_KILL_PROCESS_GROUP").is_some();
    if let Some(v) = env("TINI_VERBOSITY") {
        // atoi into tini's unsigned: junk is 0, a negative number wraps to "everything".
        o.verbosity = atoi(v.as_encoded_bytes()) as u32;
    }
    Parsed::Run(Box::new(o))
}

/// C's strtol(s, &end, 10) with `*end == 0` required, as tini checks -e: leading white
/// space and a sign allowed, nothing after the digits; "" is 0. None on junk or overflow.
fn strtol(s: &[u8]) -> Option<i64> {
    let t = s.trim_ascii_start();
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if s.is_empty() {
        return Some(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// C's atoi: the number at the start of `s` (after white space and a sign), 0 if none.
fn atoi(s: &[u8]) -> i64 {
    let t = s.trim_ascii_start();
    let (neg, rest) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let v = rest
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |v, d| {
            v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if neg {
        -v
    } else {
        v
    }
}

/// Writes to stdout or stderr; unlike print!, never panics: a message that cannot be written
/// (a closed or full pipe) must not stop the init, and the exit code still tells.
fn say(out: &mut dyn Write, msg: fmt::Arguments) {
    // One write, so that a line is not split among other processes' output.
    let text = msg.to_string();
    // Ignored on purpose, see above.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn usage(argv0: &str, out: &mut dyn Write) {
    let name = argv0.rsplit('/').next().unwrap_or(argv0);
    say(
        out,
        format_args!(
            "{name} ({VERSION})\n\
         Usage: {name} [OPTIONS] PROGRAM -- [ARGS] | --version\n\n\
         Execute a program under the supervision of a valid init process ({name})\n\n\
         Command line options:\n\n  \
         --version: Show version and exit.\n  \
         -h: Show this help message and exit.\n  \
         -s: Register as a process subreaper (requires Linux >= 3.4).\n  \
         -p SIGNAL: Trigger SIGNAL when parent dies, e.g. \"-p SIGKILL\".\n  \
         -v: Generate more verbose output. Repeat up to 3 times.\n  \
         -w: Print a warning when processes are getting reaped.\n  \
         -g: Send signals to the child's process group.\n  \
         -e EXIT_CODE: Remap EXIT_CODE (from 0 to 255) to 0.\n  \
         -l: Show license and exit.\n\n\
         Environment variables:\n\n  \
         TINI_SUBREAPER: Register as a process subreaper (requires Linux >= 3.4).\n  \
         TINI_VERBOSITY: Set the verbosity level (default: 1).\n  \
         TINI_KILL_PROCESS_GROUP: Send signals to the child's process group.\n\n"
        ),
    );
}

fn strsignal(signo: i32) -> String {
    // SAFETY: strsignal returns a valid C string; we are single-threaded, so its static buffer
    // (for unknown numbers) is not overwritten while we copy it.
    unsafe { CStr::from_ptr(libc::strsignal(signo)) }
        .to_string_lossy()
        .into_owned()
}

/// What the child restores before exec: the mask and the two handlers as we found them.
struct Inherited {
    mask: SigSet,
    ttin: SigAction,
    ttou: SigAction,
}

#[cfg_attr(not(test), no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    let args = (0..argc.max(0) as usize)
        // SAFETY: the C runtime passes argc valid NUL-terminated strings in argv.
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes().to_vec())
        .collect::<Vec<_>>();
    match parse(&args, &|k| std::env::var_os(k)) {
        Parsed::Exit(code) => code,
        Parsed::Run(o) => run(&o),
    }
}

fn run(o: &Opts) -> i32 {
    VERBOSITY.store(o.verbosity, Ordering::Relaxed);
    let mut waited = SigSet::all();
    for s in KEPT {
        waited.remove(s);
    }
    let mask = match waited.thread_swap_mask(SigmaskHow::SIG_SETMASK) {
        Ok(m) => m,
        Err(e) => {
            fatal!("sigprocmask failed: '{}'", e.desc());
            return 1;
        }
    };
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no handler code.
    let ttin = unsafe { signal::sigaction(Signal::SIGTTIN, &ignore) };
    // SAFETY: as above.
    let ttou = unsafe { signal::sigaction(Signal::SIGTTOU, &ignore) };
    let (Ok(ttin), Ok(ttou)) = (ttin, ttou) else {
        fatal!("Failed to ignore SIGTTIN or SIGTTOU");
        return 1;
    };
    if let Some(sig) = o.pdeathsig {
        if prctl::set_pdeathsig(sig).is_err() {
            fatal!("Failed to set up parent death signal");
            return 1;
        }
    }
    if o.subreaper {
        match prctl::set_child_subreaper(true) {
            Ok(()) => trace!("Registered as child subreaper"),
            Err(Errno::EINVAL) => {
                fatal!("PR_SET_CHILD_SUBREAPER is unavailable on this platform. Are you using Linux >= 3.4?");
                return 1;
            }
            Err(e) => {
                fatal!("Failed to register as child subreaper: {}", e.desc());
                return 1;
            }
        }
    }
    if unistd::getpid().as_raw() != 1 && !prctl::get_child_subreaper().unwrap_or(false) {
        warn!("{REAPER_WARNING}");
    }

    // SAFETY: single-threaded, so the child may allocate and print before exec.
    let child = match unsafe { unistd::fork() } {
        Err(e) => {
            fatal!("fork failed: {}", e.desc());
            return 1;
        }
        Ok(ForkResult::Child) => exec_child(o, &Inherited { mask, ttin, ttou }),
        Ok(ForkResult::Parent { child }) => child,
    };
    let prog0 = o.prog[0].to_string_lossy();
    info!("Spawned child process '{prog0}' with pid '{child}'");

    loop {
        let signo = match wait_signal(&waited) {
            Ok(s) => s,
            Err(e) => {
                fatal!("Unexpected error in sigwaitinfo: '{}'", e.desc());
                return 1;
            }
        };
        if signo == libc::SIGCHLD {
            debug!("Received SIGCHLD");
        } else {
            debug!("Passing signal: '{}'", strsignal(signo));
            let target = if o.group {
                -child.as_raw()
            } else {
                child.as_raw()
            };
            // SAFETY: kill takes plain integers. Raw because nix's Signal cannot name the
            // real-time signals, which are forwarded too.
            if unsafe { libc::kill(target, signo) } != 0 {
                match Errno::last() {
                    Errno::ESRCH => warn!("Child was dead when forwarding signal"),
                    e => {
                        fatal!("Unexpected error when forwarding signal: '{}'", e.desc());
                        return 1;
                    }
                }
            }
        }
        match reap(child, o) {
            Err(()) => return 1,
            Ok(Some(code)) => {
                trace!("Exiting: child has exited");
                return code;
            }
            Ok(None) => {}
        }
    }
}

/// The next signal of `set` (all blocked), sleeping until one is pending.
fn wait_signal(set: &SigSet) -> Result<i32, Errno> {
    loop {
        // SAFETY: a valid sigset; a null siginfo pointer is allowed.
        let r = unsafe { libc::sigwaitinfo(set.as_ref(), std::ptr::null_mut()) };
        if r >= 0 {
            return Ok(r);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// Reaps every child that has exited. Some(exit code) once PROG is among them.
fn reap(child: Pid, o: &Opts) -> Result<Option<i32>, ()> {
    let mut code = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer. Raw because nix's WaitStatus cannot
        // hold a death by a real-time signal.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == 0 {
            trace!("No child to reap");
            return Ok(code);
        }
        if pid < 0 {
            return match Errno::last() {
                Errno::ECHILD => {
                    trace!("No child to wait");
                    Ok(code)
                }
                e => {
                    fatal!("Error while waiting for pids: '{}'", e.desc());
                    Err(())
                }
            };
        }
        debug!("Reaped child with pid: '{pid}'");
        if pid != child.as_raw() {
            if o.warn_on_reap {
                warn!("Reaped zombie process with pid={pid}");
            }
            continue;
        }
        let raw = if libc::WIFEXITED(status) {
            let c = libc::WEXITSTATUS(status);
            info!("Main child exited normally (with status '{c}')");
            c
        } else if libc::WIFSIGNALED(status) {
            let s = libc::WTERMSIG(status);
            info!(
                "Main child exited with signal (with signal '{}')",
                strsignal(s)
            );
            128 + s
        } else {
            fatal!("Main child exited for unknown reason");
            return Err(());
        };
        let c = raw.rem_euclid(256);
        code = Some(if o.remap[c as usize] { 0 } else { c });
    }
}

/// In the forked child: own process group, the tty's foreground if stdin is one, the signal
/// state we inherited, then PROG. Exits 127 if PROG is not found, 126 if not executable.
fn exec_child(o: &Opts, inherited: &Inherited) -> ! {
    let code = 'fail: {
        if let Err(e) = unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
            fatal!("setpgid failed: {}", e.desc());
            break 'fail 1;
        }
        // Done here, not in the parent: an init run under another init would otherwise race
        // its parent's tcsetpgrp and could leave PROG in the background. SIGTTOU is ignored,
        // so a background group may take the foreground.
        // SAFETY: fd 0 stays open for the call.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        match unistd::tcsetpgrp(stdin, unistd::getpgrp()) {
            Ok(()) => {}
            Err(Errno::ENOTTY) => debug!("tcsetpgrp failed: no tty (ok to proceed)"),
            Err(Errno::ENXIO) => debug!("tcsetpgrp failed: no such device (ok to proceed)"),
            Err(e) => {
                fatal!("tcsetpgrp failed: {}", e.desc());
                break 'fail 1;
            }
        }
        if let Err(e) = inherited.mask.thread_set_mask() {
            fatal!("Restoring child signal mask failed: '{}'", e.desc());
            break 'fail 1;
        }
        // SAFETY: restoring dispositions the kernel gave us.
        if let Err(e) = unsafe { signal::sigaction(Signal::SIGTTIN, &inherited.ttin) } {
            fatal!("Restoring SIGTTIN handler failed: '{}'", e.desc());
            break 'fail 1;
        }
        // SAFETY: as above.
        if let Err(e) = unsafe { signal::sigaction(Signal::SIGTTOU, &inherited.ttou) } {
            fatal!("Restoring SIGTTOU handler failed: '{}'", e.desc());
            break 'fail 1;
        }
        let Err(e) = unistd::execvp(&o.prog[0], &o.prog);
        fatal!("exec {} failed: {}", o.prog[0].to_string_lossy(), e.desc());
        match e {
            Errno::ENOENT => 127,
            Errno::EACCES => 126,
            _ => 1,
        }
    };
    // SAFETY: _exit ends the forked child without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Parsed {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let env: Vec<(String, OsString)> =
            env.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        parse(&args, &|k| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    fn run_opts(args: &[&str], env: &[(&str, &str)]) -> Opts {
        match parse_with(args, env) {
            Parsed::Run(o) => *o,
            p => panic!("{args:?}: {p:?}"),
        }
    }

    fn prog(o: &Opts) -> Vec<&str> {
        o.prog.iter().map(|c| c.to_str().unwrap()).collect()
    }

    #[test]
    fn options_are_permuted_like_glibc_getopt() {
        let o = run_opts(&["i", "-s", "sleep", "-g", "1"], &[]);
        assert!(o.subreaper && o.group);
        assert_eq!(prog(&o), ["sleep", "1"]);
        let o = run_opts(&["i", "-sg", "--", "sh", "-c", "x"], &[]);
        assert!(o.subreaper && o.group);
        assert_eq!(prog(&o), ["sh", "-c", "x"]);
        let o = run_opts(&["i", "sh", "-g"], &[("POSIXLY_CORRECT", "")]);
        assert!(!o.group);
        assert_eq!(prog(&o), ["sh", "-g"]);
        assert!(matches!(
            parse_with(&["i", "sh", "-c", "x"], &[]),
            Parsed::Exit(1)
        ));
    }

    #[test]
    fn exit_codes_of_parsing() {
        assert!(matches!(parse_with(&["i"], &[]), Parsed::Exit(1)));
        assert!(matches!(parse_with(&["i", "--"], &[]), Parsed::Exit(1)));
        assert!(matches!(parse_with(&["i", "-e"], &[]), Parsed::Exit(1)));
        assert!(matches!(
            parse_with(&["i", "-e", "256", "true"], &[]),
            Parsed::Exit(1)
        ));
        assert!(matches!(
            parse_with(&["i", "-p", "SIGPWR", "true"], &[]),
            Parsed::Exit(1)
        ));
        assert!(matches!(parse_with(&["i", "-h"], &[]), Parsed::Exit(0)));
        assert!(matches!(
            parse_with(&["i", "--version"], &[]),
            Parsed::Exit(0)
        ));
        // Only as the sole argument; otherwise getopt reads "--version" as options.
        assert!(matches!(
            parse_with(&["i", "--version", "x"], &[]),
            Parsed::Exit(1)
        ));
    }

    #[test]
    fn remap_values() {
        let o = run_opts(&["i", "-e", "3", "-e+4", "-e", " 255", "-e", "", "x"], &[]);
        let set: Vec<usize> = (0..256).filter(|&c| o.remap[c]).collect();
        assert_eq!(set, [0, 3, 4, 255]);
        for bad in ["-1", "x", "3x", " ", "+", "99999999999999999999"] {
            assert!(
                matches!(parse_with(&["i", "-e", bad, "x"], &[]), Parsed::Exit(1)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn environment() {
        let o = run_opts(&["i", "-vv", "x"], &[("TINI_SUBREAPER", "")]);
        assert!(o.subreaper && !o.group);
        assert_eq!(o.verbosity, 3);
        let o = run_opts(
            &["i", "-vv", "x"],
            &[("TINI_VERBOSITY", "0"), ("TINI_KILL_PROCESS_GROUP", "1")],
        );
        assert_eq!(o.verbosity, 0);
        assert!(o.group);
        let o = run_opts(&["i", "-p", "SIGKILL", "x"], &[("TINI_VERBOSITY", "junk")]);
        assert_eq!(o.verbosity, 0);
        assert_eq!(
            run_opts(&["i", "x"], &[("TINI_VERBOSITY", " 2x")]).verbosity,
            2
        );
        assert_eq!(o.pdeathsig, Some(Signal::SIGKILL));
    }
}
