//! The lineage graph as SVG, laid out from the edges alone: a column per depth (a table sits one column
//! to the right of its deepest source), nodes within a column ordered by their sources' mean position (the
//! barycenter heuristic, which keeps edges from crossing much), and edges as curves. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use playlog_vault::lineage::Edge;

use crate::page::escape;

/// A monospace character at the graph's 12px (0.6 em), for node widths that fit the longest name.
const CHAR_W: f64 = 7.3;
const NODE_H: f64 = 24.0;
const ROW_GAP: f64 = 8.0;
const COL_GAP: f64 = 110.0;
const MARGIN: f64 = 10.0;

/// A table in the graph: its `schema.table` name, and a class for its look (failing tests, say).
pub struct Node<'a> {
    pub name: &'a str,
    pub class: &'static str,
}

/// The graph of `nodes` and `edges`; each node links to `#<name>` on the page.
pub fn render(nodes: &[Node<'_>], edges: &[Edge]) -> String {
    let depth = depths(nodes, edges);
    let columns = depth.values().copied().max().map_or(0, |d| d + 1);
    let mut by_column: Vec<Vec<&str>> = vec![Vec::new(); columns];
    for node in nodes {
        by_column[depth[node.name]].push(node.name);
    }
    // Order each column by the mean row of its sources in the columns to its left.
    let mut row: BTreeMap<&str, f64> = BTreeMap::new();
    for column in &mut by_column {
        let key = |name: &str| {
            let rows: Vec<f64> = edges
                .iter()
                .filter(|e| e.to == name)
                .filter_map(|e| row.get(e.from.as_str()).copied())
                .collect();
            if rows.is_empty() {
                f64::MAX
            } else {
                rows.iter().sum::<f64>() / rows.len() as f64
            }
        };
        let mut keyed: Vec<(f64, &str)> = column.iter().map(|n| (key(n), *n)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        *column = keyed.into_iter().map(|(_, n)| n).collect();
        for (i, name) in column.iter().enumerate() {
            row.insert(name, i as f64);
        }
    }
    let node_w = 16.0
        + CHAR_W
            * nodes
                .iter()
                .map(|n| n.name.chars().count())
                .max()
                .unwrap_or(0) as f64;
    let tallest = by_column.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let height = MARGIN * 2.0 + tallest * (NODE_H + ROW_GAP) - ROW_GAP;
    let width = MARGIN * 2.0 + columns as f64 * (node_w + COL_GAP) - COL_GAP;
    // Each column is centred vertically.
    let mut at: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (c, column) in by_column.iter().enumerate() {
        let used = column.len() as f64 * (NODE_H + ROW_GAP) - ROW_GAP;
        let top = (height - used) / 2.0;
        for (i, name) in column.iter().enumerate() {
            let x = MARGIN + c as f64 * (node_w + COL_GAP);
            let y = top + i as f64 * (NODE_H + ROW_GAP);
            at.insert(name, (x, y));
        }
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="lineage" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="Lineage: raw tables feed the vault, the vault feeds the marts">"#
    );
    for e in edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(e.from.as_str()), at.get(e.to.as_str()))
        else {
            continue;
        };
        let (x1, y1) = (x1 + node_w, y1 + NODE_H / 2.0);
        let y2 = y2 + NODE_H / 2.0;
        let bend = (x2 - x1) / 2.0;
        let _ = write!(
            svg,
            r#"<path class="edge" d="M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}"><title>{} → {}</title></path>"#,
            x1 + bend,
            x2 - bend,
            escape(&e.from),
            escape(&e.to),
        );
    }
    for node in nodes {
        let (x, y) = at[node.name];
        let schema = node.name.split('.').next().unwrap_or("");
        let _ = write!(
            svg,
            r##"<a href="#{id}"><g class="node {schema} {class}"><rect x="{x:.1}" y="{y:.1}" width="{node_w:.1}" height="{NODE_H}" rx="5"/><text x="{:.1}" y="{:.1}">{name}</text></g></a>"##,
            x + 8.0,
            y + NODE_H / 2.0 + 4.5,
            id = escape(node.name),
            class = node.class,
            name = escape(node.name),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Each node's column: 0 for a table made from nothing in the graph, else one more than its deepest
/// source. The planner's edges have no cycles; a cycle would stop at the number of nodes.
fn depths<'a>(nodes: &[Node<'a>], edges: &[Edge]) -> BTreeMap<&'a str, usize> {
    let mut depth: BTreeMap<&str, usize> = nodes.iter().map(|n| (n.name, 0)).collect();
    for _ in 0..nodes.len() {
        let mut changed = false;
        for e in edges {
            let (Some(&from), Some(&to)) = (depth.get(e.from.as_str()), depth.get(e.to.as_str()))
            else {
                continue;
            };
            if to < from + 1 && from + 1 < nodes.len() {
                depth.insert(
                    nodes.iter().find(|n| n.name == e.to).map_or("", |n| n.name),
                    from + 1,
                );
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str) -> Edge {
        Edge {
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn a_table_sits_right_of_its_deepest_source() {
        let nodes: Vec<Node> = ["raw.a", "vault.b", "marts.c", "marts.d"]
            .iter()
            .map(|n| Node { name: n, class: "" })
            .collect();
        let edges = [
            edge("raw.a", "vault.b"),
            edge("vault.b", "marts.c"),
            edge("marts.c", "marts.d"),
            edge("vault.b", "marts.d"),
        ];
        let d = depths(&nodes, &edges);
        assert_eq!(
            [d["raw.a"], d["vault.b"], d["marts.c"], d["marts.d"]],
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn every_node_and_edge_is_drawn_and_names_are_escaped() {
        let nodes: Vec<Node> = ["raw.a<b", "vault.b"]
            .iter()
            .map(|n| Node {
                name: n,
                class: "fail",
            })
            .collect();
        let svg = render(&nodes, &[edge("raw.a<b", "vault.b")]);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches(r#"class="edge""#).count(), 1);
        assert!(svg.contains("raw.a&lt;b") && !svg.contains("raw.a<b"));
        assert!(svg.contains(r#"class="node vault fail""#));
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let nodes: Vec<Node> = ["vault.a", "vault.b"]
            .iter()
            .map(|n| Node { name: n, class: "" })
            .collect();
        let svg = render(
            &nodes,
            &[edge("vault.a", "vault.b"), edge("vault.b", "vault.a")],
        );
        assert!(svg.ends_with("</svg>"));
    }
}
