//! docker's commands and flags, as clap sees them.

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "huskctl",
    version,
    about = "A client for huskd, with docker's commands",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(
        short = 'H',
        long,
        env = "HUSK_HOST",
        default_value = "unix:///run/husk/huskd.sock",
        global = true
    )]
    pub host: String,
    /// Print the requests made (debug log)
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(Run),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(Create),
    /// Start one or more stopped containers
    Start(Start),
    /// List containers
    Ps(Ps),
    /// Fetch the logs of a container
    Logs(Logs),
    /// Execute a command in a running container
    Exec(Exec),
    /// Stop one or more running containers
    Stop(Stop),
    /// Kill one or more running containers
    Kill(Kill),
    /// Remove one or more containers
    Rm(Rm),
    /// Return low-level information on objects
    Inspect(Inspect),
    /// Block until containers stop, then print their exit codes
    Wait(Names),
    /// Pause all processes within one or more containers
    Pause(Names),
    /// Unpause all processes within one or more containers
    Unpause(Names),
    /// Display a live stream of container resource usage statistics
    Stats(Stats),
    /// Load an image from a tar archive or STDIN
    Load(Load),
    /// Download an image from a registry
    Pull(Pull),
    /// List images
    Images(Images),
    /// Remove one or more images
    Rmi(Rmi),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(Tag),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Display detailed information on one or more images
    Inspect(ImageInspect),
    /// List images
    #[command(alias = "list")]
    Ls(Images),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(Rmi),
    /// Load an image from a tar archive or STDIN
    Load(Load),
    /// Download an image from a registry
    Pull(Pull),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(Tag),
}

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Display detailed information on one or more containers
    Inspect(ImageInspect),
    /// List containers
    #[command(alias = "list")]
    Ls(Ps),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(Rm),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(Run),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(Create),
    /// Start one or more stopped containers
    Start(Start),
    /// Fetch the logs of a container
    Logs(Logs),
    /// Execute a command in a running container
    Exec(Exec),
    /// Stop one or more running containers
    Stop(Stop),
    /// Kill one or more running containers
    Kill(Kill),
    /// Block until containers stop, then print their exit codes
    Wait(Names),
    /// Pause all processes within one or more containers
    Pause(Names),
    /// Unpause all processes within one or more containers
    Unpause(Names),
    /// Display a live stream of container resource usage statistics
    Stats(Stats),
}

// The flags of the process a container runs that `run`, `create` and `exec` share. (Not a
// doc comment: clap would show it as the about of `container exec`, which has none of its own.)
#[derive(Args, Clone)]
pub struct ProcessOpts {
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
}

// The flags `run` and `create` share: what goes into the container's configuration. (Not a doc
// comment: clap would show it as the about of a subcommand without one of its own.)
#[derive(Args, Clone)]
pub struct ContainerOpts {
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub process: ProcessOpts,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Bind mount a volume (host:container[:ro])
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Mount a tmpfs directory (path[:options])
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short, long, value_parser = crate::config::parse_memory)]
    pub memory: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_parser = crate::config::parse_cpus)]
    pub cpus: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto])
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Connect a container to a network (none, bridge, host)
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security options (seccomp=unconfined, seccomp=builtin, seccomp=<profile.json>)
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Restart policy to apply when a container exits (no, on-failure[:N], always)
    #[arg(long, value_parser = crate::config::parse_restart)]
    pub restart: Option<(String, i64)>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// The image
    pub image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct Run {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Args)]
pub struct Create {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Args)]
pub struct Start {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct Ps {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the latest created container
    #[arg(short, long)]
    pub latest: bool,
    /// Pretty-print containers using a Go template (only {{.Field}} actions)
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided (name=, status=, id=, ...)
    #[arg(short, long)]
    pub filter: Vec<String>,
}

#[derive(Args)]
pub struct Logs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(Args)]
pub struct Exec {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub process: ProcessOpts,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct Stop {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct Kill {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct Rm {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct Inspect {
    /// Format output using a Go template (only {{.Path}} and {{json .Path}} actions)
    #[arg(short, long)]
    pub format: Option<String>,
    /// Return JSON for specified type (container, image)
    #[arg(long = "type", value_parser = ["container", "image"])]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct ImageInspect {
    /// Format output using a Go template (only {{.Path}} and {{json .Path}} actions)
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct Names {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct Stats {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct Load {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct Pull {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args)]
pub struct Images {
    /// Show all images
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// REPOSITORY[:TAG] to list
    pub reference: Option<String>,
}

#[derive(Args)]
pub struct Rmi {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct Tag {
    pub source: String,
    pub target: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command has docker's one-line description, and `container X` the same as `X`: a doc
    /// comment on a flattened struct once showed up there instead.
    #[test]
    fn every_command_is_described_as_docker_describes_it() {
        let mut root = Cli::command();
        root.build();
        let about = |c: &clap::Command| c.get_about().map(|a| a.to_string()).unwrap_or_default();
        let container = root.find_subcommand("container").unwrap();
        for group in [&root, container, root.find_subcommand("image").unwrap()] {
            for c in group.get_subcommands() {
                let text = about(c);
                assert!(
                    !text.is_empty(),
                    "{} {}: no description",
                    group.get_name(),
                    c.get_name()
                );
                assert!(
                    !text.contains("flags"),
                    "{} {}: {text}",
                    group.get_name(),
                    c.get_name()
                );
            }
        }
        for c in container.get_subcommands() {
            if let Some(top) = root.find_subcommand(c.get_name()) {
                if !matches!(c.get_name(), "inspect" | "rm") {
                    assert_eq!(about(c), about(top), "container {}", c.get_name());
                }
            }
        }
    }
}
