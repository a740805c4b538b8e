//! What the CLI prints, made safe for a terminal. Server names, tool names and error texts come
//! from servers and files Switchboard does not control: an ESC sequence in them would retitle
//! the terminal or recolour it, a CR or LF would forge table rows, a bidi override would
//! reorder what is read. Every printed line goes through [`safe`].

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1, line breaks) and every bidi control
/// written out as its `\u{…}` escape, so it shows as text and cannot act.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if acts(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

fn acts(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_written_out_and_plain_text_is_untouched() {
        assert!(matches!(safe("wiki.search  healthy"), Cow::Borrowed(_)));
        assert_eq!(
            safe("a\u{1b}]0;owned\u{7}b\r\nrow"),
            "a\\u{1b}]0;owned\\u{7}b\\u{d}\\u{a}row"
        );
        assert_eq!(safe("x\u{202e}y\u{9b}z"), "x\\u{202e}y\\u{9b}z");
        assert_eq!(safe("tab\there"), "tab\\u{9}here");
        assert_eq!(safe("naïve 日本"), "naïve 日本");
    }
}
