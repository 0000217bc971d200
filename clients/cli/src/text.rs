//! Text output: what each command prints for people. Every function returns the text, so
//! the commands only decide where it goes, and the tests can read it.

use std::fmt::Write as _;
use std::time::Duration;

use timbre_proto::v1 as pb;

/// Labels shown per model where the daemon sends them all (tracks, live windows).
pub const SHOWN_LABELS: usize = 3;

/// `text` with its control characters written as escapes (`\n`, `\u{1b}`): file names and
/// tags come from anywhere, and a name holding `ESC [2J` must not clear the terminal, nor a
/// newline break a table. Applied to every string from the daemon that text output shows.
pub fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// `rock 0.81  metal 0.10  blues 0.03`
pub fn labels(labels: &[pb::Label]) -> String {
    labels.iter().map(|l| format!("{} {:.2}", clean(&l.name), l.probability)).collect::<Vec<_>>().join("  ")
}

/// The tag threshold when none is given. musicnn-msd's tags are weak (on 80 pool clips its
/// strongest tag has a median of 0.33): at 0.2 a clip shows one or two tags and 11 % show none,
/// and 62 % of the genre-like tags shown name the clip's genre; at 0.15 that falls to 43 %, at
/// 0.3 half the clips show nothing. `bench/tag_threshold.py`, in bench/README.md.
pub const TAG_THRESHOLD: f32 = 0.2;

/// Which of a prediction's labels text output shows. Classes: the `top_k` most probable (0:
/// all), since one of them is the answer. Tags: every tag at or above `tag_threshold`, however
/// many, since each stands alone and a weak tag is not an answer at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shown {
    pub top_k: usize,
    pub tag_threshold: f32,
}

impl Shown {
    pub fn new(top_k: u32, tag_threshold: f32) -> Self {
        Shown { top_k: if top_k == 0 { usize::MAX } else { top_k as usize }, tag_threshold }
    }

    /// The labels (most probable first, as the daemon sends them) to show for a prediction of
    /// `kind`; an unknown kind (a model no longer loaded) reads as classes.
    pub fn pick<'a>(&self, kind: i32, labels: &'a [pb::Label]) -> &'a [pb::Label] {
        let n = if is_tags(kind) {
            labels.iter().take_while(|l| l.probability >= self.tag_threshold).count()
        } else {
            labels.len().min(self.top_k)
        };
        &labels[..n]
    }

    /// `prediction` with only the labels shown left, its segments' too.
    pub fn trim(&self, prediction: &mut pb::ModelPrediction) {
        let kind = prediction.kind;
        prediction.labels.truncate(self.pick(kind, &prediction.labels).len());
        for segment in &mut prediction.segments {
            segment.labels.truncate(self.pick(kind, &segment.labels).len());
        }
    }
}

pub fn is_tags(kind: i32) -> bool {
    kind == pb::PredictionKind::Tags as i32
}

/// `  cnn        rock 0.81  metal 0.10  blues 0.03`; a tag model's line says so, and says when
/// no tag reaches the threshold: `  musicnn    rock 0.41  guitar 0.33  (tags ≥ 0.30)`.
pub fn model_line(prediction: &pb::ModelPrediction, shown: Shown) -> String {
    let picked = shown.pick(prediction.kind, &prediction.labels);
    let mut line = format!("  {:<10} {}", clean(&prediction.model), labels(picked));
    if is_tags(prediction.kind) {
        let (gap, what) = if picked.is_empty() { ("", "no tag") } else { ("  ", "tags") };
        let _ = write!(line, "{gap}({what} ≥ {:.2})", shown.tag_threshold);
    }
    line.trim_end().to_string()
}

/// One classified file: its path, its duration, one line per model, and with `segments` one
/// line per segment under its model.
pub fn classify(path: &str, response: &pb::ClassifyResponse, segments: bool, shown: Shown) -> String {
    let mut text = format!("{}\n  {:<10} {}\n", clean(path), "duration", seconds(response.duration_s));
    if let Some(d) = descriptor_text(response.descriptors.as_ref()) {
        let _ = writeln!(text, "  {:<10} {d}", "descriptors");
    }
    if response.predictions.is_empty() {
        text.push_str("  (no model ran)\n");
    }
    for prediction in &response.predictions {
        text.push_str(&model_line(prediction, shown));
        text.push('\n');
        if segments {
            for segment in &prediction.segments {
                let span = format!("{:.1}–{:.1} s", segment.start_s, segment.end_s);
                let _ = writeln!(text, "    {span:>15}  {}", labels(shown.pick(prediction.kind, &segment.labels)));
            }
        }
    }
    text
}

/// `120.0 BPM, A minor, -9.3 LUFS, RG -8.70 dB`; `None` without descriptors.
pub fn descriptor_text(d: Option<&pb::Descriptors>) -> Option<String> {
    let d = d?;
    let mut parts = Vec::new();
    if let Some(bpm) = d.bpm {
        parts.push(format!("{bpm:.1} BPM"));
    }
    if let Some(key) = &d.key {
        parts.push(key.clone());
    }
    if let Some(l) = d.loudness_lufs {
        parts.push(format!("{l:.1} LUFS"));
    }
    if let Some(p) = d.true_peak_dbtp {
        parts.push(format!("peak {p:.1} dBTP"));
    }
    if let Some(g) = d.replaygain_track_gain_db {
        parts.push(format!("RG {g:+.2} dB"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `215.30 s`
pub fn seconds(s: f64) -> String {
    format!("{s:.2} s")
}

/// A track length as on a player: `3:35`, `1:02:03`.
pub fn clock(s: f64) -> String {
    let total = s.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A wait: `45s`, `3m20s`, `1h02m`; `?` when unknown (0, as the proto sends it).
pub fn wait(s: f64) -> String {
    if !s.is_finite() || s <= 0.0 {
        return "?".into();
    }
    let total = s.round() as u64;
    match total {
        0..60 => format!("{total}s"),
        60..3600 => format!("{}m{:02}s", total / 60, total % 60),
        _ => format!("{}h{:02}m", total / 3600, total / 60 % 60),
    }
}

/// `8.2 MiB`
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `2023-11-14 22:13:20 UTC`, from seconds since the Unix epoch.
pub fn utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Days to a civil date, from Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `analysed`, `pending`, `failed`; `state 7` for one this client does not know.
pub fn state(state: i32) -> String {
    match pb::AnalysisState::try_from(state) {
        Ok(s) => s.as_str_name().trim_start_matches("ANALYSIS_STATE_").to_lowercase(),
        Err(_) => format!("state {state}"),
    }
}

fn plugin_kind(kind: i32) -> String {
    match pb::PluginKind::try_from(kind) {
        Ok(k) => k.as_str_name().trim_start_matches("PLUGIN_KIND_").to_lowercase(),
        Err(_) => format!("kind {kind}"),
    }
}

/// At most `max` characters, the last one `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Rows of cells in aligned columns, two spaces apart; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut text = String::new();
    let rows: Vec<Vec<String>> = rows.iter().map(|row| row.iter().map(|cell| clean(cell)).collect()).collect();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|row| row.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 < row.len() {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            } else {
                line.push_str(cell);
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `Artist – Title`, either alone when the other is missing, `-` when both are.
pub fn artist_title(tags: Option<&pb::TrackTags>) -> String {
    let Some(tags) = tags else { return "-".into() };
    match (tags.artist.is_empty(), tags.title.is_empty()) {
        (false, false) => format!("{} – {}", tags.artist, tags.title),
        (false, true) => tags.artist.clone(),
        (true, false) => tags.title.clone(),
        (true, true) => "-".into(),
    }
}

/// The label column of `timbre tracks`: the top label under `model`, or `model:label` for
/// every model that analysed the track.
pub fn top_labels(track: &pb::Track, model: Option<&str>) -> String {
    let top = |p: &pb::ModelPrediction| p.labels.first().map_or("?".to_string(), |l| l.name.clone());
    let text = match model {
        Some(model) => track.predictions.iter().find(|p| p.model == model).map(top).unwrap_or_default(),
        None => track.predictions.iter().map(|p| format!("{}:{}", p.model, top(p))).collect::<Vec<_>>().join(" "),
    };
    if text.is_empty() {
        "-".into()
    } else {
        text
    }
}

/// The top label of `track` under `model` when given and it has one, else under the first
/// model that analysed it; `-` when it has none.
pub fn top_label(track: &pb::Track, model: Option<&str>) -> String {
    let prediction =
        model.and_then(|m| track.predictions.iter().find(|p| p.model == m)).or_else(|| track.predictions.first());
    prediction.and_then(|p| p.labels.first()).map_or_else(|| "-".to_string(), |l| l.name.clone())
}

/// The tracks of `recommend` (best first) or `playlist` (in play order), one line each, in
/// aligned columns without a header: rank, score (3 decimals), id, top label (see
/// [`top_label`]), artist – title, path.
///
/// `1.  0.934  42  rock  Band – Song  /m/a.flac`
pub fn recommended(tracks: &[pb::RecommendedTrack], model: Option<&str>) -> String {
    let ranks: Vec<String> = (1..=tracks.len()).map(|rank| format!("{rank}.")).collect();
    let scores: Vec<String> = tracks.iter().map(|t| format!("{:.3}", t.score)).collect();
    // Numbers line up on the right.
    let width = |cells: &[String]| cells.iter().map(|c| c.chars().count()).max().unwrap_or(0);
    let (rank_width, score_width) = (width(&ranks), width(&scores));
    let rows: Vec<Vec<String>> = tracks
        .iter()
        .zip(ranks.iter().zip(&scores))
        .map(|(recommended, (rank, score))| {
            let mut row = vec![format!("{rank:>rank_width$}"), format!("{score:>score_width$}")];
            match &recommended.track {
                Some(track) => row.extend([
                    track.id.to_string(),
                    top_label(track, model),
                    truncate(&artist_title(track.tags.as_ref()), 40),
                    track.path.clone(),
                ]),
                None => row.extend(["-", "-", "-", "-"].map(String::from)),
            }
            row
        })
        .collect();
    table(&rows)
}

/// The `timbre tracks` table, with a header row.
pub fn tracks_table(tracks: &[pb::Track], model: Option<&str>) -> String {
    let header = ["ID", "STATE", if model.is_some() { "LABEL" } else { "LABELS" }, "LENGTH", "ARTIST – TITLE", "PATH"];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for track in tracks {
        rows.push(vec![
            track.id.to_string(),
            state(track.state),
            top_labels(track, model),
            if track.duration_s > 0.0 { clock(track.duration_s) } else { "-".into() },
            truncate(&artist_title(track.tags.as_ref()), 40),
            track.path.clone(),
        ]);
    }
    table(&rows)
}

/// Everything about one track, one field per line.
pub fn track(track: &pb::Track, tag_threshold: f32) -> String {
    let or_dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    let tags = track.tags.clone().unwrap_or_default();
    let mut rows: Vec<(&str, String)> =
        vec![("id", track.id.to_string()), ("path", track.path.clone()), ("state", state(track.state))];
    if !track.error.is_empty() {
        rows.push(("error", track.error.clone()));
    }
    rows.extend([
        (
            "duration",
            if track.duration_s > 0.0 {
                format!("{} ({})", clock(track.duration_s), seconds(track.duration_s))
            } else {
                "- (not analysed)".into()
            },
        ),
        ("size", format!("{} ({} bytes)", bytes(track.size_bytes), track.size_bytes)),
        ("modified", format!("{} ({})", utc(track.mtime_unix), track.mtime_unix)),
        ("hash", or_dash(&track.content_hash)),
        ("title", or_dash(&tags.title)),
        ("artist", or_dash(&tags.artist)),
        ("album", or_dash(&tags.album)),
        ("genre", or_dash(&tags.genre)),
    ]);
    if let Some(d) = &track.descriptors {
        if let Some(bpm) = d.bpm {
            rows.push(("bpm", format!("{bpm:.1} (confidence {:.2})", d.bpm_confidence.unwrap_or(0.0))));
        }
        if let Some(key) = &d.key {
            rows.push(("key", format!("{key} (strength {:.2})", d.key_strength.unwrap_or(0.0))));
        }
        if let Some(l) = d.loudness_lufs {
            rows.push(("loudness", format!("{l:.1} LUFS, range {:.1} LU", d.loudness_range_lu.unwrap_or(0.0))));
        }
        if let Some(p) = d.true_peak_dbtp {
            rows.push(("true peak", format!("{p:.1} dBTP")));
        }
        if let Some(g) = d.replaygain_track_gain_db {
            rows.push(("rg track", format!("{g:+.2} dB, peak {:.6}", d.replaygain_track_peak.unwrap_or(0.0))));
        }
        if let Some(g) = d.replaygain_album_gain_db {
            rows.push(("rg album", format!("{g:+.2} dB")));
        }
    }
    let mut text = String::new();
    for (name, value) in rows {
        let _ = writeln!(text, "{name:<10} {}", clean(&value));
    }
    if track.predictions.is_empty() {
        text.push_str("predictions -\n");
    } else {
        text.push_str("predictions\n");
        for prediction in &track.predictions {
            text.push_str(&model_line(prediction, Shown::new(SHOWN_LABELS as u32, tag_threshold)));
            text.push('\n');
        }
    }
    text
}

/// `[radio] 12.0–15.0 s  cnn rock 0.70 metal 0.10 blues 0.05  lstm rock 0.60 ...`
pub fn live(live: &pb::LivePrediction) -> String {
    let mut line = format!("[{}] {:.1}–{:.1} s", clean(&live.source), live.window_start_s, live.window_end_s);
    for prediction in &live.predictions {
        let _ = write!(line, "  {}", clean(&prediction.model));
        for label in Shown::new(SHOWN_LABELS as u32, TAG_THRESHOLD).pick(prediction.kind, &prediction.labels) {
            let _ = write!(line, " {} {:.2}", clean(&label.name), label.probability);
        }
    }
    line
}

/// A periodic progress line of a scan that is not on a terminal.
pub fn scan_line(progress: &pb::ScanProgress) -> String {
    let mut line = format!(
        "scan: {}/{} files, {} failed, {:.1} files/s, ETA {}",
        progress.done,
        progress.total,
        progress.failed,
        progress.rate_per_s,
        wait(progress.eta_s)
    );
    if !progress.current_path.is_empty() {
        let _ = write!(line, ", now {}", clean(&progress.current_path));
    }
    line
}

/// `scanned 120 files: 2 failed, 30 analysed, 88 unchanged (9.8 s, 12.2 files/s)`, from the
/// last message of a scan. "Unchanged" counts the files whose analysis was kept (unchanged,
/// moved or copied).
pub fn scan_summary(last: &pb::ScanProgress, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { last.done as f64 / secs } else { 0.0 };
    let unchanged = last.done.saturating_sub(last.analysed).saturating_sub(last.failed);
    format!(
        "scanned {} files: {} failed, {} analysed, {unchanged} unchanged ({secs:.1} s, {rate:.1} files/s)",
        last.done, last.failed, last.analysed
    )
}

/// The daemon's plugins, one per line, then the refused ones with why.
pub fn plugins(response: &pb::ListPluginsResponse) -> String {
    let mut text = String::new();
    if response.plugins.is_empty() {
        text.push_str("no plugins loaded\n");
    }
    for p in &response.plugins {
        let file = if p.file.is_empty() { "(built in)" } else { &p.file };
        let _ = writeln!(
            text,
            "{:<12} {:<10} {:<8} abi {}.{}  {}",
            clean(&p.name),
            plugin_kind(p.kind),
            clean(&p.version),
            p.abi_major,
            p.abi_minor,
            clean(file)
        );
    }
    for r in &response.refused {
        let _ = writeln!(text, "refused      {}: {}", clean(&r.file), clean(&r.reason));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, probability: f32) -> pb::Label {
        pb::Label { name: name.into(), probability }
    }

    fn cnn() -> pb::ModelPrediction {
        pb::ModelPrediction {
            model: "cnn".into(),
            labels: vec![label("rock", 0.81), label("metal", 0.1), label("blues", 0.03), label("jazz", 0.01)],
            segments: vec![
                pb::SegmentPrediction { index: 0, start_s: 0.0, end_s: 3.0, labels: vec![label("rock", 0.9)] },
                pb::SegmentPrediction { index: 1, start_s: 3.0, end_s: 4.5, labels: vec![label("metal", 0.6)] },
            ],
            kind: pb::PredictionKind::Classes as i32,
        }
    }

    fn all() -> Shown {
        Shown::new(0, TAG_THRESHOLD)
    }

    #[test]
    fn model_lines_pad_the_model_name() {
        let top = |k| Shown::new(k, TAG_THRESHOLD);
        assert_eq!(model_line(&cnn(), top(3)), "  cnn        rock 0.81  metal 0.10  blues 0.03");
        assert_eq!(model_line(&cnn(), top(1)), "  cnn        rock 0.81");
        let none = pb::ModelPrediction { model: "knn".into(), ..Default::default() };
        assert_eq!(model_line(&none, top(3)), "  knn");
    }

    fn musicnn() -> pb::ModelPrediction {
        pb::ModelPrediction {
            model: "musicnn".into(),
            labels: vec![label("rock", 0.41), label("guitar", 0.33), label("male vocalists", 0.12), label("pop", 0.05)],
            segments: vec![pb::SegmentPrediction {
                index: 0,
                start_s: 0.0,
                end_s: 3.0,
                labels: vec![label("guitar", 0.52), label("rock", 0.31), label("pop", 0.2)],
            }],
            kind: pb::PredictionKind::Tags as i32,
        }
    }

    #[test]
    fn a_tag_model_shows_every_tag_above_the_threshold_and_a_class_model_its_top_k() {
        // Tags: however many pass the threshold, --top-k or not.
        assert_eq!(model_line(&musicnn(), Shown::new(1, 0.3)), "  musicnn    rock 0.41  guitar 0.33  (tags ≥ 0.30)");
        assert_eq!(
            model_line(&musicnn(), Shown::new(3, 0.1)),
            "  musicnn    rock 0.41  guitar 0.33  male vocalists 0.12  (tags ≥ 0.10)"
        );
        assert_eq!(model_line(&musicnn(), Shown::new(3, 0.5)), "  musicnn    (no tag ≥ 0.50)");
        // Classes: the top k, however weak.
        assert_eq!(model_line(&cnn(), Shown::new(2, 0.5)), "  cnn        rock 0.81  metal 0.10");
        // A model no longer loaded (kind unknown) reads as classes.
        let unknown = pb::ModelPrediction { kind: pb::PredictionKind::Unspecified as i32, ..musicnn() };
        assert_eq!(model_line(&unknown, Shown::new(1, 0.3)), "  musicnn    rock 0.41");
        // Segments the same way, and trim leaves what text shows (for --json).
        let response = pb::ClassifyResponse {
            path: String::new(),
            duration_s: 3.0,
            predictions: vec![musicnn()],
            descriptors: None,
        };
        assert!(classify("a.wav", &response, true, Shown::new(3, 0.3)).contains("0.0–3.0 s  guitar 0.52  rock 0.31\n"));
        let mut trimmed = musicnn();
        Shown::new(1, 0.3).trim(&mut trimmed);
        let names = |labels: &[pb::Label]| labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            (names(&trimmed.labels), names(&trimmed.segments[0].labels)),
            (vec!["rock".into(), "guitar".into()], vec!["guitar".into(), "rock".into()])
        );
        let mut trimmed = cnn();
        Shown::new(1, 0.3).trim(&mut trimmed);
        assert_eq!(names(&trimmed.labels), ["rock"]);
    }

    #[test]
    fn classify_shows_path_duration_models_and_segments() {
        let response =
            pb::ClassifyResponse { path: String::new(), duration_s: 4.5, predictions: vec![cnn()], descriptors: None };
        assert_eq!(
            classify("a.flac", &response, false, all()),
            "a.flac\n  duration   4.50 s\n  cnn        rock 0.81  metal 0.10  blues 0.03  jazz 0.01\n"
        );
        let with_segments = classify("a.flac", &response, true, all());
        let lines: Vec<_> = with_segments.lines().collect();
        assert_eq!(lines.len(), 5, "{with_segments}");
        assert_eq!(lines[3], "          0.0–3.0 s  rock 0.90");
        assert_eq!(lines[4], "          3.0–4.5 s  metal 0.60");
        let empty = pb::ClassifyResponse { duration_s: 1.0, ..Default::default() };
        assert!(classify("b.wav", &empty, false, all()).contains("(no model ran)"));
    }

    #[test]
    fn durations_read_like_a_player_and_waits_like_a_clock() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(215.4), "3:35");
        assert_eq!(clock(3723.0), "1:02:03");
        assert_eq!(wait(0.0), "?");
        assert_eq!(wait(f64::NAN), "?");
        assert_eq!(wait(45.2), "45s");
        assert_eq!(wait(200.0), "3m20s");
        assert_eq!(wait(3720.0), "1h02m");
        assert_eq!(seconds(4.0), "4.00 s");
    }

    #[test]
    fn sizes_and_dates() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(8 * 1024 * 1024 + 200 * 1024), "8.2 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn states_by_short_name() {
        assert_eq!(state(pb::AnalysisState::Analysed as i32), "analysed");
        assert_eq!(state(pb::AnalysisState::Failed as i32), "failed");
        assert_eq!(state(42), "state 42");
    }

    #[test]
    fn control_characters_in_names_are_escaped_not_sent_to_the_terminal() {
        assert_eq!(clean("plain – ünïcode"), "plain – ünïcode");
        assert_eq!(clean("a\u{1b}[2Jb\nc\td\u{9b}"), "a\\u{1b}[2Jb\\nc\\td\\u{9b}");
        let mut nasty = library_track();
        nasty.path = "/m/\u{1b}[2Jclear\nme.flac".into();
        let table = tracks_table(&[nasty.clone()], None);
        assert_eq!(table.lines().count(), 2, "a header and one row: {table}");
        assert!(!table.contains('\u{1b}') && table.contains("\\u{1b}[2Jclear\\nme.flac"), "{table}");
        let shown = track(&nasty, TAG_THRESHOLD);
        assert!(!shown.contains('\u{1b}') && shown.contains("path       /m/\\u{1b}[2Jclear\\nme.flac\n"), "{shown}");
    }

    #[test]
    fn tables_align_columns_and_truncate_long_cells() {
        let rows = vec![
            vec!["ID".to_string(), "NAME".into(), "PATH".into()],
            vec!["7".to_string(), "a".into(), "/x".into()],
            vec!["1234".to_string(), "bbbbb".into(), "/yy".into()],
        ];
        assert_eq!(table(&rows), "ID    NAME   PATH\n7     a      /x\n1234  bbbbb  /yy\n");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("ä–ö", 3), "ä–ö", "counts characters, not bytes");
    }

    fn library_track() -> pb::Track {
        pb::Track {
            id: 42,
            path: "/m/a.flac".into(),
            size_bytes: 2048,
            mtime_unix: 1_700_000_000,
            content_hash: "ab12".into(),
            tags: Some(pb::TrackTags { title: "Song".into(), artist: "Band".into(), ..Default::default() }),
            duration_s: 215.5,
            state: pb::AnalysisState::Analysed as i32,
            error: String::new(),
            predictions: vec![
                cnn(),
                pb::ModelPrediction {
                    model: "lstm".into(),
                    labels: vec![label("jazz", 0.5)],
                    segments: vec![],
                    kind: 0,
                },
            ],
            descriptors: None,
            embedding: Vec::new(),
        }
    }

    #[test]
    fn tracks_table_shows_top_label_per_model() {
        let failed = pb::Track {
            id: 7,
            path: "/m/broken.mp3".into(),
            state: pb::AnalysisState::Failed as i32,
            error: "bad header".into(),
            ..Default::default()
        };
        let table = tracks_table(&[failed.clone(), library_track()], None);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines[0], "ID  STATE     LABELS              LENGTH  ARTIST – TITLE  PATH");
        assert_eq!(lines[1], "7   failed    -                   -       -               /m/broken.mp3");
        assert_eq!(lines[2], "42  analysed  cnn:rock lstm:jazz  3:36    Band – Song     /m/a.flac");

        let only_lstm = tracks_table(&[failed, library_track()], Some("lstm"));
        assert!(only_lstm.lines().next().is_some_and(|h| h.contains("LABEL ")), "{only_lstm}");
        assert!(only_lstm.lines().nth(2).is_some_and(|l| l.contains(" jazz ") && !l.contains("rock")), "{only_lstm}");
    }

    #[test]
    fn artist_title_uses_what_is_there() {
        let tags = |artist: &str, title: &str| pb::TrackTags {
            artist: artist.into(),
            title: title.into(),
            ..Default::default()
        };
        assert_eq!(artist_title(Some(&tags("A", "T"))), "A – T");
        assert_eq!(artist_title(Some(&tags("A", ""))), "A");
        assert_eq!(artist_title(Some(&tags("", "T"))), "T");
        assert_eq!(artist_title(Some(&tags("", ""))), "-");
        assert_eq!(artist_title(None), "-");
    }

    fn recommended_track(score: f32, track: pb::Track) -> pb::RecommendedTrack {
        pb::RecommendedTrack { track: Some(track), score }
    }

    #[test]
    fn top_label_prefers_the_model_used_then_the_first() {
        let track = library_track();
        assert_eq!(top_label(&track, None), "rock", "first model");
        assert_eq!(top_label(&track, Some("lstm")), "jazz");
        assert_eq!(top_label(&track, Some("knn")), "rock", "a model the track lacks: the first");
        assert_eq!(top_label(&pb::Track::default(), None), "-");
        let no_labels = pb::Track {
            predictions: vec![pb::ModelPrediction { model: "cnn".into(), ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(top_label(&no_labels, Some("cnn")), "-");
    }

    #[test]
    fn recommended_tracks_are_one_aligned_line_each() {
        let untagged = pb::Track {
            id: 7,
            path: "/m/b.mp3".into(),
            predictions: vec![pb::ModelPrediction {
                model: "lstm".into(),
                labels: vec![label("jazz", 0.5)],
                segments: vec![],
                kind: 0,
            }],
            ..Default::default()
        };
        let tracks = vec![recommended_track(0.93456, library_track()), recommended_track(0.5, untagged)];
        assert_eq!(
            recommended(&tracks, None),
            "1.  0.935  42  rock  Band – Song  /m/a.flac\n\
             2.  0.500  7   jazz  -            /m/b.mp3\n"
        );
        let lstm = recommended(&tracks, Some("lstm"));
        assert!(lstm.starts_with("1.  0.935  42  jazz  Band – Song  /m/a.flac\n"), "{lstm}");

        // Ranks and scores line up on the right; a missing track is all dashes.
        let mut many: Vec<_> = (0..10).map(|i| recommended_track(0.1 * i as f32, pb::Track::default())).collect();
        many[9].score = -0.25;
        many[8].track = None;
        let text = recommended(&many, None);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 10, "{text}");
        assert_eq!(lines[0], " 1.   0.000  0  -  -");
        assert_eq!(lines[8], " 9.   0.800  -  -  -  -");
        assert_eq!(lines[9], "10.  -0.250  0  -  -");
        assert_eq!(recommended(&[], None), "");
    }

    #[test]
    fn track_shows_every_field() {
        let text = track(&library_track(), TAG_THRESHOLD);
        for expected in [
            "id         42\n",
            "path       /m/a.flac\n",
            "state      analysed\n",
            "duration   3:36 (215.50 s)\n",
            "size       2.0 KiB (2048 bytes)\n",
            "modified   2023-11-14 22:13:20 UTC (1700000000)\n",
            "hash       ab12\n",
            "title      Song\n",
            "artist     Band\n",
            "album      -\n",
            "genre      -\n",
            "predictions\n  cnn        rock 0.81  metal 0.10  blues 0.03\n  lstm       jazz 0.50\n",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert!(!text.contains("error"), "no error line for an analysed track");

        let failed = pb::Track {
            state: pb::AnalysisState::Failed as i32,
            error: "unsupported codec".into(),
            ..Default::default()
        };
        let text = track(&failed, TAG_THRESHOLD);
        assert!(text.contains("state      failed\nerror      unsupported codec\n"), "{text}");
        assert!(text.contains("predictions -\n"), "{text}");
    }

    #[test]
    fn live_lines_name_source_window_and_models() {
        let live = pb::LivePrediction {
            source: "radio".into(),
            window_start_s: 12.0,
            window_end_s: 15.0,
            predictions: vec![
                cnn(),
                pb::ModelPrediction {
                    model: "lstm".into(),
                    labels: vec![label("jazz", 0.5)],
                    segments: vec![],
                    kind: 0,
                },
            ],
        };
        assert_eq!(super::live(&live), "[radio] 12.0–15.0 s  cnn rock 0.81 metal 0.10 blues 0.03  lstm jazz 0.50");
    }

    #[test]
    fn scan_lines_and_summary() {
        let progress = pb::ScanProgress {
            done: 40,
            total: 120,
            failed: 1,
            current_path: "/m/x.flac".into(),
            rate_per_s: 12.34,
            eta_s: 6.4,
            finished: false,
            analysed: 30,
        };
        assert_eq!(scan_line(&progress), "scan: 40/120 files, 1 failed, 12.3 files/s, ETA 6s, now /m/x.flac");
        let idle = pb::ScanProgress { current_path: String::new(), eta_s: 0.0, ..progress };
        assert_eq!(scan_line(&idle), "scan: 40/120 files, 1 failed, 12.3 files/s, ETA ?");
        let last = pb::ScanProgress { done: 120, total: 120, failed: 2, analysed: 30, finished: true, ..idle };
        assert_eq!(
            scan_summary(&last, Duration::from_millis(9800)),
            "scanned 120 files: 2 failed, 30 analysed, 88 unchanged (9.8 s, 12.2 files/s)"
        );
        assert_eq!(
            scan_summary(&pb::ScanProgress::default(), Duration::ZERO),
            "scanned 0 files: 0 failed, 0 analysed, 0 unchanged (0.0 s, 0.0 files/s)"
        );
    }

    #[test]
    fn plugins_list_kind_version_abi_and_refusals() {
        let response = pb::ListPluginsResponse {
            plugins: vec![pb::PluginInfo {
                name: "mel".into(),
                kind: pb::PluginKind::Feature as i32,
                version: "0.1.0".into(),
                abi_major: 1,
                abi_minor: 0,
                file: String::new(),
                metadata_json: "{}".into(),
            }],
            refused: vec![pb::RefusedPlugin { file: "/p/old.so".into(), reason: "ABI 0.1".into() }],
            ..Default::default()
        };
        assert_eq!(
            plugins(&response),
            "mel          feature    0.1.0    abi 1.0  (built in)\nrefused      /p/old.so: ABI 0.1\n"
        );
        assert_eq!(plugins(&pb::ListPluginsResponse::default()), "no plugins loaded\n");
    }
}
