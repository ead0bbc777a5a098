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
pub(crate) struct ControlServer {
    socket: PathBuf,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl ControlServer {
    /// Listen on `socket` for the engine behind `engine`. Fails when another engine already
    /// listens there.
    pub(crate) async fn bind(
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

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stop accepting, close every connection (subscribers see their stream end), and remove
    /// the socket file.
    pub(crate) async fn shutdown(self) {
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
    let budget = Budget::new(LINE_CHUNKS, LARGE_CHUNKS);
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
    budget: Budget,
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
            Ask::Subscribe { follower } => {
                let feed = engine.feed(follower).await;
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

/// Requests of every connection together hold at most 64 chunks of memory while they are
/// read and answered (40 clients sending 15 MB each must not take the engine's memory with
/// them): each line one chunk of [`LINE_CHUNKS`] from its first byte, and a line longer than
/// a chunk then, in one go, as many as the longest line may need of [`LARGE_CHUNKS`] (two
/// such lines at once). A reader that cannot get its share waits, and gives up after
/// [`BUDGET_WAIT`].
const LINE_CHUNKS: usize = 32;
const LARGE_CHUNKS: usize = 32;
const CHUNK: usize = 1024 * 1024;
const BUDGET_WAIT: Duration = Duration::from_secs(30);

/// The memory request lines may hold, shared by every connection. The two pools are taken in
/// that order, and the large one in one go, so a reader never waits for budget while holding
/// some that another waiting reader needs (taken a chunk at a time from one pool, 40 large
/// lines each held a few chunks and waited for more until all gave up).
#[derive(Clone)]
struct Budget {
    lines: Arc<Semaphore>,
    large: Arc<Semaphore>,
    large_chunks: usize,
}

impl Budget {
    fn new(lines: usize, large: usize) -> Self {
        Self {
            lines: Arc::new(Semaphore::new(lines)),
            large: Arc::new(Semaphore::new(large)),
            large_chunks: large,
        }
    }
}

/// A line's share of the budget, given back when dropped.
struct Held {
    _line: OwnedSemaphorePermit,
    large: Option<OwnedSemaphorePermit>,
}

/// Why a request line was not read.
enum ReadFailure {
    /// Answered with this error, then the connection closes.
    Refused(ApiError),
    /// The connection failed.
    Failed(std::io::Error),
}
use ReadFailure::{Failed, Refused};

/// One request line (without its newline) and the share of the budget it holds until
/// dropped; `None` when the client closed the connection. An idle connection holds none.
async fn read_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
    budget: &Budget,
) -> Result<Option<(Vec<u8>, Held)>, ReadFailure> {
    if reader.fill_buf().await.map_err(Failed)?.is_empty() {
        return Ok(None);
    }
    let mut line = Vec::new();
    let mut held = Held {
        _line: take(&budget.lines, 1).await?,
        large: None,
    };
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
        if line.len() + take_now > CHUNK && held.large.is_none() {
            let chunks = limit.div_ceil(CHUNK).min(budget.large_chunks);
            held.large = Some(take(&budget.large, chunks).await?);
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
/// The request is decoded straight from the line, not through a `serde_json::Value` and a
/// copy of it (a 15 MB plan took three copies of itself besides the line).
fn decode(bytes: &[u8]) -> Result<Ask, ApiError> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(default)]
        v: Option<serde_json::Value>,
        #[serde(borrow, default)]
        request: Option<&'a serde_json::value::RawValue>,
    }
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| refuse(ErrorKind::BadRequest, format!("not a JSON line: {e}")))?;
    match envelope.v.as_ref().and_then(serde_json::Value::as_u64) {
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
    let request = envelope.request.map_or("null", |r| r.get());
    serde_json::from_str::<Ask>(request).map_err(|_| {
        // Said as the engine's request type says it (an untagged fallback says nothing).
        let detail = match serde_json::from_str::<Request>(request) {
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
            // Only a host that stops cleanly stops the server: its clients are told so.
            _ = stop.cancelled() => {
                // Bounded: a client that reads nothing (suspended) must not hold the host.
                let stopped = line(Body::Gone(crate::engine::api::STOPPED.into()));
                let told = write_line(&mut write, &stopped);
                let _ = tokio::time::timeout(Duration::from_secs(1), told).await;
                return Ok(());
            }
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
        let budget = Budget::new(1, 1);
        let mut big = vec![b'x'; CHUNK + CHUNK / 2];
        big.push(b'\n');
        let (first, held) = read_request(&mut reader(big.clone()), 16 * CHUNK, &budget)
            .await
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(first.len(), CHUNK + CHUNK / 2);
        assert!(
            held.large.is_some(),
            "a line past one chunk holds a large share"
        );
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

    /// Many large lines arriving at once, each read a piece at a time: all are read (none
    /// waits for budget that the others hold while they wait too).
    #[tokio::test]
    async fn many_large_lines_at_once_are_all_read() {
        use tokio::io::AsyncWriteExt;
        let budget = Budget::new(4, 4);
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (mut write, read) = tokio::io::duplex(4 * CHUNK);
            write.write_all(&vec![b'x'; CHUNK / 2]).await.unwrap();
            writers.push(write);
            let budget = budget.clone();
            readers.push(tokio::spawn(async move {
                let mut read = BufReader::new(read);
                read_request(&mut read, 16 * CHUNK, &budget)
                    .await
                    .ok()
                    .flatten()
                    .map(|(line, _)| line.len())
            }));
        }
        tokio::task::yield_now().await;
        for write in &mut writers {
            write.write_all(&vec![b'x'; CHUNK]).await.unwrap();
            write.write_all(b"\n").await.unwrap();
        }
        for reader in readers {
            let read = tokio::time::timeout(Duration::from_secs(5), reader).await;
            assert_eq!(read.ok().map(Result::unwrap), Some(Some(CHUNK + CHUNK / 2)));
        }
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_refused_and_the_end_of_input_is_none() {
        let budget = Budget::new(LINE_CHUNKS, LARGE_CHUNKS);
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
            (
                budget.lines.available_permits(),
                budget.large.available_permits()
            ),
            (LINE_CHUNKS, LARGE_CHUNKS),
            "nothing held after"
        );
    }
}
