//! Widths from content: a table's columns as wide as what they hold (within bounds), and the
//! width of a pane beside another. What is left over goes to what would otherwise be cut.

/// A table column: the width it needs at least and the width its widest value (or header)
/// wants. An optional column (`min == 0`) is left out when it does not get its want.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) min: u16,
    pub(crate) want: u16,
}

impl Column {
    /// A column as wide as the widest of `values` (widths) and its header, at most `max`; cut
    /// to no less than `min` where space is short.
    pub(crate) fn of(
        header: &str,
        values: impl Iterator<Item = usize>,
        min: u16,
        max: u16,
    ) -> Self {
        let widest = values.fold(header.chars().count(), usize::max);
        let want = u16::try_from(widest).unwrap_or(u16::MAX).min(max);
        Self {
            min: min.min(want),
            want,
        }
    }

    /// A column whose values are never cut.
    pub(crate) fn fixed(width: u16) -> Self {
        Self {
            min: width,
            want: width,
        }
    }

    /// Wanting at least `want`.
    pub(crate) fn max_with(self, want: u16) -> Self {
        Self {
            want: self.want.max(want),
            ..self
        }
    }

    /// A column whose values are never cut (numbers, ids): as wide as the widest, or left out.
    pub(crate) fn whole(self) -> Self {
        Self {
            min: self.want,
            ..self
        }
    }

    /// Shown only when it gets all it wants.
    pub(crate) fn optional(self) -> Self {
        Self { min: 0, ..self }
    }
}

/// The widths of `columns` in `width` cells, one cell between shown columns, never more than
/// `width` in all: a table given more cuts its columns itself, without a `…`, which made ids
/// unusable and numbers wrong. Each column gets its minimum; where the minimums do not fit,
/// columns are left out, the last in `priority` first (a column is left out rather than cut
/// below its minimum). Then, in `priority` order, each gets what it wants; then `flex` (the
/// free text) takes what is left. A column of width 0 is not shown.
pub(crate) fn fit(width: u16, columns: &[Column], priority: &[usize], flex: usize) -> Vec<u16> {
    let mut widths: Vec<u16> = columns.iter().map(|c| c.min).collect();
    for &i in ranked(columns.len(), priority).iter().rev() {
        let shown = widths.iter().filter(|w| **w > 0).count();
        if used(&widths) <= width || shown <= 1 {
            break;
        }
        widths[i] = 0;
    }
    for &i in priority {
        let (Some(column), Some(&now)) = (columns.get(i), widths.get(i)) else {
            continue;
        };
        let spare = width.saturating_sub(used(&widths));
        if now == 0 {
            // An optional (or left out) column costs its want and the cell before it, or
            // nothing.
            if column.min == 0 && spare > column.want {
                widths[i] = column.want;
            }
            continue;
        }
        widths[i] += spare.min(column.want.saturating_sub(now));
    }
    let left = width.saturating_sub(used(&widths));
    if let Some(w) = widths.get_mut(flex).filter(|w| **w > 0) {
        *w += left;
    }
    // The one column left, still too wide: cut to the width (its cells say so with `…`).
    let over = used(&widths).saturating_sub(width);
    if let Some(w) = widths.iter_mut().find(|w| **w > 0) {
        *w -= over.min(*w);
    }
    widths
}

/// The cells `widths` spans in all: the shown columns and one cell between each two.
fn used(widths: &[u16]) -> u16 {
    let shown = widths.iter().filter(|w| **w > 0).count() as u16;
    widths.iter().sum::<u16>() + shown.saturating_sub(1)
}

/// Every column index, those in `priority` first in its order, then the rest in table order.
fn ranked(len: usize, priority: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = priority.iter().copied().filter(|i| *i < len).collect();
    order.extend((0..len).filter(|i| !priority.contains(i)));
    order
}

/// The cells (or headers, or constraints) of the columns shown, those wider than 0: a column
/// of width 0 handed to the table would still take a cell of spacing.
pub(crate) fn only_shown<T>(cells: impl IntoIterator<Item = T>, widths: &[u16]) -> Vec<T> {
    cells
        .into_iter()
        .zip(widths)
        .filter(|(_, w)| **w > 0)
        .map(|(c, _)| c)
        .collect()
}

/// The table constraints of the columns shown.
pub(crate) fn constraints(widths: &[u16]) -> Vec<ratatui::layout::Constraint> {
    widths
        .iter()
        .filter(|w| **w > 0)
        .map(|w| ratatui::layout::Constraint::Length(*w))
        .collect()
}

/// What a pane needs at least and what it would show whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Want {
    pub(crate) min: u16,
    pub(crate) want: u16,
}

impl Want {
    /// A bordered table of `columns` (those that want no width are left out).
    pub(crate) fn table(columns: &[Column]) -> Self {
        let shown = columns.iter().filter(|c| c.want > 0);
        let gaps = shown.clone().count().saturating_sub(1) as u16 + 2;
        Self {
            min: shown.clone().map(|c| c.min).sum::<u16>() + gaps,
            want: shown.map(|c| c.want).sum::<u16>() + gaps,
        }
    }

    /// A bordered pane of text `width` wide, cut no narrower than `min`.
    pub(crate) fn text(width: usize, min: u16) -> Self {
        let want = u16::try_from(width).unwrap_or(u16::MAX).saturating_add(2);
        Self {
            min: min.min(want),
            want,
        }
    }
}

/// How wide the first of two panes side by side is in `width`. Both shown whole: the first
/// gets what it wants and the second the rest. Else each gets its minimum and they share what
/// is left by how much of their content would be cut.
pub(crate) fn split(width: u16, first: Want, second: Want) -> u16 {
    let (w, a, b) = (
        u32::from(width),
        u32::from(first.min),
        u32::from(second.min),
    );
    if u32::from(first.want) + u32::from(second.want) <= w {
        return first.want;
    }
    if a + b >= w {
        return u16::try_from(w * a / (a + b).max(1)).unwrap_or(width);
    }
    let cut_a = u32::from(first.want.saturating_sub(first.min));
    let cut_b = u32::from(second.want.saturating_sub(second.min));
    let spare = w - a - b;
    let share = spare * cut_a / (cut_a + cut_b).max(1);
    u16::try_from(a + share).unwrap_or(width)
}

/// What the first of two panes that both have what they want gets of the `spare` width: each
/// what it would still cut (`cut`), by their shares when the spare is short of both, and what
/// is left after both, half each.
pub(crate) fn spare_to_first(spare: u16, cut: [u16; 2]) -> u16 {
    let (spare, a, b) = (u32::from(spare), u32::from(cut[0]), u32::from(cut[1]));
    let first = if spare <= a + b {
        spare * a / (a + b).max(1)
    } else {
        a + (spare - a - b) / 2
    };
    u16::try_from(first).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_get_what_they_want_and_the_free_text_the_rest() {
        let columns = [
            Column::fixed(4),
            Column { min: 6, want: 10 },
            Column { min: 8, want: 20 }.optional(),
            Column { min: 10, want: 30 },
        ];
        // Room for all: each its want, the free text (3) the rest.
        assert_eq!(fit(80, &columns, &[1, 2, 3], 3), [4, 10, 20, 43]);
        // Tight: the optional column is left out rather than cut, the rest shrink to need.
        assert_eq!(fit(40, &columns, &[1, 2, 3], 3), [4, 10, 0, 24]);
        assert_eq!(fit(22, &columns, &[1, 2, 3], 3), [4, 6, 0, 10]);
        // Narrower than the minimums: the last in priority are left out, never more than the
        // width in all.
        let all = [0, 1, 2, 3];
        assert_eq!(fit(16, &columns, &all, 3), [4, 10, 0, 0]);
        assert_eq!(fit(10, &columns, &all, 3), [4, 0, 0, 0]);
        // Columns not in the priority are left out first.
        assert_eq!(fit(16, &columns, &[1, 2, 3], 3), [0, 10, 0, 0]);
        // Not even the first fits: it is cut to the width.
        assert_eq!(fit(3, &columns, &all, 3), [3, 0, 0, 0]);
    }

    #[test]
    fn a_column_is_as_wide_as_its_widest_value_within_bounds() {
        let widths = ["ab", "abcdef"].iter().map(|s| s.len());
        assert_eq!(
            Column::of("AGENT", widths, 4, 24),
            Column { min: 4, want: 6 }
        );
        let long = std::iter::once(40);
        assert_eq!(Column::of("X", long, 4, 24).want, 24);
        assert_eq!(
            Column::of("X", std::iter::empty(), 4, 24),
            Column { min: 1, want: 1 }
        );
    }

    #[test]
    fn the_spare_goes_to_what_is_cut_then_half_each() {
        assert_eq!(spare_to_first(8, [16, 0]), 8);
        assert_eq!(spare_to_first(8, [0, 16]), 0);
        assert_eq!(spare_to_first(12, [10, 30]), 3);
        assert_eq!(spare_to_first(22, [16, 0]), 19);
        assert_eq!(spare_to_first(9, [0, 0]), 4);
    }

    #[test]
    fn two_panes_share_the_width_by_what_they_would_cut() {
        let first = Want { min: 30, want: 60 };
        let second = Want { min: 40, want: 50 };
        // Both whole: the first its want, the second the rest.
        assert_eq!(split(120, first, second), 60);
        assert_eq!(split(110, first, second), 60);
        // Not both: the minimums, and the spare by what each would cut (30 and 10).
        assert_eq!(split(90, first, second), 45);
        // Not even the minimums: those, scaled.
        assert_eq!(split(35, first, second), 15);
        assert_eq!(split(0, first, second), 0);
    }
}
