//! Docker's JSON-lines progress (pull, load): one bar per layer on a terminal, through
//! indicatif; plain "id: status" lines otherwise, as `docker pull | cat` prints.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;

use crate::client::Lines;

#[derive(Deserialize, Default)]
struct Detail {
    #[serde(default)]
    current: u64,
    #[serde(default)]
    total: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Message {
    status: String,
    id: String,
    stream: String,
    error: String,
    #[serde(rename = "progressDetail")]
    progress_detail: Option<Detail>,
}

pub struct Render {
    multi: Option<MultiProgress>,
    /// One line per layer id, in the order the ids came, as docker keeps them on screen.
    bars: Vec<(String, ProgressBar)>,
    stderr: bool,
    quiet: bool,
}

fn style(with_bar: bool) -> ProgressStyle {
    let t = if with_bar {
        "{prefix}: {msg:<16} {wide_bar} {bytes}/{total_bytes}"
    } else {
        "{prefix}: {msg}"
    };
    ProgressStyle::with_template(t).expect("a valid template")
}

impl Render {
    /// Renders on stdout, or on stderr when `stderr` (`run`'s implicit pull).
    pub fn new(stderr: bool) -> Render {
        let terminal = if stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let target = || match stderr {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::stdout(),
        };
        Render {
            multi: terminal.then(|| MultiProgress::with_draw_target(target())),
            bars: Vec::new(),
            stderr,
            quiet: false,
        }
    }

    /// Shows nothing but the error that ends the stream (`pull -q`).
    pub fn quiet() -> Render {
        Render {
            multi: None,
            bars: Vec::new(),
            stderr: false,
            quiet: true,
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let write = || {
            // A failed write to our own stdout or stderr has nowhere to be reported.
            let _ = match self.stderr {
                true => std::io::stderr().write_all(text.as_bytes()),
                false => std::io::stdout()
                    .write_all(text.as_bytes())
                    .and_then(|()| std::io::stdout().flush()),
            };
        };
        match &self.multi {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }

    /// Turns the bars into the plain lines they end as, so that what follows prints below them.
    fn settle(&mut self) {
        for (id, bar) in std::mem::take(&mut self.bars) {
            bar.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&bar);
            }
            self.line(&format!("{id}: {}\n", bar.message()));
        }
    }

    fn bar(&mut self, id: &str) -> &ProgressBar {
        let i = match self.bars.iter().position(|(b, _)| b == id) {
            Some(i) => i,
            None => {
                let multi = self.multi.as_ref().expect("bars only on a terminal");
                let b = multi.add(ProgressBar::new(0));
                b.set_style(style(false));
                b.set_prefix(id.to_string());
                self.bars.push((id.to_string(), b));
                self.bars.len() - 1
            }
        };
        &self.bars[i].1
    }

    /// Shows one message; a message carrying an error ends the stream with it.
    fn show(&mut self, raw: &[u8]) -> anyhow::Result<()> {
        let raw = std::str::from_utf8(raw).unwrap_or_default().trim();
        if raw.is_empty() {
            return Ok(());
        }
        let m: Message =
            serde_json::from_str(raw).with_context(|| format!("a progress message: {raw}"))?;
        if !m.error.is_empty() {
            bail!("{}", m.error);
        }
        if !m.stream.is_empty() {
            self.settle();
            self.line(&m.stream);
            return Ok(());
        }
        if m.status.is_empty() {
            return Ok(());
        }
        let progress = m.progress_detail.as_ref().filter(|d| d.total > 0);
        match (&self.multi, m.id.is_empty()) {
            (Some(_), false) => {
                let bar = self.bar(&m.id);
                bar.set_message(m.status.clone());
                match progress {
                    Some(d) => {
                        bar.set_style(style(true));
                        bar.set_length(d.total);
                        bar.set_position(d.current);
                    }
                    None => bar.set_style(style(false)),
                }
            }
            (None, false) if progress.is_none() => self.line(&format!("{}: {}\n", m.id, m.status)),
            (None, false) => {}
            (_, true) => {
                self.settle();
                self.line(&format!("{}\n", m.status));
            }
        }
        Ok(())
    }

    /// Renders a whole progress stream.
    pub async fn stream(mut self, mut lines: Lines) -> anyhow::Result<()> {
        let result = async {
            while let Some(line) = lines.next().await? {
                self.show(&line)?;
            }
            anyhow::Ok(())
        }
        .await;
        self.settle();
        result
    }
}
