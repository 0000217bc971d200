//! The engine over the fake plugins: no ONNX Runtime, no `.so`, no network port.

use std::sync::Arc;

use super::*;
use crate::plugin_host::fakes;

/// A running engine with the fake models `models`, in that order, and an empty library.
pub(crate) async fn engine(models: &[&str], max_audio_seconds: f64) -> (Arc<Engine>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::default();
    settings.library.data_dir = dir.path().to_path_buf();
    settings.workers.threads = 1;
    settings.server.max_audio_seconds = max_audio_seconds;
    let engine = Engine::start_with(settings, SearchPath::default(), fakes::registry(), fakes::catalog(models))
        .await
        .expect("the engine starts");
    (engine, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_runs_the_models_asked_for_in_catalogue_order() {
    let (engine, _dir) = engine(&["zeta", "alpha"], 600.0).await;
    let all = engine.classify(fakes::tone(0.25, 2.0), &[]).await.expect("classify");
    let models: Vec<&str> = all.predictions.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(models, ["zeta", "alpha"], "the catalogue's order, not the alphabet's");
    assert_eq!(all.predictions[0].probabilities, [0.75, 0.25]);
    assert!((all.duration_s - 2.0).abs() < 1e-6);
    let one = engine.classify(fakes::tone(0.25, 2.0), &["alpha".into()]).await.expect("classify");
    assert_eq!(one.predictions.iter().map(|p| p.model.as_str()).collect::<Vec<_>>(), ["alpha"]);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_over_the_limit_is_refused_as_too_long() {
    let (engine, _dir) = engine(&["fake"], 3.0).await;
    engine.classify(fakes::tone(0.25, 2.5), &[]).await.expect("under the limit");
    let error = engine.classify(fakes::tone(0.25, 4.0), &[]).await.expect_err("over the limit");
    assert!(matches!(error, EngineError::AudioTooLong(_)), "{error:?}");
    assert!(error.to_string().contains("longer than the limit of 3 s"), "{error}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mistake_is_named_by_what_went_wrong() {
    let (engine, _dir) = engine(&["fake"], 600.0).await;
    let error = engine.classify(fakes::tone(0.25, 1.0), &["nope".into()]).await.expect_err("unknown model");
    assert_eq!(error.to_string(), "no model named 'nope' is loaded (loaded: fake)");
    assert!(matches!(error, EngineError::UnknownModel { .. }));
    let missing = AudioInput::File("/no/such/file.flac".into());
    assert!(matches!(engine.classify(missing, &[]).await, Err(EngineError::NoSuchFile(_))));
    assert!(matches!(engine.library_path(Path::new("relative.flac")), Err(EngineError::RelativePath(_))));
    assert!(matches!(engine.library_path(Path::new("/etc/passwd")), Err(EngineError::OutsideRoots(_))));
    let error = engine.track(TrackKey::Id(5)).await.expect_err("empty library");
    assert_eq!(error.to_string(), "no track with id 5");
    assert!(matches!(engine.watch_live(None), Err(EngineError::NoLiveSources)));
    let garbage = AudioInput::Encoded { name: "upload.wav".into(), bytes: b"RIFF and then nothing".to_vec().into() };
    let error = engine.classify(garbage, &[]).await.expect_err("not audio");
    assert!(matches!(error, EngineError::BadAudio(_)) && error.to_string().starts_with("upload.wav: "), "{error:?}");
    engine.shutdown().await;
}
