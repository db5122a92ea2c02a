//! `switchyard top`: a live terminal dashboard of one gateway, read from its `GET /metrics`
//! (throughput, latency percentiles, rejects by reason, queues, journal, venues, outbox, kill
//! switches, loss suspects). `parse` reads the Prometheus text, `render` turns two scrapes into
//! a frame (pure, tested), `scrape` does the HTTP GET; this file is the terminal loop.
//!
//! On a terminal it draws on the alternate screen until `q` or Ctrl-C and always restores the
//! terminal (on error and on panic too). With `--once`, or when stdout is not a terminal, it
//! prints plain-text frames without escape codes.

mod parse;
mod render;
mod scrape;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::{cursor, execute, queue, style, terminal};

use parse::Snapshot;
use scrape::{ScrapeError, Target};

/// Flags of `switchyard top`.
#[derive(clap::Args)]
pub struct Args {
    /// The gateway's metrics: `http://host:port` (path `/metrics`), a full URL, or `host:port`.
    /// Default: `http://127.0.0.1:$GATEWAY_PORT` (8081).
    #[arg(long)]
    target: Option<String>,
    /// Time between scrapes; rates are computed over it.
    #[arg(long, default_value_t = 1_000)]
    interval_ms: u64,
    /// Sent as `X-Metrics-Token` when the gateway sets `GATEWAY_METRICS_TOKEN`.
    #[arg(long, env = "GATEWAY_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Print one plain-text frame (two scrapes one interval apart) and exit; exit status 1 if
    /// a scrape failed.
    #[arg(long)]
    once: bool,
    /// Stop after this many frames.
    #[arg(long)]
    frames: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (100..=60_000).contains(&args.interval_ms),
        "--interval-ms must be in 100..=60000"
    );
    anyhow::ensure!(args.frames != Some(0), "--frames must be at least 1");
    let target = Target::parse(&args.target.clone().unwrap_or_else(default_target))?;
    let mut top = Top {
        target,
        token: args.metrics_token.filter(|t| !t.is_empty()),
        interval: Duration::from_millis(args.interval_ms),
        prev: None,
        last: None,
        error: None,
    };
    if args.once {
        return top.once();
    }
    if std::io::stdout().is_terminal() {
        top.interactive(args.frames)
    } else {
        top.plain(args.frames)
    }
}

/// The local gateway: `GATEWAY_PORT` as `switchyard gateway` reads it, else 8081.
fn default_target() -> String {
    let port = std::env::var("GATEWAY_PORT")
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(8081);
    format!("http://127.0.0.1:{port}")
}

/// The scrapes so far and what the last one said.
struct Top {
    target: Target,
    token: Option<String>,
    interval: Duration,
    /// The good scrape before `last`.
    prev: Option<(Snapshot, Instant)>,
    last: Option<(Snapshot, Instant)>,
    error: Option<ScrapeError>,
}

impl Top {
    /// One scrape; on success it becomes `last`, else the error is kept for the frame.
    fn scrape(&mut self) -> bool {
        // A scrape must not outlive the interval by much, nor be cut short on a slow link.
        let timeout = self
            .interval
            .clamp(Duration::from_secs(1), Duration::from_secs(5));
        let at = Instant::now();
        match scrape::fetch(&self.target, self.token.as_deref(), timeout) {
            Ok(text) => {
                self.prev = self.last.take();
                self.last = Some((Snapshot::parse(&text), at));
                self.error = None;
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// The dashboard from the last two good scrapes (or the only one), if any.
    fn body(&self, width: usize) -> Option<String> {
        let last = self.last.as_ref()?;
        let ((prev, t0), (cur, t1)) = (self.prev.as_ref().unwrap_or(last), last);
        Some(render::render(prev, cur, t1.duration_since(*t0), width))
    }

    fn frame(&self, width: usize, hint: &str, retrying: bool) -> String {
        let title = format!("switchyard top · {}{hint}", self.target.url());
        let error = self.error.as_ref().map(|e| match retrying {
            true => format!("{e}, retrying"),
            false => e.to_string(),
        });
        render::frame(&title, error.as_deref(), self.body(width).as_deref(), width)
    }

    /// `--once`: two scrapes one interval apart, one frame; a failed scrape fails the command.
    fn once(&mut self) -> anyhow::Result<()> {
        let _ = self.scrape() && {
            std::thread::sleep(self.interval);
            self.scrape()
        };
        print!("{}", self.frame(0, "", false));
        std::io::stdout().flush()?;
        match &self.error {
            Some(e) => anyhow::bail!("scrape of {} failed: {e}", self.target.url()),
            None => Ok(()),
        }
    }

    /// Stdout is not a terminal: a plain frame per interval, from the second scrape on (or at
    /// once when a scrape fails), separated by blank lines. Fails if the last scrape did.
    fn plain(&mut self, frames: Option<u64>) -> anyhow::Result<()> {
        let mut shown = 0;
        let mut next = Instant::now();
        loop {
            let ok = self.scrape();
            if !ok || self.prev.is_some() {
                if shown > 0 {
                    println!();
                }
                print!("{}", self.frame(0, "", true));
                std::io::stdout().flush()?;
                shown += 1;
                if frames.is_some_and(|n| shown >= n) {
                    return match &self.error {
                        Some(e) => anyhow::bail!("scrape of {} failed: {e}", self.target.url()),
                        None => Ok(()),
                    };
                }
            }
            // After a slow scrape, start again from now rather than scrape back to back.
            next = (next + self.interval).max(Instant::now());
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }

    /// The alternate screen, redrawn after every scrape and on resize, until `q`, Esc or
    /// Ctrl-C (or `frames` frames, or SIGTERM/SIGHUP/SIGINT, or the terminal hanging up).
    fn interactive(&mut self, frames: Option<u64>) -> anyhow::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGINT,
        ] {
            signal_hook::flag::register(sig, stop.clone())?;
        }
        let resized = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGWINCH, resized.clone())?;
        let keys = Keys::open()?;
        let _screen = Screen::enter()?;
        let mut out = std::io::stdout();
        let mut shown = 0;
        let mut next = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.scrape();
            self.draw(&mut out)?;
            shown += 1;
            if frames.is_some_and(|n| shown >= n) {
                return Ok(());
            }
            next = (next + self.interval).max(Instant::now());
            while let Some(wait) = next.checked_duration_since(Instant::now()) {
                if stop.load(Ordering::Relaxed) || keys.quit_within(wait) {
                    return Ok(());
                }
                if resized.swap(false, Ordering::Relaxed) {
                    self.draw(&mut out)?;
                }
            }
        }
    }

    fn draw(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let (w, h) = terminal::size().unwrap_or((80, 24));
        let text = self.frame(w as usize, " · q quits", true);
        queue!(out, cursor::MoveTo(0, 0))?;
        for (i, line) in text.lines().take(h as usize).enumerate() {
            if i > 0 {
                queue!(out, style::Print("\r\n"))?;
            }
            queue!(
                out,
                style::Print(line),
                terminal::Clear(terminal::ClearType::UntilNewLine)
            )?;
        }
        queue!(out, terminal::Clear(terminal::ClearType::FromCursorDown))?;
        out.flush()?;
        Ok(())
    }
}

/// The keys that end `top`, read by hand from the terminal: q, Esc or Ctrl-C (raw mode turns
/// Ctrl-C into a byte). Not crossterm's event reader: once the terminal hangs up it retries a
/// read that returns nothing forever, at full CPU; here a hang-up ends `top` like a `q`.
struct Keys {
    tty: std::fs::File,
}

impl Keys {
    fn open() -> anyhow::Result<Keys> {
        use std::os::fd::AsFd;
        let tty = if std::io::stdin().is_terminal() {
            std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?)
        } else {
            std::fs::File::open("/dev/tty")?
        };
        Ok(Keys { tty })
    }

    /// Waits up to `wait` for input; true when it asks to quit or the terminal is gone.
    /// A signal (resize, SIGTERM) ends the wait early with false; the caller checks its flags.
    fn quit_within(&self, wait: Duration) -> bool {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd {
            fd: self.tty.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().clamp(1, 100) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            return std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted;
        }
        if n == 0 {
            return false;
        }
        if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return true;
        }
        let mut buf = [0u8; 64];
        match (&self.tty).read(&mut buf) {
            Ok(0) => true,
            Ok(n) => is_quit(&buf[..n]),
            Err(e) => e.kind() != std::io::ErrorKind::Interrupted,
        }
    }
}

/// q, Q, Ctrl-C anywhere in what was read, or a lone Esc (an arrow key also starts with Esc,
/// but arrives with the rest of its sequence in the same read).
fn is_quit(bytes: &[u8]) -> bool {
    bytes == [0x1b] || bytes.iter().any(|b| matches!(b, b'q' | b'Q' | 0x03))
}

/// Raw mode, the alternate screen and a hidden cursor, for as long as it lives; the terminal
/// is restored when it drops (return or error) and by a panic hook (the release profile aborts
/// on panic, so no drop would run).
struct Screen;

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        terminal::enable_raw_mode()?;
        let screen = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = execute!(
        std::io::stdout(),
        cursor::Show,
        terminal::LeaveAlternateScreen
    );
    let _ = terminal::disable_raw_mode();
}

#[cfg(test)]
mod tests {
    // Goal: q, Q, Ctrl-C and a lone Esc quit; other keys and escape sequences do not.
    #[test]
    fn quit_keys() {
        for k in [&b"q"[..], b"Q", b"\x03", b"\x1b", b"abq"] {
            assert!(super::is_quit(k), "{k:?}");
        }
        for k in [&b"a"[..], b"\x1b[A", b" ", b""] {
            assert!(!super::is_quit(k), "{k:?}");
        }
    }
}
