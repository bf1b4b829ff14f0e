//! Drawing the chat: pane tabs, the shown pane, the room panel and the
//! peer list, the status bar and the input line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::{App, Entry, Mark};
use super::text::{char_width, clean, nick_colour, str_width, truncate, wrap};

/// Width of the peer list.
const SIDE_WIDTH: u16 = 32;
/// Narrower screens leave the peer list out (`/who` still lists peers).
const MIN_WIDTH_FOR_SIDE: u16 = 72;
/// Indent of a message's continuation rows: past the clock.
const WRAP_INDENT: usize = 9;

impl App {
    /// Draws the whole screen into `frame`.
    pub fn render(&mut self, frame: &mut Frame<'_>) {
        let area = frame.area();
        let [tabs, body, status, input] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let side = if area.width >= MIN_WIDTH_FOR_SIDE { SIDE_WIDTH } else { 0 };
        let [main, side] =
            Layout::horizontal([Constraint::Min(1), Constraint::Length(side)]).areas(body);
        self.draw_tabs(frame, tabs);
        self.draw_pane(frame, main);
        if side.width > 0 {
            match self.room.as_ref().filter(|r| !r.gone) {
                Some(r) => {
                    let want = u16::try_from(r.members.len()).unwrap_or(u16::MAX).saturating_add(5);
                    let height = want.min(side.height.saturating_sub(side.height / 3));
                    let [room, peers] =
                        Layout::vertical([Constraint::Length(height), Constraint::Min(0)])
                            .areas(side);
                    self.draw_room(frame, room);
                    self.draw_peers(frame, peers);
                }
                None => self.draw_peers(frame, side),
            }
        }
        self.draw_status(frame, status);
        self.draw_input(frame, input);
    }

    fn draw_tabs(&self, frame: &mut Frame<'_>, area: Rect) {
        let mut spans = Vec::new();
        for i in 0..self.panes.len() {
            let style = if i == self.focus {
                Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
            } else {
                Style::new()
            };
            spans.push(Span::styled(format!(" {}:{} ", i + 1, self.pane_title(i)), style));
            let unread = self.unread(i);
            if unread > 0 {
                spans.push(Span::styled(
                    format!("({unread}) "),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ));
            }
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_pane(&mut self, frame: &mut Frame<'_>, area: Rect) {
        let width = usize::from(area.width);
        let height = usize::from(area.height);
        self.page = height.max(1);
        let Some(pane) = self.panes.get(self.focus) else { return };
        let mut rows: Vec<Line<'static>> = pane
            .entries
            .iter()
            .flat_map(|e| wrap(&self.entry_spans(e), width, WRAP_INDENT))
            .collect();
        if rows.is_empty() {
            let hint = match &pane.peer {
                None => "No messages yet. What you type here goes to everyone in reach; /help lists the commands.".to_owned(),
                Some(_) => format!(
                    "Private conversation with {}, end-to-end encrypted. /help lists the commands.",
                    self.pane_title(self.focus)
                ),
            };
            rows = wrap(&[Span::styled(hint, Style::new().fg(Color::DarkGray))], width, 0);
        }
        let total = rows.len();
        let scroll = pane.scroll.min(total.saturating_sub(height));
        if let Some(p) = self.panes.get_mut(self.focus) {
            p.scroll = scroll;
        }
        let end = total - scroll;
        let start = end.saturating_sub(height);
        let shown: Vec<Line<'static>> = rows.into_iter().skip(start).take(end - start).collect();
        frame.render_widget(Paragraph::new(shown), area);
    }

    fn entry_spans(&self, e: &Entry) -> Vec<Span<'static>> {
        match e {
            Entry::Message { time, from, nick, text, mark, .. } => {
                let mut spans = vec![
                    Span::styled(
                        format!("{} ", crate::cmds::clock(*time)),
                        Style::new().fg(Color::DarkGray),
                    ),
                    Span::styled(
                        format!("<{}>", self.name(nick, from)),
                        Style::new().fg(nick_colour(from)).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(format!(" {text}")),
                ];
                if let Some(m) = mark {
                    let style = match m {
                        Mark::Failed => Style::new().fg(Color::Red),
                        Mark::Pending => Style::new().fg(Color::DarkGray),
                        Mark::Delivered => Style::new().fg(Color::Green),
                        Mark::Read => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                    };
                    spans.push(Span::styled(format!(" {}", m.symbol()), style));
                }
                spans
            }
            Entry::Note(_) | Entry::PeerNote { .. } => {
                vec![Span::styled(self.entry_text(e), Style::new().fg(Color::DarkGray))]
            }
            Entry::Error(t) => vec![Span::styled(format!("! {t}"), Style::new().fg(Color::Red))],
        }
    }

    fn draw_peers(&self, frame: &mut Frame<'_>, area: Rect) {
        let block =
            Block::new().borders(Borders::LEFT).title(format!(" peers ({}) ", self.peers.len()));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let iw = usize::from(inner.width);
        let name_w = iw.saturating_sub(14).max(4);
        let dim = Style::new().fg(Color::DarkGray);
        let mut lines: Vec<Line<'static>> = Vec::new();
        for p in &self.peers {
            let flag = |on: bool, sym: &'static str, colour: Color| {
                if on { Span::styled(sym, Style::new().fg(colour)) } else { Span::raw(" ") }
            };
            let name = self.name_within(&p.nick, &p.peer_id, name_w);
            let pad = " ".repeat(name_w.saturating_sub(str_width(&name)));
            let name_style = if p.blocked {
                dim.add_modifier(Modifier::CROSSED_OUT)
            } else {
                Style::new().fg(nick_colour(&p.peer_id))
            };
            let hops = if p.hops == 0 { "?".to_owned() } else { p.hops.to_string() };
            let place = format!("{hops}h {}", if p.direct { "direct" } else { "mesh" });
            lines.push(Line::from(vec![
                flag(p.favourite, "★", Color::Yellow),
                flag(p.verified, "✔", Color::Green),
                flag(p.blocked, "⊘", Color::Red),
                Span::raw(" "),
                Span::styled(name, name_style),
                Span::raw(pad),
                Span::styled(format!(" {place}"), dim),
            ]));
        }
        if lines.is_empty() {
            lines.push(Line::styled("nobody in reach yet", dim));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }

    /// The room: title and REC, the stage with who is speaking, the
    /// audience count and the raised hands in order.
    fn draw_room(&self, frame: &mut Frame<'_>, area: Rect) {
        let Some(r) = &self.room else { return };
        let block = Block::new().borders(Borders::LEFT | Borders::BOTTOM).title(" room ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let iw = usize::from(inner.width);
        let dim = Style::new().fg(Color::DarkGray);
        let mut lines: Vec<Line<'static>> = Vec::new();
        let mut title = vec![Span::styled(
            truncate(&clean(&r.title), iw.saturating_sub(6)),
            Style::new().add_modifier(Modifier::BOLD),
        )];
        if r.recording {
            title.push(Span::styled(" ● REC", Style::new().fg(Color::Red)));
        }
        lines.push(Line::from(title));
        if !r.member {
            lines.push(Line::styled("joining…", dim));
        }
        let label = |m: &crate::control::RoomMemberInfo| {
            let name = m.name.as_deref().filter(|n| !n.is_empty()).map(clean);
            let key = m.key.get(..6).unwrap_or(&m.key).to_owned();
            let base = name.unwrap_or(key);
            if m.me { format!("{base} (you)") } else { base }
        };
        for m in r.members.iter().filter(|m| m.role != "listener") {
            let (sym, style) = if m.speaking {
                ("♪ ", Style::new().fg(Color::Green))
            } else if m.muted {
                ("· ", dim)
            } else {
                ("  ", Style::new())
            };
            let role = match m.role.as_str() {
                "host" => " host",
                "cohost" => " co-host",
                _ => "",
            };
            let muted = if m.muted { " muted" } else { "" };
            let text = truncate(&format!("{}{role}{muted}", label(m)), iw.saturating_sub(2));
            lines.push(Line::from(vec![Span::styled(sym, style), Span::styled(text, style)]));
        }
        let audience = r.members.iter().filter(|m| m.role == "listener").count();
        lines.push(Line::styled(format!("audience: {audience}"), dim));
        if !r.hands.is_empty() {
            let hands: Vec<String> = r
                .hands
                .iter()
                .map(|h| {
                    r.members
                        .iter()
                        .find(|m| &m.key == h)
                        .map(label)
                        .unwrap_or_else(|| h.get(..6).unwrap_or(h).to_owned())
                })
                .collect();
            lines.push(Line::from(vec![
                Span::styled("✋ ", Style::new().fg(Color::Yellow)),
                Span::raw(truncate(&hands.join(", "), iw.saturating_sub(2))),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_status(&self, frame: &mut Frame<'_>, area: Rect) {
        let me = if self.my_id.is_empty() {
            "connecting…".to_owned()
        } else {
            self.name(&self.my_nick, &self.my_id)
        };
        let mut s = format!(" {me}");
        // The recording indicator shows on every screen, narrow ones too.
        if self.room.as_ref().is_some_and(|r| r.recording && !r.gone) {
            s.push_str(" · ● REC");
        }
        if !self.mode.is_empty() {
            s.push_str(&format!(" · {}", self.mode));
        }
        if let Some(id) = self.panes.get(self.focus).and_then(|p| p.peer.as_deref()) {
            // Whom this pane writes to, and whether that is known to be them.
            let state = match self.peers.iter().find(|p| p.peer_id == id) {
                Some(p) if p.verified => "✔ verified",
                Some(_) => "not verified",
                None => "out of reach",
            };
            s.push_str(&format!(" · {} {state}", self.pane_title(self.focus)));
        }
        let n = self.peers.len();
        s.push_str(&format!(" · {n} peer{}", if n == 1 { "" } else { "s" }));
        if self.panes.get(self.focus).is_some_and(|p| p.scroll > 0) {
            s.push_str(" · scrolled up (PgDn)");
        }
        s.push_str(" · Tab: next pane · /help");
        let style = Style::new().add_modifier(Modifier::REVERSED);
        frame.render_widget(Paragraph::new(s).style(style), area);
    }

    fn draw_input(&self, frame: &mut Frame<'_>, area: Rect) {
        let width = usize::from(area.width);
        let prompt = truncate(&format!("{}> ", self.pane_title(self.focus)), width / 2);
        let room = width.saturating_sub(str_width(&prompt)).max(1);
        let chars = &self.input.chars;
        let cursor = self.input.cursor.min(chars.len());
        // Scroll the line sideways so the cursor stays in view.
        let mut start = 0;
        while start < cursor
            && chars[start..cursor].iter().map(|c| char_width(*c)).sum::<usize>() >= room
        {
            start += 1;
        }
        let mut shown = String::new();
        let mut w = 0;
        for c in chars.iter().skip(start) {
            w += char_width(*c);
            if w > room {
                break;
            }
            shown.push(*c);
        }
        let cursor_x =
            str_width(&prompt) + chars[start..cursor].iter().map(|c| char_width(*c)).sum::<usize>();
        let line = Line::from(vec![
            Span::styled(prompt, Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)),
            Span::raw(super::text::clean(&shown)),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        let x = area.x.saturating_add(u16::try_from(cursor_x).unwrap_or(u16::MAX));
        frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
    }
}
