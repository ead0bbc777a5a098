//! Small text helpers shared across ocio: clipping long text, showing user-supplied values in
//! error messages, and did-you-mean suggestions.

/// How many bytes of a user-supplied value an error message echoes.
pub(crate) const SHOWN_MAX: usize = 80;

/// A value from a file or the command line as an error message echoes it: clipped to
/// [`SHOWN_MAX`] bytes, saying how much was left out, so a huge value never floods the screen.
pub(crate) fn shown(value: &str) -> String {
    clip(value, SHOWN_MAX)
}

/// A message from a parser or a library that may quote a user-supplied value (`invalid type:
/// string "...", expected ...`): clipped like [`shown`], with room for the words around it.
pub(crate) fn shown_message(message: &str) -> String {
    clip(message, 4 * SHOWN_MAX)
}

/// `1 task`, `2 tasks`: a count with its noun (plural by adding `s`).
pub(crate) fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// A size as a person reads it: `512 B`, `3.2 KiB`, `2.0 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n_f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n_f < KIB * KIB {
        format!("{:.1} KiB", n_f / KIB)
    } else if n_f < KIB * KIB * KIB {
        format!("{:.1} MiB", n_f / (KIB * KIB))
    } else {
        format!("{:.1} GiB", n_f / (KIB * KIB * KIB))
    }
}

/// A size as a person writes it: `2MiB`, `512 KiB`, `1.5GiB`, `64kb` (KB = KiB here) or a
/// number of bytes; `None` when it is none of these.
pub(crate) fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    let bytes = number * scale as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// A span that may count days (of 24 hours) and weeks as a person writes it: `30d`, `2w`,
/// `12h`, `1d 6h`; `None` when it is none.
pub(crate) fn parse_days(text: &str) -> Option<jiff::SignedDuration> {
    let span: jiff::Span = text.trim().parse().ok()?;
    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .ok()
}

/// A time span as a person reads it: `1m 30s`, `250ms` (whole milliseconds, and whole
/// seconds from a minute on).
pub(crate) fn duration(span: std::time::Duration) -> String {
    use std::time::Duration;
    let span = match span.as_secs() {
        secs if secs >= 60 => Duration::from_secs(secs),
        secs => Duration::from_secs(secs) + Duration::from_millis(u64::from(span.subsec_millis())),
    };
    jiff::SignedDuration::try_from(span).map_or_else(
        |_| "a very long time".to_string(),
        |span| format!("{span:#}"),
    )
}

/// At most `max` bytes of `text` (cut on a character boundary), saying how much was left out.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes more)", &text[..end], text.len() - end)
}

/// At most the last `max` bytes of `text` (cut on a character boundary), saying how much was
/// left out before them: for output whose end matters (a failing test run's summary).
pub(crate) fn clip_end(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("({} bytes before) …{}", start, &text[start..])
}

/// `text` without terminal control: ANSI escape sequences (colours, cursor moves) and other
/// control characters but tab are dropped, so a program's coloured output reads as text.
pub(crate) fn without_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI (`ESC [ ... final`) or a two-character escape.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != word)
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// `did you mean "design"?` for the closest candidate.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|found| format!("did you mean {found:?}?"))
}

/// Edit distance in characters, counting a swap of two neighbours as one edit (optimal string
/// alignment), since swapped letters are the commonest typo.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the distance table: two back, one back, and the one being filled.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let substitution = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            row[j] = substitution.min(previous[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut previous, row);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn clips_on_a_character_boundary_and_says_so() {
        assert_eq!(super::clip("short", 10), "short");
        assert_eq!(super::clip("héllo", 2), "h… (5 bytes more)");
        assert_eq!(super::clip_end("short", 10), "short");
        assert_eq!(super::clip_end("héllo", 4), "(3 bytes before) …llo");
    }

    #[test]
    fn durations_are_rounded_as_a_person_says_them() {
        use std::time::Duration;
        // A circuit breaker's pause, as `ocio agents` showed it: "127ms 962µs 725ns".
        assert_eq!(super::duration(Duration::from_nanos(127_962_725)), "127ms");
        assert_eq!(super::duration(Duration::from_millis(1_500)), "1s 500ms");
        assert_eq!(super::duration(Duration::from_millis(90_250)), "1m 30s");
        assert_eq!(super::duration(Duration::from_secs(20)), "20s");
    }

    #[test]
    fn counts_say_one_without_an_s() {
        assert_eq!(super::count(1, "task"), "1 task");
        assert_eq!(super::count(0, "task"), "0 tasks");
        assert_eq!(super::count(2, "session"), "2 sessions");
    }

    #[test]
    fn terminal_control_is_dropped() {
        let coloured = "\u{1b}[1m\u{1b}[32mtest result: ok\u{1b}[0m.\tdone\r";
        assert_eq!(super::without_control(coloured), "test result: ok.\tdone");
    }
}
