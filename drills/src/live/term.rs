//! The terminal while the view is up: raw mode, the alternate screen, a hidden cursor, and
//! the guarantee that all three are undone on every way out.
//!
//! [`Term`] undoes them in `Drop` (normal return, `?` errors, unwinding). A panic hook,
//! installed once and chained before the previous hook, undoes them *before* the panic
//! message is printed, so the message lands on the normal screen and not in the alternate
//! one that is about to vanish. A flag makes restoring idempotent, so the hook and the guard
//! may both run, and the hook does nothing once no view is up.

use std::io::{self, Stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// Whether the terminal is in the view's modes and needs restoring.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// The terminal in the view's modes; restores it when dropped.
pub struct Term {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Term {
    /// Enters raw mode and the alternate screen and hides the cursor.
    pub fn enter() -> io::Result<Term> {
        install_panic_hook();
        // From here on every step is undone by `restore`, even if a later one fails.
        ACTIVE.store(true, Ordering::SeqCst);
        let entered = enable_raw_mode()
            .and_then(|()| execute!(io::stdout(), EnterAlternateScreen, Hide))
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(terminal) => Ok(Term { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    /// The ratatui terminal to draw on.
    pub fn terminal(&mut self) -> &mut Terminal<CrosstermBackend<Stdout>> {
        &mut self.terminal
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen, disables raw mode and shows the cursor, if the view had set
/// them up; otherwise does nothing. Errors are ignored: there is nobody left to tell.
pub fn restore() {
    restore_to(&mut io::stdout());
}

/// [`restore`], writing the escape sequences to `out`.
fn restore_to(out: &mut impl io::Write) {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(out, LeaveAlternateScreen, Show);
    }
}

/// Chains a hook that restores the terminal before the previous hook prints the panic.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Restoring writes "leave the alternate screen" and "show the cursor" once after a view
    /// was up, and nothing at all when none is (so the panic hook and the guard may both run).
    #[test]
    fn restore_writes_the_escapes_once_and_only_after_a_view() {
        let mut idle = Vec::new();
        restore_to(&mut idle);
        assert!(idle.is_empty(), "no view, no bytes: {idle:?}");

        ACTIVE.store(true, Ordering::SeqCst);
        let mut first = Vec::new();
        restore_to(&mut first);
        let text = String::from_utf8_lossy(&first);
        assert!(
            text.contains("\x1b[?1049l"),
            "leaves the alternate screen: {text:?}"
        );
        assert!(text.contains("\x1b[?25h"), "shows the cursor: {text:?}");
        let mut second = Vec::new();
        restore_to(&mut second);
        assert!(
            second.is_empty(),
            "the second restore writes nothing: {second:?}"
        );
    }
}
