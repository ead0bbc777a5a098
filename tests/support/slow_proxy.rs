//! A busy server, made on purpose: a TCP proxy in front of a real `opencode serve` that holds
//! every create-session request (`POST /session?...`) for a while before passing it on, as a
//! server saturated by its running sessions does. The request still reaches the server (after
//! the client may have given up), and its answer is drained, so the session is really made.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct SlowProxy {
    pub url: String,
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
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, delay).await;
                    }
                });
            }
        });
        SlowProxy { url, task }
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

async fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upward = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if is_create(&buffer[..n]) {
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
