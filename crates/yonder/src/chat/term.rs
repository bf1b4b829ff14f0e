//! The terminal side: raw mode and the alternate screen (always given
//! back, also on errors and panics), and the loop that feeds keys and
//! events to the app and draws it.

use std::io::{Stdout, stdout};
use std::time::Duration;

use crossterm::event::{self, Event};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::app::App;
use super::shell::{Flow, Session};

/// How long to wait for a key before looking at the node's events again.
const POLL: Duration = Duration::from_millis(100);

/// The terminal in chat mode; dropping it gives the terminal back.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        install_panic_hook();
        enable_raw_mode()?;
        let terminal = execute!(stdout(), EnterAlternateScreen)
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(Terminal::new(CrosstermBackend::new(stdout()))?));
        match terminal {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen; harmless if already done.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// Gives the terminal back before the panic message is printed, so it is
/// readable and the shell usable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Runs the chat on the terminal until the user quits.
pub(super) fn run(session: &mut Session, app: &mut App) -> anyhow::Result<()> {
    let mut screen = Screen::enter()?;
    loop {
        screen.terminal.draw(|f| app.render(f))?;
        let mut actions = Vec::new();
        if event::poll(POLL)? {
            // Take every key already typed before drawing again, so pasting stays quick.
            loop {
                if let Event::Key(key) = event::read()? {
                    actions.extend(app.on_key(key));
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        actions.extend(session.drain(app));
        actions.extend(session.tick(app));
        if session.execute(app, actions) == Flow::Quit {
            return Ok(());
        }
    }
}
