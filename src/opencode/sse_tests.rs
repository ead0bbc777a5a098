//! Tests of the SSE decoder: the WHATWG rules, chunk boundaries anywhere, the size limit.

use proptest::prelude::*;

use super::*;

fn decode_all(decoder: &mut SseDecoder, chunks: &[&[u8]]) -> Vec<SseMessage> {
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(message) = decoder.next_message() {
            out.push(message);
        }
    }
    out
}

fn whole(stream: &[u8]) -> Vec<SseMessage> {
    decode_all(&mut SseDecoder::new(), &[stream])
}

fn bytewise(stream: &[u8]) -> Vec<SseMessage> {
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    decode_all(&mut SseDecoder::new(), &chunks)
}

fn data(d: &str) -> SseMessage {
    SseMessage {
        data: d.to_owned(),
        ..SseMessage::default()
    }
}

#[test]
fn data_lines_are_joined_and_one_leading_space_is_dropped() {
    let stream = b"data: a\ndata:b\ndata:  c\ndata\n\n";
    let expected = vec![data("a\nb\n c\n")];
    assert_eq!(whole(stream), expected);
    assert_eq!(bytewise(stream), expected);
}

#[test]
fn every_line_end_works_and_cr_lf_split_across_chunks_is_one_end() {
    for stream in [
        &b"data: x\n\ndata: y\n\n"[..],
        b"data: x\r\n\r\ndata: y\r\n\r\n",
        b"data: x\r\rdata: y\r\r",
        b"data: x\r\n\ndata: y\n\r\n",
    ] {
        assert_eq!(whole(stream), vec![data("x"), data("y")], "{stream:?}");
        assert_eq!(bytewise(stream), vec![data("x"), data("y")], "{stream:?}");
    }
    // `\r` at the end of one chunk and `\n` at the start of the next are one line end, not two
    // (two would dispatch early and then see an empty line: same messages, but check anyway).
    let mut decoder = SseDecoder::new();
    let got = decode_all(
        &mut decoder,
        &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
    );
    assert_eq!(got, vec![data("a\nb")]);
}

#[test]
fn comments_unknown_fields_and_empty_messages_are_not_dispatched() {
    let stream = b": hello\n\nfoo: bar\n\nevent: ping\n\ndata: real\n\n";
    assert_eq!(whole(stream), vec![data("real")]);
}

#[test]
fn an_empty_data_field_dispatches_an_empty_message() {
    assert_eq!(whole(b"data:\n\n"), vec![data("")]);
    assert_eq!(whole(b"data\n\n"), vec![data("")]);
}

#[test]
fn event_and_id_fields() {
    let stream =
        b"event: update\nid: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\0y\ndata: d\n\n";
    let got = whole(stream);
    assert_eq!(
        got,
        vec![
            SseMessage {
                event: Some("update".into()),
                data: "a".into(),
                id: Some("7".into())
            },
            // The last event id persists; the event type does not.
            SseMessage {
                event: None,
                data: "b".into(),
                id: Some("7".into())
            },
            data("c"),
            // An id with NUL is ignored.
            data("d"),
        ]
    );
}

#[test]
fn retry_fields_are_ignored() {
    let stream = b"retry: 1500\n\nretry: soon\ndata: d\n\n";
    assert_eq!(whole(stream), [data("d")]);
}

#[test]
fn utf8_split_inside_a_character_and_invalid_bytes() {
    let text = "data: grüße ✓ 🦀\n\n".as_bytes();
    assert_eq!(bytewise(text), vec![data("grüße ✓ 🦀")]);
    assert_eq!(whole(b"data: a\xFFb\n\n"), vec![data("a\u{FFFD}b")]);
}

#[test]
fn a_leading_byte_order_mark_is_dropped_once() {
    assert_eq!(bytewise(b"\xEF\xBB\xBFdata: a\n\n"), vec![data("a")]);
    // Only at the start of the stream: later it is part of the field name.
    assert_eq!(
        whole(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"),
        vec![data("a")]
    );
}

#[test]
fn an_incomplete_message_is_held_back() {
    let mut decoder = SseDecoder::new();
    assert!(decode_all(&mut decoder, &[b"data: a\ndata: b\n"]).is_empty());
    assert_eq!(decode_all(&mut decoder, &[b"\n"]), vec![data("a\nb")]);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn oversized_messages_are_dropped_counted_and_the_stream_goes_on() {
    let mut decoder = SseDecoder::with_max_message(16);
    let stream: &[u8] = b"data: 0123456789\ndata: 0123456789\n\ndata: ok\n\n";
    assert_eq!(decode_all(&mut decoder, &[stream]), vec![data("ok")]);
    assert_eq!(decoder.oversized_dropped(), 1);
}

#[test]
fn an_endless_line_does_not_grow_the_buffer_past_the_limit() {
    let mut decoder = SseDecoder::with_max_message(1024);
    decoder.push(b"data: ok\n\ndata: ");
    assert_eq!(decoder.next_message(), Some(data("ok")));
    let junk = [b'x'; 512];
    for _ in 0..10_000 {
        decoder.push(&junk);
        assert_eq!(decoder.next_message(), None);
        assert!(decoder.buffered() <= 1024 + junk.len());
    }
    decoder.push(b"\n\ndata: after\n\n");
    assert_eq!(decoder.next_message(), Some(data("after")));
    assert_eq!(decoder.oversized_dropped(), 1);
}

#[test]
fn recorded_streams_give_one_message_per_data_line() {
    for name in [
        "sample-events-permission.sse",
        "sample-events-write-tool.sse",
        "live-event-1.18.33.sse",
        "live-global-event-1.18.33.sse",
    ] {
        let path = format!(
            "{}/tests/fixtures/opencode/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let stream = std::fs::read(&path).unwrap();
        let text = String::from_utf8(stream.clone()).unwrap();
        let expected: Vec<SseMessage> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(data)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(whole(&stream), expected, "{name}");
        let chunks: Vec<&[u8]> = stream.chunks(997).collect();
        assert_eq!(
            decode_all(&mut SseDecoder::new(), &chunks),
            expected,
            "{name}"
        );
    }
}

/// One generated message: its lines and what it should decode to.
fn message_strategy() -> impl Strategy<Value = (Vec<String>, Option<SseMessage>)> {
    let value = "[a-zé✓🦀 :{}\"]{0,12}";
    (
        prop::collection::vec(value, 0..4),
        prop::option::of("[a-z.]{1,8}"),
        prop::bool::ANY,
    )
        .prop_map(|(data_lines, event, comment)| {
            let mut lines = Vec::new();
            if comment {
                lines.push(": keep-alive".to_owned());
            }
            if let Some(event) = &event {
                lines.push(format!("event: {event}"));
            }
            for d in &data_lines {
                lines.push(format!("data: {d}"));
            }
            let expected = (!data_lines.is_empty()).then(|| SseMessage {
                event: event.clone(),
                data: data_lines.join("\n"),
                id: None,
            });
            (lines, expected)
        })
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_messages(
        messages in prop::collection::vec(message_strategy(), 0..12),
        ending in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let mut stream = String::new();
        let mut expected = Vec::new();
        for (lines, message) in &messages {
            for line in lines {
                stream.push_str(line);
                stream.push_str(ending);
            }
            stream.push_str(ending);
            expected.extend(message.clone());
        }
        let bytes = stream.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for p in points {
            chunks.push(&bytes[from..p]);
            from = p;
        }
        chunks.push(&bytes[from..]);
        prop_assert_eq!(&decode_all(&mut SseDecoder::new(), &chunks), &expected);
        prop_assert_eq!(&whole(bytes), &expected);
    }

    #[test]
    fn mixed_line_ends_decode_alike_in_any_chunking(
        raw in prop::collection::vec(prop::sample::select(vec![
            "data: x", "data:y", "event: e", "id: 1", ": c", "", "\r", "\n", "\r\n", "é", "🦀",
        ]), 0..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let stream = raw.concat();
        let bytes = stream.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for p in points {
            chunks.push(&bytes[from..p]);
            from = p;
        }
        chunks.push(&bytes[from..]);
        prop_assert_eq!(decode_all(&mut SseDecoder::new(), &chunks), whole(bytes));
    }
}
