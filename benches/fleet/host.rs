//! The stand-in host: a process of its own that runs the bench's stand-in OpenCode servers, so
//! their CPU is not ocio's. It prints one `URL <url>` line per server, then serves until its
//! standard input closes.

use std::io::{BufRead, Write};
use std::time::Duration;

#[path = "../../tests/support/standin.rs"]
mod standin;

pub use standin::StandinStats;
use standin::{Standin, StandinOptions};

/// Runs `servers` stand-ins whose sessions work `work` each, one event every `every`.
pub fn serve(servers: usize, work: Duration, every: Duration) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = StandinOptions {
            work,
            every,
            deltas: super::setting("OCIO_FLEET_DELTAS", 4) as u32,
            ..StandinOptions::default()
        };
        let mut running = Vec::new();
        let mut out = std::io::stdout().lock();
        for _ in 0..servers {
            let server = Standin::start(options.clone()).await;
            writeln!(out, "URL {}", server.url()).unwrap();
            running.push(server);
        }
        out.flush().unwrap();
        drop(out);
        // Until the bench closes our standard input (or dies).
        tokio::task::spawn_blocking(|| {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                if line.is_err() {
                    break;
                }
            }
        })
        .await
        .unwrap();
        drop(running);
    });
}
