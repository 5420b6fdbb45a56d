//! The `husk` command line: parses runc's flags, runs one command, and reports a failure the way
//! runc does (a log line, exit status 1).

use anyhow::{Context as _, Result};
use clap::Parser;
use husk::cli::{Cli, Command, ListFormat, LogFormat};
use husk::container::{self, CreateOptions};
use husk::output;
use std::io::Write;

fn main() {
    let args = husk::cli::normalize_args(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => match husk::cli::usage_error(&e, &args) {
            Some((line, code)) => {
                eprintln!("husk: {line}");
                std::process::exit(code);
            }
            // Help and version: printed by clap, as clap prints them.
            None => e.exit(),
        },
    };
    close_inherited_fds(&cli);
    let g = &cli.global;
    husk::logging::Logger::init(g.log.as_deref(), g.log_format == LogFormat::Json, g.debug);
    match run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // runc names the command for create and run failures; callers match the rest.
            let msg = match &cli.command {
                Some(Command::Create(_)) => format!("husk create failed: {e:#}"),
                Some(Command::Run(_)) => format!("husk run failed: {e:#}"),
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
        anyhow::bail!("--systemd-cgroup: systemd cgroup driver is not supported yet");
    }
    let Some(cmd) = &cli.command else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(0);
    };
    let root = g.root.as_path();
    match cmd {
        Command::Create(c) => {
            container::create(&create_options(root, &c.id, &c.opts, false, false))?;
            Ok(0)
        }
        Command::Start(c) => {
            container::start(root, &c.id)?;
            Ok(0)
        }
        Command::State(c) => {
            let (dir, state) = container::open_existing(root, &c.id)?;
            let status = state.status(&dir);
            // runc writes the JSON without a trailing newline.
            print!("{}", output::state_json(&state, status));
            Ok(0)
        }
        Command::Kill(k) => {
            let sig = husk::signal::parse_signal(&k.signal)?;
            container::kill(root, &k.id, sig, k.all)?;
            Ok(0)
        }
        Command::Delete(d) => {
            container::delete(root, &d.id, d.force)?;
            Ok(0)
        }
        Command::List(l) => {
            let all = container::list(root)?;
            let mut out = std::io::stdout().lock();
            if l.quiet {
                for (s, _) in &all {
                    writeln!(out, "{}", s.id)?;
                }
            } else if l.format == ListFormat::Json {
                let owners: Vec<String> = all
                    .iter()
                    .map(|(s, _)| container::owner(root, &s.id))
                    .collect();
                let v: Vec<_> = all
                    .iter()
                    .zip(&owners)
                    .map(|((s, st), o)| output::ContainerState {
                        owner: o,
                        ..output::ContainerState::new(s, *st)
                    })
                    .collect();
                if v.is_empty() {
                    writeln!(out, "null")?;
                } else {
                    writeln!(out, "{}", serde_json::to_string(&v)?)?;
                }
            } else {
                let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                    .map(String::from)
                    .to_vec()];
                for (s, st) in &all {
                    rows.push(vec![
                        s.id.clone(),
                        s.visible_pid(*st).to_string(),
                        st.as_str().to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        container::owner(root, &s.id),
                    ]);
                }
                out.write_all(output::table(&rows).as_bytes())?;
            }
            Ok(0)
        }
        Command::Pause(c) => {
            container::set_paused(root, &c.id, true)?;
            Ok(0)
        }
        Command::Resume(c) => {
            container::set_paused(root, &c.id, false)?;
            Ok(0)
        }
        Command::Update(u) => {
            container::update(root, &u.id, &husk::update::resources(u)?)?;
            Ok(0)
        }
        Command::Events(e) => {
            husk::events::run(root, &e.id, &e.interval, e.stats)?;
            Ok(0)
        }
        Command::Ps(p) => ps(root, p),
        Command::Run(r) => run_container(root, r),
        Command::Exec(e) => exec(root, e),
        Command::Spec(s) => {
            let dir = s.bundle.clone().unwrap_or_else(|| ".".into());
            if !dir.is_dir() {
                anyhow::bail!("chdir {}: no such file or directory", dir.display());
            }
            let path = dir.join("config.json");
            if path.exists() {
                anyhow::bail!("File config.json exists. Remove it first");
            }
            std::fs::write(&path, husk::spec_default::default_spec(s.rootless))
                .with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Command::Features => {
            println!(
                "{}",
                husk::features::features_json(&husk::features::Supported::current())
            );
            Ok(0)
        }
    }
}

fn create_options<'a>(
    root: &'a std::path::Path,
    id: &'a str,
    o: &'a husk::cli::CreateOpts,
    for_run: bool,
    foreground: bool,
) -> CreateOptions<'a> {
    CreateOptions {
        root,
        id,
        bundle: &o.bundle,
        console_socket: o.console_socket.as_deref(),
        pid_file: o.pid_file.as_deref(),
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds,
        for_run,
        foreground,
    }
}

/// `run`: create, start, and (unless detached) wait for the container, forwarding signals, then
/// delete it (unless --keep) and exit with its status.
fn run_container(root: &std::path::Path, r: &husk::cli::Run) -> Result<i32> {
    if !r.no_subreaper {
        // Orphans of the container (and a two-stage init) are reparented to us and reaped.
        nix::sys::prctl::set_child_subreaper(true).context("prctl subreaper")?;
    }
    let created = container::create(&create_options(root, &r.id, &r.opts, true, !r.detach))?;
    let chan = created
        .chan
        .as_ref()
        .context("run: no channel to the init")?;
    let sfd = if r.detach {
        None
    } else {
        Some(husk::wait::block_signals()?)
    };
    let go = chan
        .send(&husk::sync::Msg::Go)
        .and_then(|()| container::wait_exec(chan))
        .and_then(|()| container::poststart(&created.state));
    if let Err(e) = go {
        // Leave nothing behind: kill (done by poststart on hook failure) and delete.
        container::delete(root, &r.id, true).context("delete after failed start")?;
        return Err(e.into());
    }
    let Some(sfd) = sfd else { return Ok(0) };
    // The init sent the pty master before it reported ready.
    let master = created
        .console
        .as_ref()
        .map(husk::tty::recv_master)
        .transpose()?;
    let raw = master.as_ref().map(|_| husk::tty::RawMode::enter());
    let code = husk::wait::wait_forwarding(&sfd, created.state.pid, master.as_ref());
    drop(raw);
    let code = code?;
    if !r.keep {
        container::destroy(&created.state, &created.dir)?;
    }
    Ok(code)
}

fn exec(root: &std::path::Path, e: &husk::cli::Exec) -> Result<i32> {
    let (dir, _) = container::open_existing(root, &e.id)?;
    let base = dir.load_exec_base()?;
    let process = match &e.process {
        Some(path) => {
            let data = std::fs::read(path)
                .with_context(|| format!("--process: read {}", path.display()))?;
            let p: oci_spec::runtime::Process = serde_json::from_slice(&data)
                .with_context(|| format!("--process: parse {}", path.display()))?;
            husk::exec::inherit(p, &base.process)
        }
        None => husk::exec::process_from_flags(&base.process, e)?,
    };
    Ok(husk::exec::exec(husk::exec::ExecOptions {
        root,
        id: &e.id,
        process,
        seccomp: base.seccomp,
        container_caps: base.process.capabilities().as_ref(),
        detach: e.detach,
        pid_file: e.pid_file.as_deref(),
        console_socket: e.console_socket.as_deref(),
        preserve_fds: e.preserve_fds,
        ignore_paused: e.ignore_paused,
    })?)
}

/// `ps`: the container's pids as JSON, or ps(1)'s table cut down to the container's processes.
fn ps(root: &std::path::Path, p: &husk::cli::Ps) -> Result<i32> {
    let pids = container::pids(root, &p.id)?;
    if p.format == ListFormat::Json {
        // Go encodes an empty slice as null.
        let text = if pids.is_empty() {
            "null".to_string()
        } else {
            serde_json::to_string(&pids)?
        };
        println!("{text}");
        return Ok(0);
    }
    let args: Vec<String> = if p.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        p.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        anyhow::bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps: no PID column in ps output")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|f| f.parse::<i32>().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(0)
}

/// Closes every fd we inherited beyond stdio and those the caller asked to pass on
/// (--preserve-fds, $LISTEN_FDS), before husk opens anything: a leaked host directory fd could
/// otherwise be reached from the container as /proc/self/fd/N (CVE-2024-21626).
fn close_inherited_fds(cli: &Cli) {
    let preserve = match &cli.command {
        Some(Command::Create(c)) => c.opts.preserve_fds,
        Some(Command::Run(r)) => r.opts.preserve_fds,
        Some(Command::Exec(e)) => e.preserve_fds,
        _ => 0,
    };
    let listen: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: nothing in this process owns an fd above stdio yet.
    // A kernel without close_range leaves them to close-on-exec in the container's setup.
    let _ = unsafe { libc::close_range(3 + preserve + listen, u32::MAX, 0) };
}
