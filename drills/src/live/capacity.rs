//! The live view of `raftdrill capacity`: the step running now (its rate and the figures of its
//! last second) and a pass/fail list of the earlier steps.
//!
//! It reuses the drill view's terminal guard and keys; the search publishes its
//! [`CapacityProgress`] on a watch channel and never waits for the view.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::input::{self, Action};
use super::{FRAME, term};
use crate::capacity::CapacityProgress;

/// Draws one frame.
pub fn draw(f: &mut Frame<'_>, title: &str, elapsed_s: f64, p: &CapacityProgress) {
    let [head, now, list] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(head_line(title, elapsed_s, p)), head);
    f.render_widget(
        Paragraph::new(this_step(p))
            .block(Block::default().borders(Borders::ALL).title(" this step ")),
        now,
    );
    f.render_widget(earlier_steps(p), list);
}

/// The title, the time so far, which step runs, and the key to stop.
fn head_line<'a>(title: &str, elapsed_s: f64, p: &CapacityProgress) -> Line<'a> {
    let step_no = p.steps.len() + usize::from(p.current_rate.is_some() && !p.done);
    let status = if p.done {
        "done".to_string()
    } else {
        format!("step {step_no}")
    };
    Line::from(vec![
        Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("│ {elapsed_s:.0}s │ {status} │ q stop")),
    ])
}

/// The step running now (or the closed-loop check): its rate and its last second's figures.
fn this_step<'a>(p: &CapacityProgress) -> Vec<Line<'a>> {
    let s = &p.current;
    let headline = match (p.current_rate, p.verifying) {
        _ if p.done => None,
        (Some(rate), _) => Some(format!(
            " target {rate:.0} ops/s   achieved {:.0} ops/s",
            s.tps
        )),
        (None, Some(users)) => Some(format!(
            " closed-loop check: {users} users   {:.0} ops/s",
            s.tps
        )),
        (None, None) => None,
    };
    match headline {
        Some(headline) => vec![
            Line::from(headline),
            Line::from(format!(
                " p50 {:.1} ms   p99 {:.1} ms   err {:.2} %   late {}{}",
                s.latency.p50,
                s.latency.p99,
                s.counts.error_rate().unwrap_or(0.0),
                s.counts.late,
                if s.warmup { "   (warmup)" } else { "" }
            )),
        ],
        _ => vec![Line::from(" no step running")],
    }
}

/// The finished steps, one row each, passed or failed and why.
fn earlier_steps<'a>(p: &CapacityProgress) -> Table<'a> {
    let header = Row::new([
        "#",
        "target",
        "achieved",
        "p50 ms",
        "p99 ms",
        "success %",
        "late %",
        "",
        "why",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = p.steps.iter().enumerate().map(|(i, st)| {
        let pass = st.verdict == "pass";
        let mark = Span::styled(
            if pass { "✓" } else { "✗" },
            Style::default().fg(if pass { Color::Green } else { Color::Red }),
        );
        Row::new(vec![
            Line::from(format!("{}", i + 1)),
            Line::from(format!("{:.0}", st.target_rate)),
            Line::from(format!("{:.0}", st.achieved_rate)),
            Line::from(format!("{:.1}", st.p50_ms)),
            Line::from(format!("{:.1}", st.p99_ms)),
            Line::from(format!("{:.2}", st.success_rate)),
            Line::from(format!("{:.1}", st.late_pct)),
            Line::from(mark),
            Line::from(
                st.reasons
                    .iter()
                    .map(|r| r.label())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ])
    });
    let widths = [4, 9, 9, 9, 9, 10, 7, 2]
        .map(Constraint::Length)
        .into_iter()
        .chain([Constraint::Min(10)]);
    Table::new(rows.collect::<Vec<_>>(), widths)
        .header(header)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" earlier steps "),
        )
}

/// Shows the search until `progress` says done (or its sender goes); q or Ctrl-C cancels `stop`
/// and a second press leaves at once. The terminal is restored on every exit path.
pub async fn run(
    title: String,
    mut progress: watch::Receiver<CapacityProgress>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut term = term::Term::enter()?;
    let start = Instant::now();
    let mut frames = tokio::time::interval(FRAME);
    loop {
        frames.tick().await;
        let was_stopping = stop.is_cancelled();
        for action in input::drain()? {
            if action == Action::Stop {
                if was_stopping {
                    return Ok(());
                }
                stop.cancel();
            }
        }
        let gone = progress.has_changed().is_err();
        let p = progress.borrow_and_update().clone();
        term.terminal()
            .draw(|f| draw(f, &title, start.elapsed().as_secs_f64(), &p))?;
        if p.done || gone {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use loadgen::Snapshot;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::capacity::StepResult;
    use crate::capacity::failure::Failure;

    fn step(rate: f64, pass: bool) -> StepResult {
        StepResult {
            target_rate: rate,
            achieved_rate: rate,
            p50_ms: 2.0,
            p90_ms: 8.0,
            p99_ms: if pass { 12.5 } else { 950.0 },
            p999_ms: 20.0,
            max_ms: 30.0,
            success_rate: 100.0,
            verdict: if pass { "pass" } else { "fail" }.into(),
            reasons: if pass {
                Vec::new()
            } else {
                vec![Failure::Slo {
                    term: "p99<800ms".into(),
                    observed: Some(950.0),
                    errors: None,
                }]
            },
            drained: Some(true),
            ..StepResult::default()
        }
    }

    fn screen(p: &CapacityProgress, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, "capacity baseline", 42.0, p)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn shows_the_running_step_and_marks_the_earlier_ones() {
        let mut current = Snapshot {
            tps: 398.0,
            ..Default::default()
        };
        current.latency.p99 = 33.3;
        let p = CapacityProgress {
            steps: vec![step(100.0, true), step(200.0, true), step(400.0, false)],
            current_rate: Some(300.0),
            verifying: None,
            current,
            done: false,
        };
        for (w, h) in [(80, 24), (200, 50)] {
            let s = screen(&p, w, h);
            assert!(s.contains("step 4"), "{s}");
            assert!(
                s.contains("target 300 ops/s") && s.contains("achieved 398"),
                "{s}"
            );
            assert!(s.contains("p99 33.3 ms"), "{s}");
            assert_eq!(s.matches('✓').count(), 2, "{s}");
            assert_eq!(s.matches('✗').count(), 1, "{s}");
            assert!(s.contains("950.0"), "{s}");
            if w > 100 {
                assert!(s.contains("p99 950"), "the reason is shown: {s}");
            }
        }
    }

    #[test]
    fn the_closed_loop_check_is_shown_as_such() {
        let p = CapacityProgress {
            steps: vec![step(100.0, true)],
            verifying: Some(32),
            current: Snapshot {
                tps: 455.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let s = screen(&p, 80, 24);
        assert!(
            s.contains("closed-loop check: 32 users") && s.contains("455 ops/s"),
            "{s}"
        );
    }

    #[test]
    fn a_finished_search_says_so() {
        let p = CapacityProgress {
            steps: vec![step(100.0, true)],
            done: true,
            ..Default::default()
        };
        let s = screen(&p, 80, 24);
        assert!(s.contains("done") && s.contains("no step running"), "{s}");
    }
}
