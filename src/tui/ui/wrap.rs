//! Long styled lines folded to a width at word boundaries, so a reader sees all of a line
//! (a transcript's, the status line's) where cutting it at the edge would hide its end.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// `line` folded into rows of at most `width` characters, broken after a space where there
/// is one (else mid-word); rows after the first start with `indent` spaces (under a
/// transcript line's clock). Styles are kept; the line's own style is kept on every row.
pub(crate) fn wrap(line: Line<'_>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let cells: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let indent = indent.min(width / 2);
    let mut rows = Vec::new();
    let mut start = 0;
    while start < cells.len() || rows.is_empty() {
        let lead = if rows.is_empty() { 0 } else { indent };
        let room = width.saturating_sub(lead).max(1);
        let end = row_end(&cells, start, room);
        let mut row = vec![Span::raw(" ".repeat(lead))];
        row.extend(spans(&cells[start..end]));
        rows.push(Line::from(row).style(line.style));
        start = end;
        // A space a row broke at does not start the next one.
        while start < cells.len() && cells[start].0 == ' ' {
            start += 1;
        }
    }
    rows
}

/// Where the row from `start` with `room` characters ends: all that is left if it fits, else
/// after its last space (or at a space just past it), else at `room`.
fn row_end(cells: &[(char, Style)], start: usize, room: usize) -> usize {
    let left = cells.len() - start;
    if left <= room {
        return cells.len();
    }
    let end = start + room;
    match cells[start..=end].iter().rposition(|(c, _)| *c == ' ') {
        Some(space) if space == room => end,
        Some(space) if space > 0 => start + space + 1,
        _ => end,
    }
}

/// Neighbouring characters of one style in one span.
fn spans(cells: &[(char, Style)]) -> Vec<Span<'static>> {
    let mut out: Vec<Span<'static>> = Vec::new();
    for (c, style) in cells {
        match out.last_mut() {
            Some(last) if last.style == *style => last.content.to_mut().push(*c),
            _ => out.push(Span::styled(c.to_string(), *style)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn text(rows: &[Line]) -> Vec<String> {
        rows.iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn a_short_line_is_one_row() {
        assert_eq!(text(&wrap(Line::raw("short"), 20, 4)), ["short"]);
        assert_eq!(text(&wrap(Line::raw(""), 20, 4)), [""]);
    }

    #[test]
    fn a_long_line_breaks_after_spaces_and_indents_what_follows() {
        let rows = wrap(Line::raw("aaaa bbbb cccc dddd"), 10, 2);
        assert_eq!(text(&rows), ["aaaa bbbb ", "  cccc ", "  dddd"]);
        for row in text(&rows) {
            assert!(row.chars().count() <= 10, "{row:?}");
        }
    }

    #[test]
    fn a_word_longer_than_a_row_is_cut_in_pieces_and_nothing_is_lost() {
        let long = "x".repeat(25);
        let rows = text(&wrap(Line::raw(long.clone()), 10, 0));
        assert_eq!(rows.concat(), long);
        assert!(rows.iter().all(|r| r.chars().count() <= 10));
    }

    #[test]
    fn styles_are_kept_across_rows() {
        let bold = Style::new().add_modifier(ratatui::style::Modifier::BOLD);
        let line = Line::from(vec![Span::raw("aaaa "), Span::styled("bbbb cccc", bold)]);
        let rows = wrap(line, 7, 0);
        assert_eq!(rows[1].spans[1].style, bold, "{rows:?}");
        assert_eq!(text(&rows), ["aaaa ", "bbbb ", "cccc"]);
    }
}
