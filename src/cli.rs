//! runc-compatible command line. Flag names and defaults follow runc 1.2 so that scripts and
//! containerd's go-runc client work unchanged; `normalize_args` turns Go-style single-dash long
//! flags (`-bundle`, `-no-subreaper`) into the double-dash form clap parses.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "husk",
    about = "husk is a command line client for running applications packaged according to the Open Container Initiative (OCI) format",
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// root directory for storage of container state (this should be located in tmpfs)
    /// [default: /run/husk, or $XDG_RUNTIME_DIR/husk for a rootless user]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// set the log file to write husk logs to (default is stderr)
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", default_value = "text")]
    pub log_format: LogFormat,
    /// enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// enable systemd cgroup support, expects cgroupsPath to be of form "slice:prefix:name" for
    /// e.g. "system.slice:runc:434234" (cgroup v2 hosts only)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// path to the criu binary used for checkpoint and restore
    #[arg(long, default_value = "criu")]
    pub criu: PathBuf,
    /// print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// create a container
    Create(Lazy<Create>),
    /// executes the user defined process in a created container
    Start(Lazy<IdArg>),
    /// output the state of a container
    State(Lazy<IdArg>),
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(Lazy<Kill>),
    /// delete any resources held by the container often used with detached container
    Delete(Lazy<Delete>),
    /// lists containers started by husk with the given root
    #[command(visible_alias = "ls")]
    List(Lazy<List>),
    /// create and run a container
    Run(Lazy<Run>),
    /// execute new process inside the container
    Exec(Lazy<Exec>),
    /// pause suspends all processes inside the container
    Pause(Lazy<IdArg>),
    /// resumes all processes that have been previously paused
    Resume(Lazy<IdArg>),
    /// ps displays the processes running inside a container
    Ps(Lazy<Ps>),
    /// update container resource constraints
    Update(Lazy<Update>),
    /// display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(Lazy<Events>),
    /// create a new specification file
    Spec(Lazy<Spec>),
    /// show the enabled features
    Features,
    /// checkpoint a running container
    Checkpoint(Lazy<Checkpoint>),
    /// restore a container from a previous checkpoint
    Restore(Lazy<Restore>),
}

/// A subcommand's flags, added to clap's command only when that subcommand is the one parsed.
/// clap's derive builds every subcommand's flags on each invocation otherwise: that was a tenth
/// of `husk run`'s user time in the cgroup v2 guest (notes/cli.md).
#[derive(Debug, Clone)]
pub struct Lazy<T>(pub T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Lazy<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Lazy)
    }
    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(Lazy)
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
    fn update_from_arg_matches_mut(&mut self, m: &mut clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

#[derive(Args, Debug)]
pub struct IdArg {
    /// the container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateOpts {
    /// path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the init process
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct Create {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// the container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Run {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// the container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Kill {
    /// send the specified signal to all processes inside the container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// the container id
    pub id: String,
    /// the signal (name with or without SIG, or number)
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct Delete {
    /// forcibly deletes the container if it is still running (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// the container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct List {
    /// select one of: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: ListFormat,
    /// display only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct Exec {
    /// path to the process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the exec process
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// current working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// add a capability to the bounding set for the process
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// run the process in an (existing) sub-cgroup(s); format is [<controller>:]<cgroup>
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// the container id
    pub id: String,
    /// the command and its arguments; parsing stops at the first of them
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Events {
    /// set the stats collection interval (a Go duration: 5s, 100ms, 1m30s)
    #[arg(long, default_value = "5s", allow_hyphen_values = true)]
    pub interval: String,
    /// display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    /// the container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Ps {
    /// select one of: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: ListFormat,
    /// the container id
    pub id: String,
    /// options passed to ps(1) (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct Update {
    /// path to the file containing the resources to update or '-' to read from the standard input
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// memory node(s) to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// memory limit (in bytes, or with a unit: 512m)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// memory reservation or soft_limit (in bytes)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// obsoleted; do not use
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// obsoleted; do not use
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    /// maximum number of pids allowed in the container
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// the string of Intel RDT/CAT L3 cache schema
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// the string of Intel RDT/MBA memory bandwidth schema
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// the container id
    pub id: String,
}

// The CRIU flags that `checkpoint` and `restore` share. A plain comment: a doc comment would
// become the help text of both commands, set after theirs now that their flags are `Lazy`.
#[derive(Args, Debug, Clone, Default)]
pub struct CriuFlags {
    /// path for saving criu image files (checkpoint), or to restore from (restore)
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft|full|strict|ignore (default: soft)
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// create a namespace, but don't restore its properties
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
}

#[derive(Args, Debug)]
pub struct Checkpoint {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// path for previous criu image files in pre-dump
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_hyphen_values = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// dump container's memory information only, leave the container running after this
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// the container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Restore {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Specify an LSM profile to be used during restore in the form of TYPE:NAME.
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// Specify an LSM mount context to be used during restore.
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    /// the container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Spec {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

/// The logging flags of a command line that does not parse, as far as they can be read, so that
/// its usage error is logged where and how the caller asked: (--log, json, --debug).
pub fn logging_flags(args: &[OsString]) -> (Option<PathBuf>, bool, bool) {
    use clap::{CommandFactory, FromArgMatches};
    Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()
        .and_then(|m| Global::from_arg_matches(&m).ok())
        .map_or((None, false, false), |g| {
            (g.log, g.log_format == LogFormat::Json, g.debug)
        })
}

/// Rewrites Go-style single-dash long flags (`-bundle x`, `-no-subreaper`) into `--bundle x`,
/// as runc's flag parser accepts both. Only names that are long flags of the command in effect
/// are rewritten, so short flags (`-d`) and the container's own argv (after `exec <id>`) stay.
/// urfave/cli's `help [CMD]` and `h [CMD]` become `[CMD] --help`.
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    use clap::CommandFactory;
    normalize_with(&Cli::command(), args)
}

/// The command line parsed, after `normalize_args`, with one clap command built for both.
pub fn parse(args: Vec<OsString>) -> (Vec<OsString>, Result<Cli, clap::Error>) {
    use clap::{CommandFactory, FromArgMatches};
    let mut root = Cli::command();
    let args = normalize_with(&root, args);
    let cli = root
        .try_get_matches_from_mut(&args)
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    (args, cli)
}

fn normalize_with(root: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    // The subcommand named, built: its flags are deferred until then (`Lazy`).
    let mut sub: Option<clap::Command> = None;
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(argv0) = iter.next() {
        out.push(argv0);
    }
    let mut passthrough = false;
    let mut skip_value = false;
    let mut help = false;
    for arg in iter {
        if passthrough {
            out.push(arg);
            continue;
        }
        if skip_value {
            skip_value = false;
            out.push(arg);
            continue;
        }
        let s = match arg.to_str() {
            Some(s) => s.to_owned(),
            None => {
                out.push(arg);
                continue;
            }
        };
        if s == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let s = s.as_str();
        let (dashes, body) = if let Some(b) = s.strip_prefix("--") {
            (2, b)
        } else if let Some(b) = s.strip_prefix('-') {
            (1, b)
        } else {
            (0, s)
        };
        let cmd = sub.as_ref().unwrap_or(root);
        if dashes == 0 {
            // A positional: the first one at top level names the subcommand.
            if sub.is_none() {
                // `help [CMD]` (or `h`) is `[CMD] --help`; what follows CMD does not matter.
                let is_help = matches!(s, "help" | "h");
                if is_help && !help {
                    help = true;
                    continue;
                }
                if help && is_help {
                    out.push("--help".into());
                    return out;
                }
                if help {
                    out.extend([arg, "--help".into()]);
                    return out;
                }
                if let Some(found) = root.find_subcommand(s) {
                    let mut built = found.clone();
                    built.build();
                    sub = Some(built);
                    out.push(arg);
                    continue;
                }
            }
            out.push(arg);
            // exec <id> <command...>, ps <id> <ps args...>: everything after the id is theirs,
            // `-h` and `--` included, as runc's flag parsing stops at the id.
            if matches!(cmd.get_name(), "exec" | "ps") {
                passthrough = true;
                out.push("--".into());
            }
            continue;
        }
        let name = body.split_once('=').map_or(body, |(n, _)| n);
        let find = |c: &clap::Command| {
            c.get_arguments()
                .find(|a| a.get_long() == Some(name))
                .map(|a| a.get_action().takes_values())
        };
        let takes_value = find(cmd).or_else(|| find(root));
        match takes_value {
            Some(tv) if dashes == 1 && name.len() > 1 => {
                let mut fixed = OsString::from("-");
                fixed.push(&arg);
                out.push(fixed);
                skip_value = tv && !body.contains('=');
            }
            Some(tv) => {
                out.push(arg);
                skip_value = tv && !body.contains('=');
            }
            None => {
                // A short flag that takes a value consumes the next word (`-p x`, `-f json`).
                if dashes == 1 && body.len() == 1 {
                    let short = body.chars().next();
                    skip_value = cmd
                        .get_arguments()
                        .chain(root.get_arguments())
                        .any(|a| a.get_short() == short && a.get_action().takes_values());
                }
                out.push(arg);
            }
        }
    }
    if help {
        out.push("--help".into());
    }
    out
}

/// A command line that does not parse, as runc (urfave/cli) reports it.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    /// The line logged.
    pub msg: String,
    /// 1, or 3 for an unknown command.
    pub code: i32,
    /// What goes on stdout: `Incorrect Usage…`, a blank line and the command's help.
    pub stdout: Option<String>,
}

/// How many ids a command takes, in runc's words for a wrong count.
fn count_error(sub: &str, too_many: bool) -> String {
    let want = match (sub, too_many) {
        ("list" | "spec" | "features", _) => "exactly 0",
        ("kill", true) => "a maximum of 2",
        ("kill" | "ps" | "exec", false) => "a minimum of 1",
        _ => "exactly 1",
    };
    format!("husk: {sub:?} requires {want} argument(s)")
}

/// The help of `sub` (or of husk), as `-h` prints it.
fn help_of(sub: Option<&str>) -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build();
    match sub.and_then(|s| cmd.find_subcommand_mut(s)) {
        Some(c) => c.render_help().to_string(),
        None => cmd.render_help().to_string(),
    }
}

/// The usage error of a command line that does not parse; None for help and version, which
/// clap prints itself.
pub fn usage_error(e: &clap::Error, args: &[OsString]) -> Option<UsageError> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    let sub = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()
        .and_then(|m| m.subcommand_name().map(str::to_owned));
    let context = |k| match e.get(k) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    // Go's flag package names a flag with one dash, whatever the caller typed.
    let flag = |a: &str| {
        let name = a.trim_start_matches('-');
        format!("-{}", name.split(['=', ' ']).next().unwrap_or(name))
    };
    let plain = |msg| UsageError {
        msg,
        code: 1,
        stdout: None,
    };
    let (msg, separate) = match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => return None,
        // urfave/cli's words, with its newline (runc logs it escaped: "...'nosuch'\n").
        ErrorKind::InvalidSubcommand => {
            return Some(UsageError {
                msg: format!(
                    "No help topic for '{}'\n",
                    context(ContextKind::InvalidSubcommand)
                ),
                code: 3,
                stdout: None,
            })
        }
        ErrorKind::MissingRequiredArgument => {
            (count_error(sub.as_deref().unwrap_or("husk"), false), false)
        }
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg);
            match &sub {
                Some(s) if !arg.starts_with('-') => (count_error(s, true), false),
                _ => (
                    format!("flag provided but not defined: {}", flag(&arg)),
                    true,
                ),
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let name = flag(&context(ContextKind::InvalidArg));
            match context(ContextKind::InvalidValue) {
                v if v.is_empty() => {
                    let typed = args.last().and_then(|a| a.to_str()).unwrap_or(&name);
                    (format!("flag needs an argument: {}", flag(typed)), true)
                }
                // runc checks these two after parsing, as plain errors.
                v if name == "-log-format" => {
                    return Some(plain(format!("invalid log-format: {v}")))
                }
                _ if name == "-format" => return Some(plain("invalid format option".into())),
                v => (
                    format!("invalid value {v:?} for flag {name}: parse error"),
                    true,
                ),
            }
        }
        _ => {
            let text = e.render().to_string();
            let line = text
                .lines()
                .next()
                .unwrap_or("usage error")
                .trim_start_matches("error: ");
            return Some(plain(format!("husk: {line}")));
        }
    };
    // urfave/cli: `Incorrect Usage.` for a wrong count, `Incorrect Usage: <error>` for a
    // command's flag, `Incorrect Usage. <error>` for a global one.
    let head = match (separate, sub.is_some()) {
        (false, _) => "Incorrect Usage.".to_owned(),
        (true, true) => format!("Incorrect Usage: {msg}"),
        (true, false) => format!("Incorrect Usage. {msg}"),
    };
    Some(UsageError {
        stdout: Some(format!("{head}\n\n{}", help_of(sub.as_deref()))),
        msg,
        code: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "husk",
                "-root",
                "/r",
                "run",
                "-bundle",
                "b",
                "-no-subreaper",
                "-d",
                "id"
            ]),
            [
                "husk",
                "--root",
                "/r",
                "run",
                "--bundle",
                "b",
                "--no-subreaper",
                "-d",
                "id"
            ]
        );
        assert_eq!(
            norm(&["husk", "create", "-pid-file=/p", "x"]),
            ["husk", "create", "--pid-file=/p", "x"]
        );
    }

    #[test]
    fn exec_arguments_after_id_are_untouched() {
        assert_eq!(
            norm(&["husk", "exec", "-cwd", "/", "id", "ls", "-root", "-la"]),
            ["husk", "exec", "--cwd", "/", "id", "--", "ls", "-root", "-la"]
        );
        // -h after the id is the program's (or ps's), and so is a `--`.
        for (args, want) in [
            (&["husk", "exec", "id", "-h"][..], &["-h"][..]),
            (&["husk", "exec", "id", "--", "x"], &["--", "x"]),
            (&["husk", "exec", "--", "id", "x"], &["x"]),
        ] {
            match Cli::try_parse_from(norm(args)).map(|c| c.command) {
                Ok(Some(Command::Exec(e))) => assert_eq!(e.command, want, "{args:?}"),
                other => panic!("{args:?} parsed as {other:?}"),
            }
        }
        match Cli::try_parse_from(norm(&["husk", "ps", "id", "-h"])).map(|c| c.command) {
            Ok(Some(Command::Ps(p))) => assert_eq!(p.ps_args, ["-h"]),
            other => panic!("ps parsed as {other:?}"),
        }
        let cli =
            Cli::try_parse_from(norm(&["husk", "exec", "-t", "id", "sh", "-c", "x"])).unwrap();
        match cli.command {
            Some(Command::Exec(e)) => {
                assert!(e.tty);
                assert_eq!(e.command, ["sh", "-c", "x"]);
            }
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn values_of_flags_are_not_rewritten() {
        assert_eq!(
            norm(&["husk", "exec", "-e", "-debug", "id", "true"]),
            ["husk", "exec", "-e", "-debug", "id", "--", "true"]
        );
    }

    #[test]
    fn kill_takes_optional_signal() {
        let cli = Cli::try_parse_from(["husk", "kill", "c1"]).unwrap();
        match cli.command {
            Some(Command::Kill(k)) => assert_eq!(k.signal, "SIGTERM"),
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn usage_errors_read_like_runc() {
        let usage = |args: &[&str]| {
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            let e = Cli::try_parse_from(&args).unwrap_err();
            usage_error(&e, &args)
        };
        let msg = |args: &[&str]| usage(args).map(|u| (u.msg, u.code));
        for (args, want) in [
            (
                &["husk", "create"][..],
                r#"husk: "create" requires exactly 1 argument(s)"#,
            ),
            (
                &["husk", "create", "a", "b"],
                r#"husk: "create" requires exactly 1 argument(s)"#,
            ),
            (
                &["husk", "kill"],
                r#"husk: "kill" requires a minimum of 1 argument(s)"#,
            ),
            (
                &["husk", "kill", "a", "b", "c"],
                r#"husk: "kill" requires a maximum of 2 argument(s)"#,
            ),
            (
                &["husk", "list", "x"],
                r#"husk: "list" requires exactly 0 argument(s)"#,
            ),
            (
                &["husk", "create", "--xyz", "a"],
                "flag provided but not defined: -xyz",
            ),
            (
                &["husk", "--bogus=1", "list"],
                "flag provided but not defined: -bogus",
            ),
            (&["husk", "create", "-b"], "flag needs an argument: -b"),
            (
                &["husk", "create", "--preserve-fds", "x", "a"],
                r#"invalid value "x" for flag -preserve-fds: parse error"#,
            ),
        ] {
            assert_eq!(msg(args), Some((want.into(), 1)), "{args:?}");
        }
        let out = |args: &[&str]| usage(args).and_then(|u| u.stdout).unwrap();
        assert!(out(&["husk", "create"]).starts_with("Incorrect Usage.\n\ncreate a container"));
        assert!(out(&["husk", "state", "-x"])
            .starts_with("Incorrect Usage: flag provided but not defined: -x\n\n"));
        assert!(out(&["husk", "-x", "list"])
            .starts_with("Incorrect Usage. flag provided but not defined: -x\n\n"));
        for args in [&["husk", "nosuch"][..], &["husk", "nosuch", "-h"]] {
            assert_eq!(msg(args), Some(("No help topic for 'nosuch'\n".into(), 3)));
        }
        let flags =
            |args: &[&str]| logging_flags(&args.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(
            flags(&[
                "husk",
                "--log",
                "/l",
                "--log-format",
                "json",
                "--debug",
                "nosuch",
                "-h"
            ]),
            (Some(PathBuf::from("/l")), true, true)
        );
        assert_eq!(flags(&["husk", "--bogus", "create"]), (None, false, false));
        assert_eq!(usage(&["husk", "--help"]), None);
        assert_eq!(norm(&["husk", "help"]), ["husk", "--help"]);
        assert_eq!(norm(&["husk", "help", "help"]), ["husk", "--help"]);
        assert_eq!(norm(&["husk", "h", "state"]), ["husk", "state", "--help"]);
        assert_eq!(
            msg(&["husk", "--log-format", "xml", "list"]),
            Some(("invalid log-format: xml".into(), 1))
        );
        assert_eq!(
            norm(&["husk", "--root", "/r", "help", "create", "x"]),
            ["husk", "--root", "/r", "create", "--help"]
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
