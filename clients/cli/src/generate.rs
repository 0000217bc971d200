//! `generate`: shell completions and the man page, from the clap definitions themselves, so
//! they never drift from the flags. The code is the `timbre-generate` crate, which
//! `timbred generate` uses too.

pub use timbre_generate::{write, Generated};

#[cfg(test)]
mod tests {
    use timbre_generate::{generated, unnamed_subcommands, Generated};

    use crate::Cli;

    #[test]
    fn completions_and_man_page_name_every_subcommand() {
        use clap::CommandFactory;
        assert!(Cli::command().get_subcommands().count() >= 10);
        assert_eq!(unnamed_subcommands::<Cli>("timbre"), vec![]);
        let man = generated::<Cli>(Generated::Man, "timbre");
        assert!(man.contains(".TH timbre"), "roff: {}", &man[..200.min(man.len())]);
        let (bash, fish) = (generated::<Cli>(Generated::Bash, "timbre"), generated::<Cli>(Generated::Fish, "timbre"));
        assert!(bash.contains("--m3u-relative") && fish.contains("m3u-relative"));
    }
}
