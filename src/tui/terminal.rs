//! The terminal while the control room owns it: raw mode, the alternate screen, mouse capture,
//! bracketed paste (a paste arrives as text, never as keys) and the window title (the room's
//! own, see `alert.rs`) on entry, and all of it undone on every way out (drop, error, panic).

use std::io::{self, Stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::style::{Print, ResetColor};
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub(crate) type Term = Terminal<CrosstermBackend<Stdout>>;

/// Whether the room is on the alternate screen (so restoring clears it, once).
static ALTERNATE: AtomicBool = AtomicBool::new(false);
/// Whether the shell's window title was saved (so restoring clears the room's and brings the
/// saved one back, once).
static TITLED: AtomicBool = AtomicBool::new(false);

/// XTPUSHTITLE: save the window title on the terminal's title stack.
const PUSH_TITLE: &str = "\x1b[22;2t";
/// XTPOPTITLE: bring the saved title back. Terminals without a title stack ignore it, and keep
/// the empty title set before it.
const POP_TITLE: &str = "\x1b[23;2t";

/// Restores the terminal when dropped.
pub(crate) struct TerminalGuard {
    _private: (),
}

impl TerminalGuard {
    pub(crate) fn enter() -> io::Result<(Term, TerminalGuard)> {
        install_panic_hook();
        enable_raw_mode()?;
        let guard = TerminalGuard { _private: () };
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        )?;
        ALTERNATE.store(true, Ordering::SeqCst);
        execute!(io::stdout(), Print(PUSH_TITLE))?;
        TITLED.store(true, Ordering::SeqCst);
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.hide_cursor()?;
        terminal.clear()?;
        Ok((terminal, guard))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Take the terminal back after [`restore`] gave it to another program: raw mode, the
/// alternate screen, mouse and paste again, and a clear so the next frame is drawn whole, at
/// the size the terminal has now (it may have been resized meanwhile).
pub(crate) fn resume(terminal: &mut Term) -> io::Result<()> {
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    ALTERNATE.store(true, Ordering::SeqCst);
    terminal.hide_cursor()?;
    terminal.autoresize()?;
    terminal.clear()
}

/// Put the terminal back as the shell had it. Safe to call more than once. The alternate screen
/// is blanked before it is left: a terminal grown while on it (tmux 3.3 does this) otherwise
/// shows the rows drawn beyond the old width on the shell's screen.
pub(crate) fn restore() {
    let _ = disable_raw_mode();
    if ALTERNATE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), ResetColor, Clear(ClearType::All));
    }
    if TITLED.swap(false, Ordering::SeqCst) {
        let _ = execute!(
            io::stdout(),
            Print(super::alert::title("")),
            Print(POP_TITLE)
        );
    }
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// A panic restores the terminal before the message is printed, so it is readable and the shell
/// is usable; the message also goes to the log.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            tracing::error!(panic = %info, "the control room panicked");
            previous(info);
        }));
    });
}
