//! Learning the user's labels: a head trained from the library's own genre tags, picked up by
//! the running daemon without a restart; the library drawn as a map; and the pictures of an
//! evaluation.

use std::path::{Path, PathBuf};
use std::process::Command;

use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::Channel;

use crate::serve::timbre_cli;
use crate::util::{eventually, gtzan_clips, gtzan_pool, run, runtime, text, timbred, Daemon};

const GENRES: &[&str] = &["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"];
/// Clips per genre, and artists they are shared among (two clips each).
const CLIPS: usize = 8;
const ARTISTS: usize = 4;

/// `from` copied to `to` with genre and artist tags written by ffmpeg.
fn tagged_copy(from: &Path, to: &Path, genre: &str, artist: &str) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(from)
        .args(["-map_metadata", "-1", "-metadata", &format!("genre={genre}"), "-metadata", &format!("artist={artist}")])
        .args(["-c", "copy"])
        .arg(to)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg tagging {}", from.display());
}

/// 10 genres × 8 pool clips, hip-hop spelt three ways, and two "Polka" tracks (too few).
/// Returns the number of tracks.
fn tagged_library(pool: &Path, root: &Path) -> usize {
    let mut n = 0;
    for genre in GENRES {
        let clips = gtzan_clips(pool, &[genre], CLIPS + 2);
        for (i, clip) in clips.iter().enumerate() {
            let (tag, artist) = match (i < CLIPS, *genre) {
                (true, "hiphop") => (["Hip-Hop", "hiphop", "Hip Hop"][i % 3], format!("MC {}", i % ARTISTS)),
                (true, _) => (*genre, format!("{genre} band {}", i % ARTISTS)),
                (false, "country") => ("Polka", "Polka Trio".to_string()),
                (false, _) => continue,
            };
            let name = clip.file_name().expect("name");
            tagged_copy(clip, &root.join(name), tag, &artist);
            n += 1;
        }
    }
    n
}

async fn models(client: &mut TimbreClient<Channel>) -> pb::ListPluginsResponse {
    client.list_plugins(pb::ListPluginsRequest::default()).await.expect("ListPlugins").into_inner()
}

async fn total(client: &mut TimbreClient<Channel>, model: &str) -> u64 {
    let request = pb::ListTracksRequest { model: model.into(), page_size: 1, ..Default::default() };
    client.list_tracks(request).await.expect("ListTracks").into_inner().total
}

/// The whole loop on real clips: the daemon analyses a tagged library; `train head
/// --from-library` learns its genre tags (merging spellings, dropping the rare label) from
/// the stored embeddings and beats chance on held-out artists; the folder copied into a model
/// path is served by the same daemon (ListPlugins, Classify) and run over the library, with no
/// restart; a broken folder beside it is refused by name while the daemon goes on.
#[test]
fn a_head_learnt_from_library_tags_is_served_without_a_restart() {
    let Some(pool) = gtzan_pool() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, data, models_dir) = (dir.path().join("music"), dir.path().join("data"), dir.path().join("models"));
    for d in [&root, &data, &models_dir] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let tracks = tagged_library(&pool, &root) as u64;
    let path_arg = |p: &PathBuf| p.display().to_string();
    let (root_s, data_s, models_s) = (path_arg(&root), path_arg(&data), path_arg(&models_dir));
    // Only musicnn (and the head to come) keeps the scan short on a small machine.
    let daemon = Daemon::start_with(
        &[
            "--execution-provider",
            "cpu",
            "--models",
            "musicnn-msd,mine",
            "--model-path",
            &models_s,
            "--root",
            &root_s,
            "--data-dir",
            &data_s,
        ],
        &[],
    );
    let rt = runtime();
    rt.block_on(async {
        let mut client = daemon.client().await;
        eventually("the library analysed by musicnn-msd", 600, async || {
            (total(&mut client, "musicnn-msd").await == tracks).then_some(())
        })
        .await;

        // Train from the stored embeddings while the daemon serves.
        let staging = dir.path().join("staging/mine");
        let output = run(timbred()
            .args(["train", "head", "--from-library", "--field", "genre", "--json", "--data-dir"])
            .arg(&data)
            .arg("--out")
            .arg(&staging));
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("dropped label 'Polka': 2 tracks, fewer than --min-tracks 5"), "{stderr}");
        let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        let labels: Vec<&str> =
            outcome["labels"].as_array().expect("labels").iter().filter_map(|l| l["label"].as_str()).collect();
        assert_eq!(labels.len(), 10, "{labels:?}");
        let hiphop = outcome["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .find(|l| l["label"] == "Hip Hop" || l["label"] == "Hip-Hop" || l["label"] == "hiphop")
            .expect("one hip-hop label");
        assert_eq!(hiphop["tracks"], 8, "the three spellings are one label: {hiphop}");
        assert_eq!(outcome["split_by"], "artist");
        let e = &outcome["evaluation"];
        let (accuracy, chance) =
            (e["accuracy"].as_f64().expect("accuracy"), e["chance_majority"].as_f64().expect("chance"));
        assert!(e["tracks"].as_u64().expect("tracks") >= 10, "{e}");
        assert!(
            accuracy >= 0.35 && accuracy > 3.0 * chance.max(0.1),
            "held-out accuracy {accuracy} against chance {chance}"
        );
        assert!(staging.join("confusion.png").is_file() && staging.join("CARD.md").is_file());

        // A broken folder first: refused by name, nothing else changes.
        std::fs::create_dir_all(models_dir.join("broken")).expect("mkdir");
        std::fs::write(models_dir.join("broken/model.toml"), "this is not [toml").expect("write");
        let listed = eventually("the broken folder refused", 60, async || {
            let listed = models(&mut client).await;
            listed.refused_models.iter().any(|r| r.file.ends_with("broken")).then_some(listed)
        })
        .await;
        assert_eq!(listed.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["musicnn-msd"]);

        // The new head, moved in whole: served without a restart.
        std::fs::rename(&staging, models_dir.join("mine")).expect("move into the model path");
        eventually("the new head in ListPlugins", 60, async || {
            models(&mut client).await.models.iter().any(|m| m.name == "mine").then_some(())
        })
        .await;
        let clip = root.join("metal.00026.flac");
        let clip = if clip.is_file() {
            clip
        } else {
            std::fs::read_dir(&root).expect("root").next().expect("a file").expect("entry").path()
        };
        let request = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Path(clip.display().to_string())),
            models: vec!["mine".into()],
            ..Default::default()
        };
        let answer = client.classify(request).await.expect("Classify with the new head").into_inner();
        assert_eq!(answer.predictions.len(), 1);
        let names: Vec<&str> = answer.predictions[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names.len(), 10, "{names:?}");

        // And the library gets the new head's predictions.
        eventually("the library analysed by the new head", 300, async || {
            (total(&mut client, "mine").await == tracks).then_some(())
        })
        .await;
    });

    // The library as a map, over gRPC, in pages smaller than the library: every track drawn
    // once, coloured by its genre tag or by the new head's label.
    let png = dir.path().join("map.png");
    let output =
        run(timbre_cli().args(["--addr", &daemon.addr, "--json", "map", "--page-size", "7", "--out"]).arg(&png));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let drawn: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(drawn["tracks"], tracks);
    let legend = drawn["legend"].as_array().expect("legend");
    let counted: u64 = legend.iter().filter_map(|l| l["tracks"].as_u64()).sum();
    assert_eq!(counted, tracks, "{legend:?}");
    assert!(legend.iter().any(|l| l["label"] == "Polka" && l["tracks"] == 2), "{legend:?}");
    let bytes = std::fs::read(&png).expect("map.png");
    let size = timbre_daemon::offline::plots::png_size(&bytes).expect("a PNG");
    assert_eq!(
        (u64::from(size.0), u64::from(size.1)),
        (drawn["width"].as_u64().expect("w"), drawn["height"].as_u64().expect("h"))
    );
    let svg = dir.path().join("map.svg");
    let output = run(timbre_cli().args(["--addr", &daemon.addr, "map", "--color-by", "label:mine", "--out"]).arg(&svg));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let svg = std::fs::read_to_string(&svg).expect("map.svg");
    assert!(svg.starts_with("<svg") && svg.contains("classical"), "an SVG with the head's labels in its legend");
    let log = daemon.log();
    assert!(log.contains("broken"), "the refusal names the folder:\n{log}");
}

/// `timbred eval --plots DIR` writes one confusion-matrix PNG per model beside eval.json; the
/// cells each picture drew are its model's matrix, and each PNG has the size drawn.
#[test]
fn eval_plots_are_pngs_of_the_numbers_beside_them() {
    let Some(pool) = gtzan_pool() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    for clip in gtzan_clips(&pool, &["classical", "metal", "jazz"], 3) {
        let label = clip.parent().and_then(|p| p.file_name()).expect("genre");
        std::fs::create_dir_all(data.join(label)).expect("mkdir");
        std::fs::copy(&clip, data.join(label).join(clip.file_name().expect("name"))).expect("copy");
    }
    let plots = dir.path().join("plots");
    let output = run(timbred()
        .args(["--execution-provider", "cpu", "--models", "cnn,pca-knn", "eval", "--data"])
        .arg(&data)
        .arg("--plots")
        .arg(&plots));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plots.join("eval.json")).expect("eval.json")).expect("JSON");
    let models = json["models"].as_array().expect("models");
    assert_eq!(models.len(), 3, "cnn, pca-knn and their ensemble");
    for (i, model) in models.iter().enumerate() {
        let name = model["model"].as_str().expect("name");
        let plot = &json["plots"][i];
        let png = std::fs::read(plots.join(format!("{name}.png"))).expect("a PNG per model");
        let size = timbre_daemon::offline::plots::png_size(&png).expect("a PNG header");
        assert_eq!(
            (u64::from(size.0), u64::from(size.1)),
            (plot["width"].as_u64().expect("w"), plot["height"].as_u64().expect("h"))
        );
        let matrix: Vec<Vec<String>> = model["confusion"]["matrix"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| row.as_array().expect("row").iter().map(|n| n.to_string()).collect())
            .collect();
        assert_eq!(plot["cells"], serde_json::json!(matrix), "{name}: the picture shows its numbers");
        assert_eq!(matrix.iter().flatten().map(|c| c.parse::<usize>().expect("count")).sum::<usize>(), 9);
    }
}

/// SIGHUP reloads the models too: a model path that did not exist at start-up (so nothing
/// watched it) gets a head folder, and after SIGHUP the daemon serves it.
#[test]
fn sighup_reloads_the_models() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models_dir = dir.path().join("models");
    let models_s = models_dir.display().to_string();
    let daemon = Daemon::start_with(
        &["--execution-provider", "cpu", "--models", "musicnn-msd,mine", "--model-path", &models_s],
        &[],
    );
    // The shipped genre head under another name, in a folder that appears after start-up.
    let mine = models_dir.join("mine");
    std::fs::create_dir_all(&mine).expect("mkdir");
    let shipped = crate::util::repo().join("plugins/models/genre");
    for entry in std::fs::read_dir(&shipped).expect("the genre head") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, mine.join(path.file_name().expect("name"))).expect("copy");
    }
    let manifest = std::fs::read_to_string(mine.join("model.toml")).expect("model.toml");
    std::fs::write(mine.join("model.toml"), manifest.replacen("name = \"genre\"", "name = \"mine\"", 1))
        .expect("write");
    let rt = runtime();
    rt.block_on(async {
        let mut client = daemon.client().await;
        assert!(!models(&mut client).await.models.iter().any(|m| m.name == "mine"), "not before SIGHUP");
        let sent = Command::new("kill").args(["-HUP", &daemon.child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success());
        eventually("the head after SIGHUP", 60, async || {
            models(&mut client).await.models.iter().any(|m| m.name == "mine").then_some(())
        })
        .await;
    });
    assert!(daemon.log().contains("SIGHUP: reloading the models"), "{}", daemon.log());
}
