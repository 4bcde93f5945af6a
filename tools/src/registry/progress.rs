//! Push progress: per-destination counters, shown as one updating status line on a terminal
//! and as plain event lines otherwise (CI logs, Bazel's captured output).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Stats {
    pub bytes_uploaded: AtomicU64,
    pub bytes_skipped: AtomicU64,
    pub bytes_mounted: AtomicU64,
    pub blobs_uploaded: AtomicU64,
    pub blobs_skipped: AtomicU64,
    pub blobs_mounted: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

pub struct Progress {
    /// (name, counters) per destination.
    pub dests: Vec<(String, Arc<Stats>)>,
    tty: bool,
    done: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub fn new(names: &[String]) -> Progress {
        let dests: Vec<_> = names
            .iter()
            .map(|n| (n.clone(), Arc::new(Stats::default())))
            .collect();
        let tty = std::io::stderr().is_terminal();
        let done = Arc::new(AtomicBool::new(false));
        let ticker = tty.then(|| {
            let dests = dests.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let line = dests
                        .iter()
                        .map(|(n, s)| status(n, s))
                        .collect::<Vec<_>>()
                        .join(" | ");
                    let mut e = std::io::stderr().lock();
                    let _ = write!(e, "\r\x1b[K{line}");
                    let _ = e.flush();
                    drop(e);
                    std::thread::sleep(Duration::from_millis(200));
                }
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            })
        });
        Progress {
            dests,
            tty,
            done,
            ticker,
        }
    }

    /// A per-blob event (`pushed …`, `exists …`); only printed when there is no status line.
    pub fn event(&self, line: &str) {
        if !self.tty {
            eprintln!("{line}");
        }
    }

    /// Stops the status line so final messages print on a clean line.
    pub fn finish(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn status(name: &str, s: &Stats) -> String {
    format!(
        "{name}: {} uploaded, {} existing, {} mounted",
        human(Stats::get(&s.bytes_uploaded)),
        human(Stats::get(&s.bytes_skipped)),
        human(Stats::get(&s.bytes_mounted))
    )
}

/// `12.3 MiB`
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human(5), "5 B");
        assert_eq!(super::human(1536), "1.5 KiB");
        assert_eq!(super::human(12_897_485), "12.3 MiB");
    }
}
