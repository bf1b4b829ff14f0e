//! Who can hear whom: links from positions through a uniform grid (cells as
//! wide as the radio range, so a node's neighbours are in its 3 × 3 block of
//! cells), the nearest-`k` link cap, and connected components.

/// A point in metres.
pub(crate) type Pos = (f64, f64);

/// The area and the radio: what decides whether two positions are linked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Radio {
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) range: f64,
    pub(crate) cap: Option<usize>,
}

/// Reusable buffers for [`Topology::links`]; no allocation per call once warm.
#[derive(Debug, Default)]
pub(crate) struct Topology {
    cell_start: Vec<u32>,
    cell_items: Vec<u32>,
    cell_of: Vec<u32>,
    candidates: Vec<(f64, u32)>,
    near_start: Vec<u32>,
    near: Vec<u32>,
}

impl Topology {
    /// The links among `pos` (only nodes with `active[i]`), as sorted pairs
    /// `(a, b)` with `a < b`, written into `out`.
    pub(crate) fn links(
        &mut self,
        pos: &[Pos],
        active: &[bool],
        radio: Radio,
        out: &mut Vec<(u32, u32)>,
    ) {
        let Radio { width, height, range, cap } = radio;
        out.clear();
        let n = pos.len();
        let cell = range.max(1e-9);
        let cols = ((width / cell).ceil() as usize).clamp(1, 1 << 20);
        let rows = ((height / cell).ceil() as usize).clamp(1, 1 << 20);
        let cells = cols.saturating_mul(rows);
        let cell_xy = |p: Pos| -> (usize, usize) {
            let cx = ((p.0 / cell).floor().max(0.0) as usize).min(cols - 1);
            let cy = ((p.1 / cell).floor().max(0.0) as usize).min(rows - 1);
            (cx, cy)
        };
        // Counting sort of nodes into cells.
        self.cell_start.clear();
        self.cell_start.resize(cells + 1, 0);
        self.cell_of.clear();
        for (i, &p) in pos.iter().enumerate() {
            let (cx, cy) = cell_xy(p);
            let c = cy * cols + cx;
            self.cell_of.push(c as u32);
            if active[i] {
                self.cell_start[c + 1] += 1;
            }
        }
        for c in 0..cells {
            self.cell_start[c + 1] += self.cell_start[c];
        }
        self.cell_items.clear();
        self.cell_items.resize(self.cell_start[cells] as usize, 0);
        let mut fill: Vec<u32> = self.cell_start[..cells].to_vec();
        for (i, &on) in active.iter().enumerate() {
            if on {
                let c = self.cell_of[i] as usize;
                self.cell_items[fill[c] as usize] = i as u32;
                fill[c] += 1;
            }
        }
        let r2 = range * range;
        self.near_start.clear();
        self.near.clear();
        for i in 0..n {
            self.near_start.push(self.near.len() as u32);
            if !active[i] {
                continue;
            }
            let p = pos[i];
            let (cx, cy) = cell_xy(p);
            self.candidates.clear();
            for y in cy.saturating_sub(1)..=(cy + 1).min(rows - 1) {
                for x in cx.saturating_sub(1)..=(cx + 1).min(cols - 1) {
                    let c = y * cols + x;
                    let items = &self.cell_items
                        [self.cell_start[c] as usize..self.cell_start[c + 1] as usize];
                    for &j in items {
                        if j as usize == i {
                            continue;
                        }
                        let q = pos[j as usize];
                        let d2 = (p.0 - q.0) * (p.0 - q.0) + (p.1 - q.1) * (p.1 - q.1);
                        if d2 <= r2 {
                            self.candidates.push((d2, j));
                        }
                    }
                }
            }
            match cap {
                Some(k) => {
                    // Nearest first, ties by index, so the ranking is total.
                    self.candidates
                        .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    self.candidates.truncate(k);
                    let mut ids: Vec<u32> = self.candidates.iter().map(|c| c.1).collect();
                    ids.sort_unstable();
                    self.near.extend_from_slice(&ids);
                }
                None => {
                    for &(_, j) in &self.candidates {
                        if j as usize > i {
                            out.push((i as u32, j));
                        }
                    }
                }
            }
        }
        self.near_start.push(self.near.len() as u32);
        if cap.is_some() {
            for i in 0..n {
                let mine = &self.near[self.near_start[i] as usize..self.near_start[i + 1] as usize];
                for &j in mine {
                    if j as usize <= i {
                        continue;
                    }
                    let theirs = &self.near[self.near_start[j as usize] as usize
                        ..self.near_start[j as usize + 1] as usize];
                    if theirs.binary_search(&(i as u32)).is_ok() {
                        out.push((i as u32, j));
                    }
                }
            }
        }
        out.sort_unstable();
    }
}

/// Connected components: a label per node (the smallest node index in its
/// component) and the size of each label.
pub(crate) fn components(n: usize, edges: impl Iterator<Item = (u32, u32)>) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let p = parent[x as usize];
            parent[x as usize] = parent[p as usize];
            x = p;
        }
        x
    }
    for (a, b) in edges {
        let ra = find(&mut parent, a);
        let rb = find(&mut parent, b);
        if ra != rb {
            // The smaller index becomes the root, so labels are canonical.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            parent[hi as usize] = lo;
        }
    }
    (0..n as u32).map(|i| find(&mut parent, i)).collect()
}

/// The label and size of the largest component (ties: the smallest label).
pub(crate) fn largest(labels: &[u32]) -> (u32, usize) {
    let mut size = vec![0usize; labels.len()];
    for &l in labels {
        size[l as usize] += 1;
    }
    let mut best = (0u32, 0usize);
    for (l, &s) in size.iter().enumerate() {
        if s > best.1 {
            best = (l as u32, s);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(pos: &[Pos], range: f64, cap: Option<usize>) -> Vec<(u32, u32)> {
        let n = pos.len();
        let d2 = |i: usize, j: usize| (pos[i].0 - pos[j].0).powi(2) + (pos[i].1 - pos[j].1).powi(2);
        let mut near: Vec<Vec<usize>> = Vec::new();
        for i in 0..n {
            let mut c: Vec<usize> =
                (0..n).filter(|&j| j != i && d2(i, j) <= range * range).collect();
            c.sort_by(|&a, &b| d2(i, a).total_cmp(&d2(i, b)).then(a.cmp(&b)));
            if let Some(k) = cap {
                c.truncate(k);
            }
            near.push(c);
        }
        let mut out = Vec::new();
        for i in 0..n {
            for &j in &near[i] {
                if j > i && near[j].contains(&i) {
                    out.push((i as u32, j as u32));
                }
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn grid_matches_brute_force() {
        let mut rng = crate::rng::stream(7, crate::rng::Purpose::Placement);
        let pos: Vec<Pos> = (0..400)
            .map(|_| (crate::rng::unit(&mut rng) * 200.0, crate::rng::unit(&mut rng) * 150.0))
            .collect();
        let active = vec![true; pos.len()];
        let mut t = Topology::default();
        let mut out = Vec::new();
        for cap in [None, Some(1), Some(3), Some(8)] {
            let radio = Radio { width: 200.0, height: 150.0, range: 25.0, cap };
            t.links(&pos, &active, radio, &mut out);
            assert_eq!(out, brute(&pos, 25.0, cap), "cap {cap:?}");
        }
    }

    #[test]
    fn components_label_by_smallest() {
        let labels = components(5, [(3, 4), (1, 3)].into_iter());
        assert_eq!(labels, vec![0, 1, 2, 1, 1]);
        assert_eq!(largest(&labels), (1, 3));
    }
}
