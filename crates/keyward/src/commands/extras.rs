//! `keyward completions SHELL` and `keyward man`: generated from the same clap definition the
//! parser uses, so they never drift from the commands.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{exit, Cli};

/// The shells `keyward completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Prints the completion script for `shell` to stdout.
pub(crate) fn completions(shell: CompletionShell) -> u8 {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut command, "keyward", &mut out);
    match out.flush() {
        Ok(()) => exit::OK,
        Err(_) => exit::FAILURE,
    }
}

/// Prints the man page (roff) to stdout: `keyward man > keyward.1`.
pub(crate) fn man() -> u8 {
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = std::io::stdout().lock();
    match page.render(&mut out).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("keyward: cannot write the man page: {e}");
            exit::FAILURE
        }
    }
}
