//! The engine's side of the control socket: binds it private to the user (replacing a stale
//! socket file nobody listens on), serves each connection in its own task through the
//! [`EngineHandle`], and on shutdown closes every connection and removes the socket file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    Answer, Ask, Body, ControlError, EngineInfo, MAX_REQUEST, PROTOCOL, ResponseLine, read_line,
    write_line,
};
use crate::engine::{ApiError, Engine, EngineHandle, ErrorKind, Feed, Request};

/// The listening control socket. Dropping it without [`ControlServer::shutdown`] leaves the
/// socket file behind; the next engine replaces it.
pub struct ControlServer {
    socket: PathBuf,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl ControlServer {
    /// Listen on `socket` for the engine behind `engine`. Fails when another engine already
    /// listens there.
    pub async fn bind(
        socket: &Path,
        engine: EngineHandle,
        info: EngineInfo,
    ) -> Result<Self, ControlError> {
        let io = |detail: String| ControlError::Io {
            socket: socket.to_path_buf(),
            detail,
        };
        let dir = socket
            .parent()
            .ok_or_else(|| io("the socket path has no directory".into()))?;
        crate::paths::ensure_socket_dir(dir).map_err(io)?;
        if socket.exists() {
            if super::is_running(socket) {
                return Err(io(
                    "another engine already listens here\n  hint: attach to it with `ocio`, or stop it first".into(),
                ));
            }
            tracing::info!(socket = %socket.display(), "replacing a stale control socket");
            std::fs::remove_file(socket)
                .map_err(|e| io(format!("cannot remove the stale socket: {e}")))?;
        }
        let listener = UnixListener::bind(socket).map_err(|e| {
            io(format!(
                "cannot listen: {e}{}",
                if socket.as_os_str().len() > 100 {
                    " (the path is too long for a socket; set XDG_RUNTIME_DIR to a shorter directory)"
                } else {
                    ""
                }
            ))
        })?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(format!("cannot make the socket private: {e}")))?;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept(
            listener,
            engine,
            info,
            stop.clone(),
            tracker.clone(),
        ));
        tracing::info!(socket = %socket.display(), "control socket listening");
        Ok(Self {
            socket: socket.to_path_buf(),
            stop,
            tracker,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stop accepting, close every connection (subscribers see their stream end), and remove
    /// the socket file.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Err(e) = std::fs::remove_file(&self.socket) {
            tracing::warn!(socket = %self.socket.display(), error = %e, "cannot remove the control socket");
        }
    }
}

async fn accept(
    listener: UnixListener,
    engine: EngineHandle,
    info: EngineInfo,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let budget = Arc::new(Semaphore::new(BUDGET_CHUNKS));
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    continue;
                }
            },
        };
        let (engine, info, stop) = (engine.clone(), info.clone(), stop.clone());
        let budget = budget.clone();
        tracker.spawn(async move {
            if let Err(e) = serve(stream, engine, info, stop, budget).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
}

fn line(body: Body) -> ResponseLine {
    ResponseLine { v: PROTOCOL, body }
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> ApiError {
    ApiError::new(kind, message)
}

/// One connection: requests answered in order until the client closes it or subscribes.
async fn serve(
    stream: UnixStream,
    engine: EngineHandle,
    info: EngineInfo,
    stop: CancellationToken,
    budget: Arc<Semaphore>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let (bytes, _held) = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            bytes = read_request(&mut read, MAX_REQUEST, &budget) => match bytes {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return Ok(()),
                Err(Refused(refusal)) => {
                    // Said before the connection closes (what is left of the line is not read).
                    write_line(&mut write, &line(Body::Error(refusal))).await?;
                    return Ok(());
                }
                Err(Failed(e)) => return Err(e),
            },
        };
        let request = match decode(&bytes) {
            Ok(request) => request,
            Err(refusal) => {
                write_line(&mut write, &line(Body::Error(refusal))).await?;
                continue;
            }
        };
        let answer = match request {
            Ask::Hello => Ok(Answer::Hello {
                engine: info.clone(),
            }),
            Ask::Subscribe => {
                let feed = engine.feed().await;
                let (response, feed) = match feed {
                    Ok(feed) => (Body::Reply(Answer::Reply(crate::engine::Reply::Done)), feed),
                    Err(e) => {
                        write_line(&mut write, &line(Body::Error(e))).await?;
                        continue;
                    }
                };
                write_line(&mut write, &line(response)).await?;
                return stream_events(feed, read, write, stop).await;
            }
            Ask::Call(request) => engine.call(request).await.map(Answer::Reply),
        };
        let response = match answer {
            Ok(answer) => line(Body::Reply(answer)),
            Err(error) => line(Body::Error(error)),
        };
        write_line(&mut write, &response).await?;
    }
}

/// Requests of every connection together hold at most this many chunks of memory while they
/// are read and answered (40 clients sending 15 MB each must not take the engine's memory
/// with them); a reader that cannot get more waits, and gives up after [`BUDGET_WAIT`].
const BUDGET_CHUNKS: usize = 64;
const CHUNK: usize = 1024 * 1024;
const BUDGET_WAIT: Duration = Duration::from_secs(30);

/// Why a request line was not read.
enum ReadFailure {
    /// Answered with this error, then the connection closes.
    Refused(ApiError),
    /// The connection failed.
    Failed(std::io::Error),
}
use ReadFailure::{Failed, Refused};

/// One request line (without its newline) and the share of the budget it holds until
/// dropped; `None` when the client closed the connection.
async fn read_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
    budget: &Arc<Semaphore>,
) -> Result<Option<(Vec<u8>, OwnedSemaphorePermit)>, ReadFailure> {
    let mut line = Vec::new();
    let mut held = take(budget, 1).await?;
    loop {
        let available = reader.fill_buf().await.map_err(Failed)?;
        if available.is_empty() {
            return Ok((!line.is_empty()).then_some((line, held)));
        }
        let (take_now, ends) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take_now > limit + 1 {
            return Err(Refused(refuse(
                ErrorKind::BadRequest,
                format!(
                    "a request line longer than {} MiB; a plan file that large is not a plan",
                    limit / CHUNK
                ),
            )));
        }
        let needed = (line.len() + take_now).div_ceil(CHUNK);
        if needed > held.num_permits() {
            held.merge(take(budget, needed - held.num_permits()).await?);
        }
        line.extend_from_slice(&available[..take_now]);
        reader.consume(take_now);
        if ends {
            line.pop();
            return Ok(Some((line, held)));
        }
    }
}

/// `chunks` of the budget, waiting at most [`BUDGET_WAIT`] for them.
async fn take(budget: &Arc<Semaphore>, chunks: usize) -> Result<OwnedSemaphorePermit, ReadFailure> {
    let busy = || {
        Refused(refuse(
            ErrorKind::NotNow,
            "the engine is reading other large requests; try again",
        ))
    };
    let chunks = u32::try_from(chunks).map_err(|_| busy())?;
    match tokio::time::timeout(BUDGET_WAIT, budget.clone().acquire_many_owned(chunks)).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(busy()),
    }
}

/// The request on a line, or the error line that answers it.
fn decode(bytes: &[u8]) -> Result<Ask, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| refuse(ErrorKind::BadRequest, format!("not a JSON line: {e}")))?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL) => {}
        theirs => {
            let theirs = theirs.map_or("none".to_string(), |v| v.to_string());
            return Err(refuse(
                ErrorKind::Version,
                format!(
                    "this engine (ocio {}) speaks control protocol {PROTOCOL}; the request says {theirs}; use the same ocio build for both",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
    }
    let request = value.get("request").cloned().unwrap_or_default();
    serde_json::from_value::<Ask>(request.clone()).map_err(|_| {
        // Said as the engine's request type says it (an untagged fallback says nothing).
        let detail = match serde_json::from_value::<Request>(request) {
            Err(e) => e.to_string(),
            Ok(_) => "not a request".to_string(),
        };
        refuse(ErrorKind::BadRequest, format!("not a request: {detail}"))
    })
}

/// Forward engine events until the client closes the connection, the server stops or the
/// engine does.
async fn stream_events(
    mut feed: tokio::sync::mpsc::Receiver<Feed>,
    mut read: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut write: tokio::net::unix::OwnedWriteHalf,
    stop: CancellationToken,
) -> std::io::Result<()> {
    loop {
        let body = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            // Anything the client sends now, or its closing, ends the stream.
            _ = read_line(&mut read, MAX_REQUEST) => return Ok(()),
            item = feed.recv() => match item {
                Some(Feed::Event(told)) => Body::Event(told),
                Some(Feed::Lagged(missed)) => Body::Lagged(missed),
                Some(Feed::Gone(why)) => {
                    write_line(&mut write, &line(Body::Gone(why))).await?;
                    return Ok(());
                }
                None => return Ok(()),
            },
        };
        write_line(&mut write, &line(body)).await?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn reader(bytes: Vec<u8>) -> BufReader<std::io::Cursor<Vec<u8>>> {
        BufReader::new(std::io::Cursor::new(bytes))
    }

    /// Requests in flight share one budget: a second line waits while the first holds it all,
    /// and is read once the first is answered.
    #[tokio::test]
    async fn requests_in_flight_share_one_budget() {
        let budget = Arc::new(Semaphore::new(2));
        let mut big = vec![b'x'; CHUNK + CHUNK / 2];
        big.push(b'\n');
        let (first, held) = read_request(&mut reader(big.clone()), 16 * CHUNK, &budget)
            .await
            .ok()
            .flatten()
            .unwrap();
        assert_eq!((first.len(), held.num_permits()), (CHUNK + CHUNK / 2, 2));
        let waiting = tokio::time::timeout(
            Duration::from_millis(200),
            read_request(&mut reader(b"{}\n".to_vec()), 16 * CHUNK, &budget),
        )
        .await;
        assert!(waiting.is_err(), "no budget left while the first is held");
        drop(held);
        let (second, _held) = read_request(&mut reader(b"{}\n".to_vec()), 16 * CHUNK, &budget)
            .await
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(second, b"{}");
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_refused_and_the_end_of_input_is_none() {
        let budget = Arc::new(Semaphore::new(BUDGET_CHUNKS));
        let long = read_request(&mut reader(vec![b'x'; 2 * CHUNK]), CHUNK, &budget).await;
        assert!(matches!(
            long,
            Err(Refused(ApiError {
                kind: ErrorKind::BadRequest,
                ..
            }))
        ));
        assert!(matches!(
            read_request(&mut reader(Vec::new()), CHUNK, &budget).await,
            Ok(None)
        ));
        assert_eq!(
            budget.available_permits(),
            BUDGET_CHUNKS,
            "nothing held after"
        );
    }
}
