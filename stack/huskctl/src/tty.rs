//! The user's terminal with `-t`: raw mode for the session, its size sent to the daemon at start
//! and on every SIGWINCH, and signals sent on to the container when there is no tty to carry
//! them (Docker's --sig-proxy).

use std::{
    io::{self, IsTerminal},
    os::fd::AsFd,
};

use nix::sys::termios::{self, SetArg, Termios};
use tokio::signal::unix::{signal, SignalKind};

use crate::client::{with_query, Client};

/// The terminal as it was, put back when dropped.
pub struct RawMode(Termios);

impl RawMode {
    /// Puts stdin in raw mode when it is a terminal; `None` when it is not.
    pub fn enable() -> io::Result<Option<RawMode>> {
        let stdin = io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(Some(RawMode(saved)))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(e) = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.0) {
            eprintln!("huskctl: restoring the terminal: {e}");
        }
    }
}

/// Rows and columns of our stdout's terminal, if it is one.
fn size() -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct given.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sends the terminal's size to `path` (`/containers/{id}/resize` or `/exec/{id}/resize`).
async fn resize(client: &Client, path: &str) {
    if let Some((h, w)) = size() {
        let url = with_query(path, &[("h", &h.to_string()), ("w", &w.to_string())]);
        // Docker's client too only logs a failed resize: the session goes on at the old size.
        if let Err(e) = client.post(&url, None).await {
            log::debug!("resize: {e}");
        }
    }
}

/// Sends the size now and after each SIGWINCH, for as long as the session lasts. The handler
/// is in place before the first size is sent: a change in between would otherwise be lost
/// (SIGWINCH is ignored by default).
pub async fn forward_resizes(client: Client, path: String) {
    let winch = signal(SignalKind::window_change());
    resize(&client, &path).await;
    let Ok(mut winch) = winch else {
        return;
    };
    while winch.recv().await.is_some() {
        resize(&client, &path).await;
    }
}

/// Signals a user sends to the client go to the container (Docker's ForwardAllSignals, for the
/// ones a terminal or `kill` sends). The handlers are installed when this is called, before the
/// container starts, so that none of these signals can end huskctl instead.
pub fn proxy_signals(client: Client, id: String) {
    let kinds = [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
    ];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (num, name) in kinds {
        let mut s = match signal(SignalKind::from_raw(num)) {
            Ok(s) => s,
            Err(e) => {
                log::debug!("{name} cannot be forwarded: {e}");
                continue;
            }
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(name).is_err() {
                    break;
                }
            }
        });
    }
    tokio::spawn(async move {
        while let Some(name) = rx.recv().await {
            let url = with_query(
                &format!("/containers/{}/kill", crate::client::esc(&id)),
                &[("signal", name)],
            );
            if let Err(e) = client.post(&url, None).await {
                log::debug!("forwarding {name}: {e}");
            }
        }
    });
}
