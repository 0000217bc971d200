//! `CARD.md` for a trained head: what it is, what it was trained on, how each candidate did on
//! the held-out tracks, and the command that makes it again.

use std::fmt::Write;

use crate::TrainReport;

/// Where a head came from, for its card.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance<'a> {
    pub name: &'a str,
    /// The model whose embedding the head reads.
    pub upstream: &'a str,
    /// The labelled data, in words (a folder, or "the library's genre tags").
    pub data: &'a str,
    /// The command that trains it again.
    pub command: &'a str,
    /// Seconds the training took.
    pub seconds: f64,
}

pub fn card(provenance: &Provenance<'_>, report: &TrainReport) -> String {
    let p = provenance;
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", p.name);
    let _ = writeln!(
        out,
        "A head over the `{}` embedding: each dimension standardised, then {}. Trained in {:.1} s on {}.\n",
        p.upstream, report.classifier, p.seconds, p.data
    );
    let _ = writeln!(out, "## Labels\n\n| label | training tracks | held-out tracks |\n| --- | ---: | ---: |");
    for ((label, train), held) in report.labels.iter().zip(&report.train_tracks).zip(&report.holdout_tracks) {
        let _ = writeln!(out, "| {label} | {train} | {held} |");
    }
    let _ = writeln!(
        out,
        "\n## Choice on held-out tracks\n\nEach candidate was fitted on the training tracks and scored on the held-out ones \
         (never a segment of one track on both sides); the best accuracy wins (then the lower log loss), and the \
         winner is refitted on every track.\n\n| candidate | accuracy | log loss |\n| --- | ---: | ---: |"
    );
    for (i, c) in report.candidates.iter().enumerate() {
        let name = if c.kind == "logistic" {
            format!("logistic, l2 = {}", c.parameter)
        } else {
            format!("kNN, k = {}", c.parameter)
        };
        let mark = if i == report.chosen { " **(chosen)**" } else { "" };
        let _ = writeln!(out, "| {name}{mark} | {:.1} % | {:.3} |", 100.0 * c.accuracy, c.log_loss);
    }
    let _ = writeln!(out, "\n## Retrain\n\n```sh\n{}\n```", p.command);
    out
}
