//! `generate`: shell completions and the man page of a clap command line, from its
//! definitions themselves, so they never drift from the flags. Both `timbre generate` and
//! `timbred generate` are this crate: each passes its own `Cli` type and program name.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

/// The shells clap_complete knows, and the man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
    Man,
}

/// Prints `what` for the command line `C`, whose program is `name`.
pub fn write<C: CommandFactory>(what: Generated, name: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = C::command();
    let shell = match what {
        Generated::Man => return clap_mangen::Man::new(command).render(out),
        Generated::Bash => Shell::Bash,
        Generated::Zsh => Shell::Zsh,
        Generated::Fish => Shell::Fish,
        Generated::Elvish => Shell::Elvish,
        Generated::Powershell => Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut command, name, out);
    Ok(())
}

/// What `write` gives for `C`, as text.
pub fn generated<C: CommandFactory>(what: Generated, name: &str) -> String {
    let mut out = Vec::new();
    write::<C>(what, name, &mut out).expect("writing to a Vec cannot fail");
    String::from_utf8_lossy(&out).into_owned()
}

/// For tests: every `(output, subcommand)` pair where the completions for bash, zsh and fish,
/// or the man page, do not name one of `C`'s subcommands (`help` aside). Empty is good.
pub fn unnamed_subcommands<C: CommandFactory>(name: &str) -> Vec<(Generated, String)> {
    let subcommands: Vec<String> =
        C::command().get_subcommands().map(|c| c.get_name().to_owned()).filter(|n| n != "help").collect();
    let mut missing = Vec::new();
    for what in [Generated::Bash, Generated::Zsh, Generated::Fish, Generated::Man] {
        let mut text = generated::<C>(what, name);
        if what == Generated::Man {
            text = text.replace(r"\-", "-"); // roff writes every hyphen as `\-`
        }
        missing.extend(subcommands.iter().filter(|s| !text.contains(s.as_str())).map(|s| (what, s.clone())));
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    #[command(name = "demo")]
    struct Demo {
        #[command(subcommand)]
        command: DemoCommand,
    }

    #[derive(clap::Subcommand)]
    enum DemoCommand {
        /// The first.
        Alpha,
        /// The second.
        BetaGamma,
    }

    #[test]
    fn every_output_names_every_subcommand_and_the_man_page_is_roff() {
        assert_eq!(unnamed_subcommands::<Demo>("demo"), vec![]);
        assert!(generated::<Demo>(Generated::Man, "demo").contains(".TH demo"));
        assert!(generated::<Demo>(Generated::Powershell, "demo").contains("beta-gamma"));
        assert!(generated::<Demo>(Generated::Elvish, "demo").contains("beta-gamma"));
    }
}
