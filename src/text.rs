//! Small text helpers shared by the engine and the OpenCode adapter.

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

#[cfg(test)]
mod tests {
    #[test]
    fn clips_on_a_character_boundary_and_says_so() {
        assert_eq!(super::clip("short", 10), "short");
        assert_eq!(super::clip("héllo", 2), "h… (5 bytes more)");
    }
}
