//! A TCP connection that can rest: taken out of the runtime's poller while its reader waits
//! for its next round, so that what arrives meanwhile does not wake a worker.
//!
//! A busy event stream is read in rounds (see [`super::round`]), but the poller reports the
//! socket at every segment the server sends, each its own event: following 16 sessions
//! streaming text, that was ~700 wake-ups a second for ~20 reads, about a third of ocio's CPU.
//! Resting, the socket is a plain `std` socket the poller does not know; the kernel keeps
//! what arrives, and the next read registers it again and takes it all at once.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The connection, as the HTTP client's connection task owns it.
#[derive(Debug)]
pub(crate) struct RestingSocket {
    shared: Arc<Mutex<Shared>>,
}

/// The reader's hold on the connection: it rests it and wakes it. Does not keep it open.
#[derive(Debug, Clone)]
pub(crate) struct Rest {
    shared: Weak<Mutex<Shared>>,
}

#[derive(Debug)]
struct Shared {
    socket: Socket,
    /// Whoever last waited to read: it waited on a registration a rest has dropped, so waking
    /// the socket wakes it.
    reader: Option<Waker>,
}

#[derive(Debug)]
enum Socket {
    Awake(tokio::net::TcpStream),
    Resting(std::net::TcpStream),
    /// Taking it out of the poller or putting it back failed: every use fails.
    Broken(io::ErrorKind),
}

/// What a socket is while it is moved between the two.
const BROKEN: Socket = Socket::Broken(io::ErrorKind::Other);

impl RestingSocket {
    pub(crate) fn new(stream: tokio::net::TcpStream) -> (Self, Rest) {
        let shared = Arc::new(Mutex::new(Shared {
            socket: Socket::Awake(stream),
            reader: None,
        }));
        let rest = Rest {
            shared: Arc::downgrade(&shared),
        };
        (Self { shared }, rest)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Rest {
    /// Out of the poller until [`Rest::wake`] or the connection's next use.
    pub(crate) fn rest(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.socket = match std::mem::replace(&mut shared.socket, BROKEN) {
            Socket::Awake(stream) => match stream.into_std() {
                Ok(stream) => Socket::Resting(stream),
                Err(e) => Socket::Broken(e.kind()),
            },
            other => other,
        };
    }

    /// Back in the poller, and whoever waited to read while it rested is woken: to read what
    /// came meanwhile, or to meet the error of a socket that could not be put back.
    pub(crate) fn wake(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(shared.socket, Socket::Resting(_)) {
            return;
        }
        let _ = shared.awake();
        if let Some(reader) = shared.reader.take() {
            reader.wake();
        }
    }
}

impl Shared {
    /// The registered stream, registering it again if it rested.
    fn awake(&mut self) -> io::Result<&mut tokio::net::TcpStream> {
        self.socket = match std::mem::replace(&mut self.socket, BROKEN) {
            Socket::Resting(stream) => match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => Socket::Awake(stream),
                Err(e) => Socket::Broken(e.kind()),
            },
            other => other,
        };
        match &mut self.socket {
            Socket::Awake(stream) => Ok(stream),
            Socket::Broken(kind) => Err(io::Error::new(
                *kind,
                "the connection could not be taken out of or put back in the poller",
            )),
            Socket::Resting(_) => Err(io::Error::other("the connection rests")),
        }
    }
}

impl AsyncRead for RestingSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut shared = self.lock();
        let polled = match shared.awake() {
            Ok(stream) => Pin::new(stream).poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if polled.is_pending() {
            shared.reader = Some(cx.waker().clone());
        }
        polled
    }
}

impl AsyncWrite for RestingSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.lock().awake() {
            Ok(stream) => Pin::new(stream).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.lock().awake() {
            Ok(stream) => Pin::new(stream).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.lock().awake() {
            Ok(stream) => Pin::new(stream).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (RestingSocket, Rest, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ours, theirs) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (socket, rest) = RestingSocket::new(ours.unwrap());
        (socket, rest, theirs.unwrap().0)
    }

    #[tokio::test]
    async fn what_arrives_while_resting_is_read_whole_once_woken() {
        let (mut socket, rest, mut server) = pair().await;
        server.write_all(b"one ").await.unwrap();
        let mut buf = [0u8; 64];
        let n = socket.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one ");
        rest.rest();
        for part in [&b"two "[..], b"three ", b"four"] {
            server.write_all(part).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A read while resting puts the socket back itself.
        let mut got = Vec::new();
        while got.len() < b"two three four".len() {
            let n = socket.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"two three four");
    }

    #[tokio::test]
    async fn a_reader_waiting_when_the_socket_rests_is_woken_by_the_wake() {
        let (mut socket, rest, mut server) = pair().await;
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let n = socket.read(&mut buf).await.unwrap();
            buf[..n].to_vec()
        });
        // The reader waits on the registration the rest drops: only the wake can reach it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        rest.rest();
        server.write_all(b"meanwhile").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!reader.is_finished(), "a resting socket woke its reader");
        rest.wake();
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the wake reaches the reader")
            .unwrap();
        assert_eq!(got, b"meanwhile");
    }

    #[tokio::test]
    async fn the_rest_handle_does_not_keep_the_connection_open() {
        let (socket, rest, mut server) = pair().await;
        drop(socket);
        rest.rest();
        rest.wake();
        let mut buf = [0u8; 8];
        let n = tokio::time::timeout(Duration::from_secs(5), server.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "the server sees the connection closed");
    }
}
