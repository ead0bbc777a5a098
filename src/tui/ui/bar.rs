//! One-line bars (the header, the footer) made of parts that are shown whole or not at all:
//! where the line is short, the least important parts give way, never a word cut in half.

use ratatui::text::{Line, Span};

/// How important a part is: lower is shown first and given way last.
pub(crate) type Rank = u8;

/// A part of a bar: its forms, longest first (a short form is used where the long one does
/// not fit), and the separator before it (always drawn: what a part takes is what it shows).
pub(crate) struct Part<'a> {
    rank: Rank,
    lead: Span<'a>,
    forms: Vec<Vec<Span<'a>>>,
}

impl<'a> Part<'a> {
    pub(crate) fn new(rank: Rank, lead: Span<'a>, spans: Vec<Span<'a>>) -> Self {
        Self {
            rank,
            lead,
            forms: vec![spans],
        }
    }

    /// A shorter form, used where the longer ones do not fit.
    pub(crate) fn or(mut self, spans: Vec<Span<'a>>) -> Self {
        self.forms.push(spans);
        self
    }

    fn width(&self, form: usize) -> usize {
        let lead = self.lead.width();
        lead + self.forms[form].iter().map(Span::width).sum::<usize>()
    }
}

/// The parts that fit in `width`, in their own order: by rank, each in its shortest form
/// where it fits; then, by rank, each in the longest form the room left allows.
pub(crate) fn line<'a>(parts: Vec<Part<'a>>, width: u16) -> Line<'a> {
    let width = usize::from(width);
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|i| parts[*i].rank);
    // The form each part is shown in, if it is.
    let mut chosen: Vec<Option<usize>> = vec![None; parts.len()];
    let mut used = 0;
    for &i in &order {
        let shortest = parts[i].forms.len().saturating_sub(1);
        if used + parts[i].width(shortest) <= width {
            used += parts[i].width(shortest);
            chosen[i] = Some(shortest);
        }
    }
    for &i in &order {
        let Some(now) = chosen[i] else { continue };
        let room = width - used + parts[i].width(now);
        if let Some(longer) = (0..now).find(|f| parts[i].width(*f) <= room) {
            used = used - parts[i].width(now) + parts[i].width(longer);
            chosen[i] = Some(longer);
        }
    }
    let mut spans = Vec::new();
    for (part, form) in parts.into_iter().zip(chosen) {
        let Some(form) = form else { continue };
        // A separator separates nothing before the first part shown (the header read
        // ` │ 1 over budget …` where its name gave way).
        let lead = match spans.is_empty() && !part.lead.content.trim().is_empty() {
            true => Span::styled(" ", part.lead.style),
            false => part.lead,
        };
        spans.push(lead);
        spans.extend(part.forms.into_iter().nth(form).unwrap_or_default());
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn part(rank: Rank, long: &'static str, short: &'static str) -> Part<'static> {
        let lead = if long == "ocio" { "" } else { " | " };
        Part::new(rank, Span::raw(lead), vec![Span::raw(long)]).or(vec![Span::raw(short)])
    }

    #[test]
    fn the_least_important_parts_give_way_whole_and_short_forms_come_first() {
        let parts = || {
            vec![
                part(2, "ocio", "ocio"),
                part(1, "agents 4/4 online", "4/4"),
                part(0, "1 waiting for you", "1 waiting"),
            ]
        };
        assert_eq!(
            text(&line(parts(), 80)),
            "ocio | agents 4/4 online | 1 waiting for you"
        );
        assert_eq!(text(&line(parts(), 30)), "ocio | 4/4 | 1 waiting for you");
        // No separator before the first part shown.
        assert_eq!(text(&line(parts(), 20)), " 4/4 | 1 waiting");
        assert_eq!(text(&line(parts(), 12)), " 1 waiting");
        assert_eq!(text(&line(parts(), 5)), "ocio");
    }
}
