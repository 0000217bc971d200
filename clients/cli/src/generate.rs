//! `generate`: shell completions and the man page, from the clap definitions themselves, so
//! they never drift from the flags. `timbred generate` uses the same function.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::flags::Generated;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;

    fn generated(what: Generated) -> String {
        let mut out = Vec::new();
        write::<Cli>(what, "timbre", &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn completions_and_man_page_name_every_subcommand() {
        let subcommands: Vec<String> =
            Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).filter(|n| n != "help").collect();
        assert!(subcommands.len() >= 10, "{subcommands:?}");
        let bash = generated(Generated::Bash);
        let fish = generated(Generated::Fish);
        let man = generated(Generated::Man);
        assert!(man.starts_with(".ie") || man.contains(".TH timbre 1"), "roff: {}", &man[..200.min(man.len())]);
        for name in &subcommands {
            assert!(bash.contains(name), "bash lacks {name}");
            assert!(fish.contains(name), "fish lacks {name}");
            assert!(man.contains(name), "man page lacks {name}");
        }
        assert!(bash.contains("--m3u-relative") && fish.contains("m3u-relative"));
    }
}
