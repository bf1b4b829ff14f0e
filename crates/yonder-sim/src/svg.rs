//! A picture of the network at the first broadcast, as hand-written SVG.

use core::fmt::Write as _;

/// The network when the first broadcast was sent, and who received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Area width in metres.
    pub width: f64,
    /// Area height in metres.
    pub height: f64,
    /// Node positions in metres.
    pub positions: Vec<(f64, f64)>,
    /// Links up at that moment, `(a, b)` with `a < b`.
    pub links: Vec<(u32, u32)>,
    /// The node that sent the first broadcast.
    pub source: u32,
    /// Whether each node was in the source's component.
    pub in_component: Vec<bool>,
    /// Whether each node received the first broadcast (by the end of the run).
    pub received: Vec<bool>,
}

const RECEIVED: &str = "#2a9d4a";
const MISSED: &str = "#e07a1f";
const OUTSIDE: &str = "#9a9a9a";
const SOURCE: &str = "#d62828";

impl Snapshot {
    /// The SVG document: links in grey, nodes coloured green (received the
    /// first broadcast), orange (in the source's component, missed it), grey
    /// (outside the component), the source red and larger.
    pub fn to_svg(&self) -> String {
        let px = 900.0;
        let scale = px / self.width.max(self.height).max(1e-9);
        let (w, h) = (self.width * scale, self.height * scale);
        let margin = 10.0;
        let legend = 28.0;
        let n = self.positions.len().max(1) as f64;
        let r = (4.0 * (300.0 / n).sqrt()).clamp(0.8, 4.0);
        let stroke = (r / 4.0).clamp(0.15, 0.8);
        let mut s = String::with_capacity(self.positions.len() * 90 + self.links.len() * 80);
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" viewBox="0 0 {:.0} {:.0}">"#,
            w + 2.0 * margin,
            h + 2.0 * margin + legend,
            w + 2.0 * margin,
            h + 2.0 * margin + legend
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r##"<rect x="{margin}" y="{margin}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#cccccc"/>"##
        );
        let at = |i: u32| -> (f64, f64) {
            let p = self.positions.get(i as usize).copied().unwrap_or((0.0, 0.0));
            (margin + p.0 * scale, margin + p.1 * scale)
        };
        let _ = writeln!(s, r##"<g stroke="#b8b8b8" stroke-width="{stroke:.2}">"##);
        for &(a, b) in &self.links {
            let (x1, y1) = at(a);
            let (x2, y2) = at(b);
            let _ = writeln!(s, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}"/>"#);
        }
        let _ = writeln!(s, "</g>");
        let _ = writeln!(s, "<g>");
        for i in 0..self.positions.len() {
            if i as u32 == self.source {
                continue;
            }
            let colour = if self.received.get(i).copied().unwrap_or(false) {
                RECEIVED
            } else if self.in_component.get(i).copied().unwrap_or(false) {
                MISSED
            } else {
                OUTSIDE
            };
            let (x, y) = at(i as u32);
            let _ = writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.2}" fill="{colour}"/>"#);
        }
        let (x, y) = at(self.source);
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{:.2}" fill="{SOURCE}" stroke="black" stroke-width="0.5"/>"#,
            (r * 2.0).max(3.0)
        );
        let _ = writeln!(s, "</g>");
        let got = (0..self.received.len())
            .filter(|&i| i as u32 != self.source && self.received[i])
            .count();
        let comp = self.in_component.iter().filter(|x| **x).count();
        let ly = h + 2.0 * margin + 18.0;
        let _ = writeln!(
            s,
            r#"<g font-family="sans-serif" font-size="12"><circle cx="{m}" cy="{cy}" r="5" fill="{SOURCE}"/><text x="{t1}" y="{ly}">source</text><circle cx="{c2}" cy="{cy}" r="5" fill="{RECEIVED}"/><text x="{t2}" y="{ly}">received ({got})</text><circle cx="{c3}" cy="{cy}" r="5" fill="{MISSED}"/><text x="{t3}" y="{ly}">missed, in component of {comp}</text><circle cx="{c4}" cy="{cy}" r="5" fill="{OUTSIDE}"/><text x="{t4}" y="{ly}">outside component</text></g>"#,
            m = margin + 5.0,
            cy = ly - 4.0,
            t1 = margin + 14.0,
            c2 = margin + 85.0,
            t2 = margin + 94.0,
            c3 = margin + 215.0,
            t3 = margin + 224.0,
            c4 = margin + 445.0,
            t4 = margin + 454.0,
        );
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_node_and_link() {
        let snap = Snapshot {
            width: 10.0,
            height: 5.0,
            positions: vec![(1.0, 1.0), (2.0, 2.0), (9.0, 4.0)],
            links: vec![(0, 1)],
            source: 0,
            in_component: vec![true, true, false],
            received: vec![true, true, false],
        };
        let svg = snap.to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<line ").count(), 1);
        assert_eq!(svg.matches("<circle ").count(), 3 + 4);
    }
}
