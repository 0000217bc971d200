//! `timbred`'s text output of the offline commands.

use timbre_daemon::catalogue::Catalogue;
use timbre_daemon::offline::{analyze, eval, neighbours};

pub(crate) fn print_analysis(
    file: &std::path::Path,
    result: Result<analyze::Analysis, timbre_daemon::pipeline::PipelineError>,
    json: bool,
    top_k: usize,
    segments: bool,
) {
    match (result, json) {
        (Ok(analysis), true) => println!("{}", analyze::to_json(&analysis, top_k, segments)),
        (Err(error), true) => println!("{}", serde_json::json!({ "path": file, "error": error.to_string() })),
        (Ok(a), false) => {
            let f = &a.features;
            println!("{}", a.path.display());
            println!("  duration   {:.2} s ({} Hz, {} ch, {})", a.duration_s, a.sample_rate, a.channels, a.codec);
            println!("  segments   {} x {} s", a.segments, a.segment_s);
            println!(
                "  features   {} at {} Hz, {} x {} per segment; mean {:.1}, std {:.1}, range [{:.1}, {:.1}]",
                f.plugin, f.sample_rate, f.shape[0], f.shape[1], f.mean, f.std, f.min, f.max
            );
            let d = timbre_daemon::pipeline::descriptors::Summary::of(&a.descriptors);
            if let Some(text) = descriptor_text(&d) {
                println!("  descriptors {text}");
            }
            for error in a.descriptors.iter().filter_map(|d| d.error.as_ref().map(|e| (&d.plugin, e))) {
                println!("  descriptor plugin {} failed: {}", error.0, error.1);
            }
            for prediction in &a.predictions {
                let labels = analyze::top_labels(&prediction.labels, &prediction.probabilities, top_k);
                println!("  {:<10} {}", prediction.model, label_text(&labels));
                if segments {
                    for (i, probabilities) in prediction.segments.iter().enumerate() {
                        let best = analyze::top_labels(&prediction.labels, probabilities, 1);
                        println!("    {:>7.1} s  {}", i as f64 * prediction.segment_seconds, label_text(&best));
                    }
                }
            }
        }
        (Err(error), false) => eprintln!("error: {error}"),
    }
}

pub(crate) fn print_plugins(listing: &Catalogue) {
    println!("search path: {}", listing.search_path.join(":"));
    if listing.plugins.is_empty() {
        println!("no plugins found");
    }
    for p in &listing.plugins {
        println!(
            "{:<12} {:<10} {:<8} abi {}.{}  {}",
            p.name,
            p.kind.to_string(),
            p.version,
            p.abi_major,
            p.abi_minor,
            p.file
        );
    }
    for r in &listing.refused {
        println!("refused      {}: {}", r.file, r.reason);
    }
    for m in &listing.models {
        println!(
            "model {:<10} {:<8} {}  ({})",
            m.name,
            m.plugin,
            m.dir,
            m.info["execution_provider"].as_str().unwrap_or("-")
        );
    }
    for r in &listing.refused_models {
        println!("refused model {}: {}", r.dir, r.reason);
    }
}

/// "jazz 0.81, blues 0.10"
pub(crate) fn label_text(labels: &[serde_json::Value]) -> String {
    let text: Vec<String> = labels
        .iter()
        .map(|l| format!("{} {:.2}", l["name"].as_str().unwrap_or("?"), l["probability"].as_f64().unwrap_or(0.0)))
        .collect();
    text.join(", ")
}

pub(crate) fn print_eval(report: &eval::EvalReport) {
    let split = report.split.as_deref().map(|s| format!(", split {s}")).unwrap_or_default();
    println!("{}{split}", report.data.display());
    println!("{:<10} {:>8} {:>10} {:>8} {:>10}", "model", "tracks", "track acc", "segments", "seg acc");
    for m in &report.models {
        println!(
            "{:<10} {:>8} {:>9.1}% {:>8} {:>9.1}%",
            m.model,
            m.tracks,
            m.track_accuracy * 100.0,
            m.segments,
            m.segment_accuracy * 100.0
        );
    }
    if !report.ensemble_weights.is_empty() {
        let weights: Vec<String> = report.ensemble_weights.iter().map(|(m, w)| format!("{m} {w:.2}")).collect();
        println!("ensemble weights: {}", weights.join(", "));
    }
    for m in &report.models {
        println!("\n{} (track level)", m.model);
        println!("  {:<10} {:>9} {:>7} {:>6} {:>7}", "class", "precision", "recall", "f1", "tracks");
        for (label, s) in &m.per_class {
            println!("  {:<10} {:>9.2} {:>7.2} {:>6.2} {:>7}", label, s.precision, s.recall, s.f1, s.support);
        }
        let short: Vec<String> = m.confusion.labels.iter().map(|l| l.chars().take(5).collect()).collect();
        println!("  confusion (rows: true, columns: predicted)");
        println!("  {:<10} {}", "", short.iter().map(|l| format!("{l:>6}")).collect::<String>());
        for (label, row) in m.confusion.labels.iter().zip(&m.confusion.matrix) {
            println!("  {:<10} {}", label, row.iter().map(|n| format!("{n:>6}")).collect::<String>());
        }
    }
}

pub(crate) fn print_neighbours(report: &neighbours::NeighboursReport) {
    println!(
        "{} tracks; a random neighbour shares the genre {:.1} % of the time",
        report.tracks,
        100.0 * report.chance
    );
    println!("{:<10} {:>5} {:>8} {:>8}", "space", "dim", "top-5", "top-10");
    for space in &report.spaces {
        println!(
            "{:<10} {:>5} {:>7.1}% {:>7.1}%",
            space.space,
            space.dimension,
            100.0 * space.top5,
            100.0 * space.top10
        );
    }
}

/// Files analysed so far, on stderr: at most every 2 s, and at the end.
pub(crate) fn progress(command: &'static str) -> impl FnMut(usize, usize) + Send {
    let mut last = std::time::Instant::now();
    move |done, total| {
        if done == total || last.elapsed().as_secs_f64() > 2.0 {
            eprintln!("{command}: analysed {done}/{total} files");
            last = std::time::Instant::now();
        }
    }
}

/// Files that could not be analysed, one `error: PATH: REASON` line each.
pub(crate) fn print_failures(failed: &[(std::path::PathBuf, String)]) {
    for (file, reason) in failed {
        eprintln!("error: {}: {reason}", file.display());
    }
}

/// "120.0 BPM (0.82), A minor (0.71), -9.3 LUFS, LRA 5.1 LU, peak -0.4 dBTP, RG track -8.7 dB peak 0.95"
pub(crate) fn descriptor_text(d: &timbre_daemon::pipeline::descriptors::Summary) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(bpm) = d.bpm {
        parts.push(format!("{bpm:.1} BPM ({:.2})", d.bpm_confidence.unwrap_or(0.0)));
    }
    if let Some(key) = &d.key {
        parts.push(format!("{key} ({:.2})", d.key_strength.unwrap_or(0.0)));
    }
    if let Some(l) = d.loudness_lufs {
        parts.push(format!("{l:.1} LUFS"));
    }
    if let Some(r) = d.loudness_range_lu {
        parts.push(format!("LRA {r:.1} LU"));
    }
    if let Some(p) = d.true_peak_dbtp {
        parts.push(format!("peak {p:.1} dBTP"));
    }
    if let Some(g) = d.replaygain_track_gain_db {
        parts.push(format!("RG track {g:+.2} dB peak {:.3}", d.replaygain_track_peak.unwrap_or(0.0)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
