//! The cluster panel: one row per node with its state, Raft role, term, applied index, CPU,
//! RSS and the link faults touching it, as of the latest poll.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::fmt;
use crate::drill::poller::NodeView;
use crate::live::state::ViewState;

const WIDTHS: [Constraint; 8] = [
    Constraint::Length(3),
    Constraint::Length(8),
    Constraint::Length(9),
    Constraint::Length(5),
    Constraint::Length(8),
    Constraint::Length(6),
    Constraint::Length(7),
    Constraint::Fill(1),
];

/// Lower-case role, `-` when the node did not answer.
fn role(n: &NodeView) -> String {
    n.status
        .as_ref()
        .map_or("-".into(), |s| format!("{:?}", s.role).to_lowercase())
}

fn row(n: &NodeView, leader: Option<u64>) -> Row<'static> {
    let dash = || "-".to_string();
    let status = n.status.as_ref();
    let role_style = if leader == Some(n.id) {
        Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    Row::new([
        Cell::from(n.id.to_string()),
        Cell::from(n.state.name()).style(Style::default().fg(fmt::state_color(n.state))),
        Cell::from(role(n)).style(role_style),
        Cell::from(status.map_or_else(dash, |s| s.term.to_string())),
        Cell::from(status.map_or_else(dash, |s| s.applied.to_string())),
        Cell::from(n.cpu_pct.map_or_else(dash, |c| format!("{c:.0}%"))),
        Cell::from(n.rss_bytes.map_or_else(dash, fmt::mib)),
        Cell::from(n.link_faults.join(", ")).style(Style::default().fg(Color::Magenta)),
    ])
}

/// Renders the panel into `area` (a title line, a header line, one line per node).
pub fn render(f: &mut Frame, area: Rect, s: &ViewState) {
    let header = Row::new([
        "id", "state", "role", "term", "applied", "cpu", "rss", "links",
    ])
    .style(Style::default().fg(Color::DarkGray));
    let leader = s.cluster.leader;
    let rows = s.cluster.nodes.iter().map(|n| row(n, leader));
    let elections = s
        .elections()
        .map_or(String::new(), |n| format!("· elections {n} "));
    let title = match leader {
        Some(l) => format!(" cluster · leader {l} {elections}"),
        None if s.cluster.nodes.is_empty() => " cluster · waiting for the first poll ".into(),
        None => format!(" cluster · no leader {elections}"),
    };
    let block = Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(title, fmt::title()));
    f.render_widget(Table::new(rows, WIDTHS).header(header).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::poller::NodeState;
    use crate::live::fixture;
    use crate::live::panels::testing::{draw, find, row_text};

    #[test]
    fn one_row_per_node() {
        let mut s = fixture::state();
        let mut c = s.cluster.clone();
        c.t += 1.0;
        c.nodes[0].state = NodeState::Paused;
        c.nodes[0].status = None;
        s.observe_cluster(&c);
        let buf = draw(80, 5, |f| render(f, f.area(), &s));
        let rows: Vec<String> = (0..5).map(|y| row_text(&buf, y)).collect();
        assert!(rows[0].contains("cluster · leader 2"), "{rows:?}");
        let cells =
            |y: usize| -> Vec<String> { rows[y].split_whitespace().map(str::to_string).collect() };
        assert_eq!(cells(2), ["1", "paused", "-", "-", "-", "10%", "20.0M"]);
        assert_eq!(cells(3), ["2", "up", "leader", "2", "4102", "20%", "40.0M"]);
        assert_eq!(
            cells(4),
            [
                "3", "up", "follower", "2", "4103", "30%", "60.0M", "→1", "delay"
            ]
        );
        let (x, y) = find(&buf, "paused").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Yellow);
    }

    #[test]
    fn killed_nodes_say_so() {
        let mut s = fixture::state();
        let mut c = s.cluster.clone();
        c.t += 1.0;
        c.nodes[1].state = NodeState::Down;
        c.leader = None;
        s.observe_cluster(&c);
        let buf = draw(80, 5, |f| render(f, f.area(), &s));
        assert!(row_text(&buf, 0).contains("no leader"));
        assert!(row_text(&buf, 3).contains("killed"));
        let (x, y) = find(&buf, "killed").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
    }
}
