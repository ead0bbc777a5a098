//! The body of a server's event stream (`GET /global/event`), on a connection that can rest
//! between the rounds it is read in (see [`super::resting`]).
//!
//! reqwest keeps its connections in a pool it does not show, so ocio opens this one itself
//! (hyper's HTTP/1 client over a socket it holds). Only where nothing more is needed: a plain
//! `http://` server and no proxy in the environment. A server behind TLS or a proxy is
//! followed through reqwest as the other calls are, and its connection does not rest.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper::header::{ACCEPT, AUTHORIZATION, HOST};
use hyper_util::rt::TokioIo;

use super::resting::{Rest, RestingSocket};

type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// The stream's bytes as they come, and the hold that rests its connection when there is one.
pub(crate) struct EventBody {
    chunks: Chunks,
    rest: Option<Rest>,
}

impl std::fmt::Debug for EventBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBody")
            .field("rests", &self.rest.is_some())
            .finish_non_exhaustive()
    }
}

impl EventBody {
    /// A body read through reqwest: its connection never rests.
    pub(crate) fn pooled(response: reqwest::Response) -> Self {
        let chunks = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| super::client::error_chain(&e)));
        Self {
            chunks: Box::pin(chunks),
            rest: None,
        }
    }

    /// Nothing will be read before the next round: the connection leaves the poller.
    pub(crate) fn rest(&self) {
        if let Some(rest) = &self.rest {
            rest.rest();
        }
    }

    /// The round is due: the connection is back in the poller and its reader is woken.
    pub(crate) fn wake(&self) {
        if let Some(rest) = &self.rest {
            rest.wake();
        }
    }
}

impl Stream for EventBody {
    type Item = Result<Bytes, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }
}

/// A server ocio can open the event stream to itself: `http://`, and no proxy to go through.
#[derive(Debug, Clone)]
pub(crate) struct Plain {
    host: url::Host<String>,
    port: u16,
    /// The `Host` header: the host and the port as the URL gives them.
    authority: String,
    path: String,
}

/// The variables reqwest takes a proxy for `http://` from: with one set, the stream goes the
/// way reqwest's calls go.
const PROXY_VARIABLES: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

impl Plain {
    /// `url` (the stream's, path included) when ocio can open it itself.
    pub(crate) fn of(url: &str) -> Option<Self> {
        Self::in_environment(url, |name| std::env::var_os(name))
    }

    /// [`Plain::of`] in the environment `variable` reads.
    fn in_environment(
        url: &str,
        variable: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Option<Self> {
        let proxied = PROXY_VARIABLES
            .iter()
            .any(|name| variable(name).is_some_and(|v| !v.is_empty()));
        Self::unproxied(url).filter(|_| !proxied)
    }

    fn unproxied(url: &str) -> Option<Self> {
        let url = url::Url::parse(url).ok()?;
        // A password written in the URL is reqwest's to send.
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host()?.to_owned();
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        Some(Self {
            host,
            port,
            authority,
            path,
        })
    }

    async fn connect(&self) -> std::io::Result<tokio::net::TcpStream> {
        match &self.host {
            url::Host::Domain(name) => {
                tokio::net::TcpStream::connect((name.as_str(), self.port)).await
            }
            url::Host::Ipv4(ip) => tokio::net::TcpStream::connect((*ip, self.port)).await,
            url::Host::Ipv6(ip) => tokio::net::TcpStream::connect((*ip, self.port)).await,
        }
    }

    /// `GET` the stream; an error says why no answer came.
    pub(crate) async fn get(
        &self,
        connect_timeout: Duration,
        authorization: Option<String>,
    ) -> Result<Answer, String> {
        let stream = tokio::time::timeout(connect_timeout, self.connect())
            .await
            .map_err(|_| {
                format!(
                    "connect timed out after {}",
                    crate::text::duration(connect_timeout)
                )
            })?
            .map_err(|e| super::client::error_chain(&e))?;
        // As reqwest does: an event is sent as it comes, not held for the next.
        let _ = stream.set_nodelay(true);
        let (socket, rest) = RestingSocket::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(socket))
            .await
            .map_err(|e| super::client::error_chain(&e))?;
        tokio::spawn(async move {
            // Ends when the body is dropped or the server closes; the reader sees why.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "event stream connection ended");
            }
        });
        let mut request = hyper::Request::get(&self.path)
            .header(HOST, &self.authority)
            .header(ACCEPT, "*/*");
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| super::client::error_chain(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await;
            let body = body.map_or_else(
                |e| e.to_string(),
                |b| String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            );
            return Ok(Answer::Refused { status, body });
        }
        let chunks = BodyDataStream::new(response.into_body())
            .map(|chunk| chunk.map_err(|e| super::client::error_chain(&e)));
        let body = EventBody {
            chunks: Box::pin(chunks),
            rest: Some(rest),
        };
        Ok(Answer::Stream(body))
    }
}

/// What the server answered to the stream's `GET`.
#[derive(Debug)]
pub(crate) enum Answer {
    Stream(EventBody),
    /// Not a success: the status, and the body read whole (cut at 64 KiB).
    Refused {
        status: StatusCode,
        body: String,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_plain_url_is_opened_by_ocio_with_its_path_and_host_header() {
        let plain = Plain::unproxied("http://Box.example:4096/gw/a/global/event").unwrap();
        assert_eq!(plain.authority, "box.example:4096");
        assert_eq!(plain.path, "/gw/a/global/event");
        assert_eq!(plain.port, 4096);
        let v6 = Plain::unproxied("http://[::1]/global/event").unwrap();
        assert_eq!((v6.authority.as_str(), v6.port), ("[::1]", 80));
    }

    #[test]
    fn tls_proxies_and_passwords_in_the_url_are_left_to_reqwest() {
        assert!(Plain::unproxied("http://opencode:pw@box:4096/global/event").is_none());
        let none = |_: &str| None;
        assert!(Plain::in_environment("https://box:4096/global/event", none).is_none());
        assert!(Plain::in_environment("http://box:4096/global/event", none).is_some());
        let proxy = |name: &str| (name == "http_proxy").then(|| "http://proxy:3128".into());
        assert!(Plain::in_environment("http://box:4096/global/event", proxy).is_none());
        let empty = |_: &str| Some("".into());
        assert!(Plain::in_environment("http://box:4096/global/event", empty).is_some());
    }
}
