//! A TCP proxy in front of a real `opencode serve` that counts the HTTP requests it passes on,
//! by method and path (ids replaced by `{id}`, the query left out): how much traffic ocio puts
//! on a server. The event stream is one long `GET /global/event` and counts once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct CountingProxy {
    pub url: String,
    counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Proxies to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> CountingProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts = Counts::default();
        let counting = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counting) = (upstream.clone(), counting.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, counting).await;
                    }
                });
            }
        });
        CountingProxy { url, counts, task }
    }

    /// The requests counted since the start or the last reset, by `METHOD /path`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        self.counts.lock().unwrap().clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, counts: Counts) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upward = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut requests = Requests::default();
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for request in requests.push(&buffer[..n]) {
                *counts.lock().unwrap().entry(request).or_default() += 1;
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    let downward = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::join!(upward, downward);
}

/// Cuts a connection's bytes into requests (headers, then a `Content-Length` body).
#[derive(Default)]
struct Requests {
    pending: Vec<u8>,
    /// Body bytes of the last request still to skip.
    skip: usize,
}

impl Requests {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut found = Vec::new();
        loop {
            let skipped = self.skip.min(self.pending.len());
            self.pending.drain(..skipped);
            self.skip -= skipped;
            if self.skip > 0 {
                return found;
            }
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return found;
            };
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            self.pending.drain(..end + 4);
            let mut lines = head.lines();
            let mut first = lines.next().unwrap_or("").split(' ');
            let method = first.next().unwrap_or("?");
            let path = first.next().unwrap_or("?").split('?').next().unwrap_or("?");
            found.push(format!("{method} {}", normalised(path)));
            self.skip = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse().ok())
                .unwrap_or(0);
        }
    }
}

/// `path` with each id segment (`ses_...`, `msg_...`, `per_...`, ...) as `{id}`.
fn normalised(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.split_once('_') {
            Some((prefix, rest)) if prefix.len() == 3 && rest.len() > 8 => "{id}",
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}
