//! Text helpers of the chat screen: cleaning what peers send before it
//! reaches the terminal, nick colours, and word wrapping.

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

/// `s` made safe to draw: tabs and line breaks become spaces; other control
/// characters and bidirectional overrides (which could reorder what is
/// shown around them) are dropped.
pub fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            c if c.is_control() || is_bidi_control(c) => None,
            c => Some(c),
        })
        .collect()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The form of a nickname used to decide whether two peers could be
/// confused: case folded, without invisible characters.
pub fn nick_key(nick: &str) -> String {
    clean(nick)
        .chars()
        .filter(|c| !matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'))
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .trim()
        .to_owned()
}

const PALETTE: [Color; 12] = [
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// The colour of a peer's name: a hash of its peer ID, so it stays the same
/// across nickname changes and restarts (and differs for equal nicknames).
pub fn nick_colour(peer_id: &str) -> Color {
    // FNV-1a: stable across builds, unlike std's randomly keyed hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in peer_id.to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let i = usize::try_from(h % PALETTE.len() as u64).unwrap_or(0);
    PALETTE.get(i).copied().unwrap_or(Color::Reset)
}

/// Columns `c` takes on a terminal.
pub fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut buf)).width()
}

/// Columns `s` takes on a terminal.
pub fn str_width(s: &str) -> usize {
    Span::raw(s).width()
}

/// `s` cut to at most `width` columns, with `…` where it was cut.
pub fn truncate(s: &str, width: usize) -> String {
    if str_width(s) <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Wraps styled text into rows of at most `width` columns, breaking at
/// spaces where it can; rows after the first start with `indent` spaces
/// (dropped on screens too narrow for it).
pub fn wrap(spans: &[Span<'_>], width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let indent = if indent * 2 < width { indent } else { 0 };
    let mut rows: Vec<Vec<(char, Style)>> = Vec::new();
    let mut row: Vec<(char, Style)> = Vec::new();
    let mut row_w = 0;
    for span in spans {
        for c in span.content.chars() {
            let w = char_width(c);
            if w > 0 && row_w + w > width && !row.is_empty() {
                let start = if rows.is_empty() { 0 } else { indent };
                let width_after = |i: usize| -> usize {
                    row.iter().skip(i + 1).map(|(ch, _)| char_width(*ch)).sum::<usize>()
                };
                // Break at the last space, unless what follows it would not fit the next row either.
                let space = row
                    .iter()
                    .rposition(|(ch, _)| *ch == ' ')
                    .filter(|&i| i > start && indent + width_after(i) + w <= width);
                let carry = match space {
                    Some(i) => {
                        let tail = row.split_off(i + 1);
                        row.pop();
                        tail
                    }
                    None => Vec::new(),
                };
                rows.push(std::mem::take(&mut row));
                row = vec![(' ', Style::default()); indent];
                row_w = indent + carry.iter().map(|(ch, _)| char_width(*ch)).sum::<usize>();
                row.extend(carry);
            }
            row.push((c, span.style));
            row_w += w;
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows.into_iter().map(to_line).collect()
}

fn to_line(row: Vec<(char, Style)>) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut cur = String::new();
    let mut style = None;
    for (c, s) in row {
        if style.is_some_and(|st| st != s) {
            spans.push(Span::styled(std::mem::take(&mut cur), style.unwrap_or_default()));
        }
        style = Some(s);
        cur.push(c);
    }
    if !cur.is_empty() {
        spans.push(Span::styled(cur, style.unwrap_or_default()));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect()
    }

    #[test]
    fn control_characters_and_overrides_are_dropped() {
        assert_eq!(clean("a\u{1b}[31mb\u{7}\tc\nd\u{202e}e"), "a[31mb c de");
        assert_eq!(nick_key(" Bo\u{200b}B "), "bob");
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_indents_continuations() {
        let rows = wrap(&[Span::raw("aaa bbb ccc ddd")], 8, 2);
        assert_eq!(plain(&rows), ["aaa bbb", "  ccc", "  ddd"]);
        let rows = wrap(&[Span::raw("abcdefghij")], 4, 0);
        assert_eq!(plain(&rows), ["abcd", "efgh", "ij"]);
        assert_eq!(plain(&wrap(&[], 10, 0)), [""]);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn colours_are_stable_per_peer() {
        assert_eq!(nick_colour("0102030405060708"), nick_colour("0102030405060708"));
        assert_eq!(nick_colour("ABCD"), nick_colour("abcd"));
    }
}
