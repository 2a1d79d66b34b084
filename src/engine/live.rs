//! The live terminal view: one indicatif line with the stage, clients
//! connected against the target, messages/s and p99 so far. On a non-TTY
//! stderr it prints a plain line every few seconds instead; with `--quiet`
//! it prints nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct LiveView {
    bar: Option<ProgressBar>,
    plain: bool,
    last_plain: Option<Instant>,
}

/// What one update shows.
pub struct LiveLine {
    pub t: f64,
    pub stage: usize,
    pub stages: usize,
    pub connected: u64,
    pub target: f64,
    pub chat_per_s: u64,
    pub deliveries_per_s: u64,
    pub p99_ms: Option<f64>,
    pub errors: u64,
}

impl LiveLine {
    fn render(&self) -> String {
        let p99 = self
            .p99_ms
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}ms"));
        format!(
            "{:>5.0}s  stage {}/{}  clients {}/{:.0}  chat {}/s  deliveries {}/s  p99 {}  errors {}",
            self.t,
            self.stage + 1,
            self.stages,
            self.connected,
            self.target,
            self.chat_per_s,
            self.deliveries_per_s,
            p99,
            self.errors
        )
    }
}

impl LiveView {
    pub fn new(quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        Self {
            bar,
            plain: !quiet && !tty,
            last_plain: None,
        }
    }

    pub fn update(&mut self, line: &LiveLine) {
        if let Some(b) = &self.bar {
            b.set_message(line.render());
        } else if self.plain && self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            self.last_plain = Some(Instant::now());
            eprintln!("{}", line.render());
        }
    }

    /// A one-off message (stopping, draining, ...).
    pub fn note(&mut self, msg: &str) {
        if let Some(b) = &self.bar {
            b.println(msg);
        } else if self.plain {
            eprintln!("{msg}");
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
