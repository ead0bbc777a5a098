//! An incremental Server-Sent Events decoder: byte chunks cut anywhere (inside a UTF-8
//! character, between `\r` and `\n`) go in, whole messages come out, following the WHATWG
//! event-stream rules.
//!
//! Rules: lines end in `\n`, `\r\n` or `\r`; a line starting with `:` is a comment; `field:
//! value` loses one space after the colon; `data` lines are joined with `\n`; a blank line
//! dispatches the message, unless it had no `data` line; `id` persists across messages (the
//! last event id); `retry` (a reconnection delay) is ignored; a leading byte-order mark is
//! dropped; invalid UTF-8 becomes U+FFFD. An incomplete message at the end of the stream is
//! never dispatched.
//!
//! Memory is bounded: a message whose data would pass `max_message` bytes (or a line longer
//! than that) is dropped, not dispatched. Each drop is logged as a warning with the number
//! dropped so far; the stream goes on with the next message.

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;

/// Default bound on one message's data: 16 MiB.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Buffer capacity past which an emptied buffer is shrunk.
const SHRINK_ABOVE: usize = 1024 * 1024;

/// One dispatched message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event` field; `None` when absent or empty (the default type, `message`).
    pub(crate) event: Option<String>,
    pub data: String,
    /// The last event id seen on the stream so far (WHATWG `lastEventId`), `None` if empty.
    pub(crate) id: Option<String>,
}

#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes received and not yet cut into lines; lines before `start` are done.
    buf: Vec<u8>,
    start: usize,
    /// `buf[start..scanned]` holds no line end.
    scanned: usize,
    /// The last line ended in `\r` at the end of the input: a `\n` next belongs to it.
    skip_lf: bool,
    /// Nothing read yet (a byte-order mark may come).
    at_stream_start: bool,
    /// The current line is too long and is thrown away up to its end.
    skipping_line: bool,
    fields: Fields,
}

/// The message being assembled.
#[derive(Debug)]
struct Fields {
    /// Every `data` line followed by `\n`.
    data: String,
    event: Option<String>,
    last_id: Option<String>,
    max_message: usize,
    /// The message being read has passed the limit and will be dropped.
    oversized: bool,
    dropped: u64,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::with_max_message(DEFAULT_MAX_MESSAGE)
    }

    /// A decoder that drops messages whose data passes `max_message` bytes.
    pub(crate) fn with_max_message(max_message: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            skip_lf: false,
            at_stream_start: true,
            skipping_line: false,
            fields: Fields {
                data: String::new(),
                event: None,
                last_id: None,
                max_message,
                oversized: false,
                dropped: 0,
            },
        }
    }

    /// Add bytes from the stream. Call [`next_message`](Self::next_message) until `None` after.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        // Give back the room a huge message took once it is gone.
        if self.buf.capacity() > SHRINK_ABOVE && self.buf.len() < SHRINK_ABOVE / 4 {
            self.buf.shrink_to(SHRINK_ABOVE / 4);
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, if the bytes pushed so far hold one.
    pub fn next_message(&mut self) -> Option<SseMessage> {
        loop {
            if self.at_stream_start && !self.skip_bom() {
                return None;
            }
            if self.skip_lf {
                if *self.buf.get(self.start)? == b'\n' {
                    self.start += 1;
                    self.scanned = self.start;
                }
                self.skip_lf = false;
            }
            let Some(offset) = find_line_end(&self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                if self.buf.len() - self.start > self.fields.max_message {
                    // Keep only what is needed to find the line's end.
                    self.buf.truncate(self.start);
                    self.scanned = self.start;
                    self.skipping_line = true;
                    self.fields.mark_oversized();
                }
                return None;
            };
            let end = self.scanned + offset;
            let line_start = self.start;
            self.start = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(self.start) {
                    Some(b'\n') => self.start += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            self.scanned = self.start;
            if self.skipping_line {
                self.skipping_line = false;
                continue;
            }
            if let Some(message) = self.fields.line(&self.buf[line_start..end]) {
                return Some(message);
            }
        }
    }

    /// Messages dropped so far for passing the size limit.
    #[cfg(test)]
    pub(crate) fn oversized_dropped(&self) -> u64 {
        self.fields.dropped
    }

    /// Bytes held for an incomplete line.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Drops a UTF-8 byte-order mark at the very start; `false` while too few bytes have come
    /// to tell.
    fn skip_bom(&mut self) -> bool {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let have = &self.buf[self.start..];
        if have.len() < BOM.len() && BOM.starts_with(have) {
            return false;
        }
        if have.starts_with(BOM) {
            self.start += BOM.len();
            self.scanned = self.start;
        }
        self.at_stream_start = false;
        true
    }
}

impl Fields {
    /// Takes one line (without its end); returns a message when the line dispatches one.
    fn line(&mut self, line: &[u8]) -> Option<SseMessage> {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            None if line.is_empty() => return self.dispatch(),
            Some(0) => return None,
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" if !self.oversized => {
                if self.data.len() + value.len() + 1 > self.max_message {
                    self.mark_oversized();
                } else {
                    self.data.reserve(value.len() + 1);
                    push_utf8(&mut self.data, value);
                    self.data.push('\n');
                }
            }
            b"event" => {
                self.event = (!value.is_empty()).then(|| lossy(value));
            }
            b"id" if !value.contains(&0) => {
                self.last_id = (!value.is_empty()).then(|| lossy(value));
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseMessage> {
        let event = self.event.take();
        if self.oversized {
            self.oversized = false;
            self.dropped += 1;
            tracing::warn!(
                limit_bytes = self.max_message,
                dropped_total = self.dropped,
                "dropped an event-stream message larger than the limit"
            );
            return None;
        }
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        Some(SseMessage {
            event,
            data,
            id: self.last_id.clone(),
        })
    }

    fn mark_oversized(&mut self) {
        self.oversized = true;
        self.data = String::new();
    }
}

/// Index of the first `\n` or `\r`.
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n' || b == b'\r')
}

fn push_utf8(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
