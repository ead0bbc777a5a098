//! A busy server, made on purpose: a TCP proxy in front of a real `opencode serve` that holds
//! every create-session request (`POST /session?...`) for a while before passing it on, as a
//! server saturated by its running sessions does. The request still reaches the server (after
//! the client may have given up), and its answer is drained, so the session is really made.
//! It also times every create, from the request reaching the proxy to the first byte of the
//! answer (with no delay: how long the server itself took).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct SlowProxy {
    pub url: String,
    creates: Arc<Mutex<Vec<Duration>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    /// Proxies to `upstream` (`http://host:port`), holding creates for `delay`.
    pub async fn start(upstream: &str, delay: Duration) -> SlowProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let creates = Arc::new(Mutex::new(Vec::new()));
        let timed = creates.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, timed) = (upstream.clone(), timed.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, delay, timed).await;
                    }
                });
            }
        });
        SlowProxy { url, creates, task }
    }

    /// How long each create answered so far took, in the order the answers came.
    pub fn creates(&self) -> Vec<Duration> {
        self.creates.lock().unwrap().clone()
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_create(chunk: &[u8]) -> bool {
    chunk.starts_with(b"POST /session?") || chunk.starts_with(b"POST /session ")
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    delay: Duration,
    creates: Arc<Mutex<Vec<Duration>>>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // When the create on this connection that is waiting for its answer came (one request at
    // a time on a connection: the next answer is its).
    let asked: Arc<Mutex<Option<Instant>>> = Arc::default();
    let answered = asked.clone();
    let upward = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if is_create(&buffer[..n]) {
                *asked.lock().unwrap() = Some(Instant::now());
                tokio::time::sleep(delay).await;
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        // Keep the server's side open: it answers a request the client has given up on.
        server_write
    };
    let downward = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(at) = answered.lock().unwrap().take() {
                creates.lock().unwrap().push(at.elapsed());
            }
            // The client may be gone; the answer is drained all the same.
            let _ = client_write.write_all(&buffer[..n]).await;
        }
    };
    let downward = tokio::spawn(downward);
    let server_write = upward.await;
    // The client hung up: give the server time to finish what it was sent.
    let _ = tokio::time::timeout(Duration::from_secs(10), downward).await;
    drop(server_write);
}
