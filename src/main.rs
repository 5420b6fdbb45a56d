//! The `husk` command line: parses runc's flags, runs one command, and reports a failure the way
//! runc does (a log line, exit status 1).

use anyhow::Result;
use husk::cli::{Cli, Command, LogFormat};
use husk::commands;

fn main() {
    let (args, cli) = husk::cli::parse(std::env::args_os().collect());
    let cli = match cli {
        Ok(c) => c,
        Err(e) => match husk::cli::usage_error(&e, &args) {
            Some(u) => {
                if let Some(text) = &u.stdout {
                    print!("{text}");
                }
                // Logged like any error, where --log and --log-format say, as runc does.
                let (log, json, debug) = husk::cli::logging_flags(&args);
                husk::logging::Logger::init(log.as_deref(), json, debug);
                log::error!("{}", u.msg);
                if log.is_some() {
                    eprintln!("{}", u.msg.trim_end());
                }
                std::process::exit(u.code);
            }
            // Help and version: printed by clap, as clap prints them.
            None => e.exit(),
        },
    };
    let fds = commands::close_inherited_fds(&cli);
    let g = &cli.global;
    husk::logging::Logger::init(g.log.as_deref(), g.log_format == LogFormat::Json, g.debug);
    match fds.and_then(|()| run(&cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // runc names the command for create and run failures, and prefixes every exec
            // failure; callers match the rest.
            let msg = match &cli.command {
                Some(Command::Create(_)) => format!("husk create failed: {e:#}"),
                Some(Command::Run(_)) => format!("husk run failed: {e:#}"),
                Some(Command::Exec(_)) => {
                    let m = format!("{e:#}");
                    if m.starts_with("exec failed: ") {
                        m
                    } else {
                        format!("exec failed: {m}")
                    }
                }
                _ => format!("{e:#}"),
            };
            log::error!("{msg}");
            // With --log the line went to the file; the caller still reads stderr.
            if g.log.is_some() {
                eprintln!("{msg}");
            }
            // exec's own failures use 255, out of the range of the process's exit codes.
            let code = if matches!(cli.command, Some(Command::Exec(_))) {
                255
            } else {
                1
            };
            std::process::exit(code);
        }
    }
}

fn run(cli: &Cli) -> Result<i32> {
    let g = &cli.global;
    if g.version {
        println!("husk version {}\nspec: 1.2.0", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    if g.systemd_cgroup {
        husk::cgroups::systemd::enable();
    }
    husk::rootless::init(g.rootless.as_deref())?;
    let Some(cmd) = &cli.command else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(0);
    };
    let default_root;
    let root = match &g.root {
        Some(r) => r.as_path(),
        None => {
            default_root = husk::rootless::default_root();
            default_root.as_path()
        }
    };
    match cmd {
        Command::Create(c) => commands::create::run(root, c),
        Command::Start(c) => commands::start::run(root, c),
        Command::State(c) => commands::state::run(root, c),
        Command::Kill(k) => commands::kill::run(root, k),
        Command::Delete(d) => commands::delete::run(root, d),
        Command::List(l) => commands::list::run(root, l),
        Command::Pause(c) => commands::pause::run(root, c),
        Command::Resume(c) => commands::pause::resume(root, c),
        Command::Update(u) => commands::update::run(root, u),
        Command::Events(e) => commands::events::run(root, e),
        Command::Ps(p) => commands::ps::run(root, p),
        Command::Run(r) => commands::run::run(root, r),
        Command::Exec(e) => commands::exec::run(root, e),
        Command::Spec(s) => commands::spec::run(s),
        Command::Features => commands::features::run(),
        Command::Checkpoint(c) => commands::checkpoint::run(root, &g.criu, c),
        Command::Restore(r) => commands::restore::run(root, &g.criu, r),
    }
}
