//! huskctl: docker's commands for huskd, over Docker's Engine API on a unix socket.

mod cli;
mod client;
mod config;
mod containers;
mod exec;
mod format;
mod images;
mod progress;
mod stats;
mod streams;
mod template;
mod tty;

use std::io::Write;

use clap::Parser;

use cli::{Cli, Command, ContainerCommand, ImageCommand};

/// An error with the exit code docker gives it (125/126/127 for `run`).
#[derive(Debug, thiserror::Error)]
#[error("{err:#}")]
pub struct Exit {
    code: i32,
    err: anyhow::Error,
}

impl Exit {
    pub fn with_code(code: i32, err: anyhow::Error) -> anyhow::Error {
        anyhow::Error::new(Exit { code, err })
    }
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        eprintln!(
            "huskctl: {}: {}",
            r.level().as_str().to_lowercase(),
            r.args()
        );
    }
    fn flush(&self) {}
}

/// `run` and `create` report the daemon's errors as 125, as docker does; the other commands 1.
fn error_code(c: &Command) -> i32 {
    match c {
        Command::Run(_)
        | Command::Create(_)
        | Command::Container(ContainerCommand::Run(_) | ContainerCommand::Create(_)) => 125,
        _ => 1,
    }
}

async fn dispatch(client: &client::Client, cmd: Command) -> anyhow::Result<i32> {
    use containers as ct;
    match cmd {
        Command::Run(r) | Command::Container(ContainerCommand::Run(r)) => ct::run(client, r).await,
        Command::Create(c) | Command::Container(ContainerCommand::Create(c)) => {
            ct::create_cmd(client, c).await
        }
        Command::Start(s) | Command::Container(ContainerCommand::Start(s)) => {
            ct::start(client, s).await
        }
        Command::Ps(p) | Command::Container(ContainerCommand::Ls(p)) => ct::ps(client, p).await,
        Command::Logs(l) | Command::Container(ContainerCommand::Logs(l)) => {
            ct::logs(client, l).await
        }
        Command::Exec(e) | Command::Container(ContainerCommand::Exec(e)) => {
            exec::exec(client, e).await
        }
        Command::Stop(s) | Command::Container(ContainerCommand::Stop(s)) => {
            ct::stop(client, s).await
        }
        Command::Kill(k) | Command::Container(ContainerCommand::Kill(k)) => {
            ct::kill(client, k).await
        }
        Command::Rm(r) | Command::Container(ContainerCommand::Rm(r)) => ct::rm(client, r).await,
        Command::Inspect(i) => ct::inspect(client, i).await,
        Command::Container(ContainerCommand::Inspect(i)) => {
            ct::inspect_objects(
                client,
                &i.names,
                i.format.as_deref(),
                &["/containers/{}/json"],
            )
            .await
        }
        Command::Wait(n) | Command::Container(ContainerCommand::Wait(n)) => {
            ct::wait(client, n).await
        }
        Command::Pause(n) | Command::Container(ContainerCommand::Pause(n)) => {
            ct::pause(client, n, "pause").await
        }
        Command::Unpause(n) | Command::Container(ContainerCommand::Unpause(n)) => {
            ct::pause(client, n, "unpause").await
        }
        Command::Stats(s) | Command::Container(ContainerCommand::Stats(s)) => {
            stats::stats(client, s).await
        }
        Command::Load(l) | Command::Image(ImageCommand::Load(l)) => images::load(client, l).await,
        Command::Pull(p) | Command::Image(ImageCommand::Pull(p)) => {
            images::pull_cmd(client, p).await
        }
        Command::Images(i) | Command::Image(ImageCommand::Ls(i)) => images::images(client, i).await,
        Command::Rmi(r) | Command::Image(ImageCommand::Rm(r)) => images::rmi(client, r).await,
        Command::Tag(t) | Command::Image(ImageCommand::Tag(t)) => images::tag(client, t).await,
        Command::Image(ImageCommand::Inspect(i)) => images::inspect(client, i).await,
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; a bad flag is 125, as in docker.
            let code = if e.use_stderr() { 125 } else { 0 };
            // Nothing more to do if the usage message cannot be printed.
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if cli.debug {
        // set_logger fails only when a logger is already set, which nothing here does.
        let _ = log::set_logger(&Logger);
        log::set_max_level(log::LevelFilter::Debug);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("huskctl: starting the event loop: {e}");
            std::process::exit(1);
        }
    };
    let err_code = error_code(&cli.command);
    let code = rt.block_on(async {
        let client = client::Client::new(&cli.host)?;
        dispatch(&client, cli.command).await
    });
    let code = match code {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(err_code, |x| x.code);
            eprintln!("huskctl: {e:#}");
            code
        }
    };
    // A failed flush of stdout at exit has nowhere to be reported.
    let _ = std::io::stdout().flush();
    // Exits without dropping the runtime: a thread may still be blocked reading our stdin
    // for a container that has ended, and the runtime would wait for it.
    std::process::exit(code);
}
