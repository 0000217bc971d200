//! The daemon's configuration, layered with the `config` crate. Later layers win:
//!
//! built-in defaults < `/etc/timbre/timbre.toml` < `$XDG_CONFIG_HOME/timbre/timbre.toml`
//! < `--config FILE` < `TIMBRE_<SECTION>__<KEY>` environment variables < command-line flags.
//!
//! Every value remembers the layer it came from ([`Provenance`]), so `timbred config` can
//! print it and a bad value is reported with its key and the file that set it.

mod layers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sources::LiveSourceConfig;

/// Keys holding arrays of tables, whose fields serde checks (they have no defaults to list).
const TABLE_ARRAYS: &[&str] = &["live"];

pub use layers::{Flags, Provenance};

/// Everything `timbred serve` reads from its configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub library: LibrarySettings,
    pub workers: WorkerSettings,
    pub models: ModelSettings,
    pub plugins: PluginSettings,
    pub analysis: AnalysisSettings,
    /// The vector index behind `Recommend` and `Playlist`.
    pub index: crate::index::IndexConfig,
    pub recommend: RecommendSettings,
    /// Writing what the analysis found into the audio files' tags (`timbred tag`).
    pub tagging: crate::tagging::TaggingSettings,
    /// Live sources (sound cards, network streams), each a `[[live]]` table; see
    /// [`LiveSourceConfig`]. Not serialised: there is none by default.
    #[serde(skip_serializing)]
    pub live: Vec<LiveSourceConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// gRPC address. Loopback unless you mean to serve the network.
    pub listen: String,
    /// Largest gRPC request accepted (uploaded files, PCM), in MiB.
    pub max_request_mib: u64,
    /// Longest audio accepted in one `Classify` request, in seconds.
    pub max_audio_seconds: f64,
    /// On shutdown, how long in-flight calls may take before the daemon exits anyway, in seconds.
    pub shutdown_grace_s: f64,
    /// Serve gRPC reflection, through which tools such as grpcurl list and call the API.
    pub reflection: bool,
    /// Calls one client connection may have open at once (HTTP/2 streams); more wait.
    pub max_concurrent_streams: u32,
    /// Listen on an address other than loopback without bearer tokens, letting anyone who can
    /// reach it call every RPC (flag `--insecure-listen`).
    pub insecure_listen: bool,
    pub tls: TlsSettings,
    pub auth: AuthSettings,
}

/// TLS for the gRPC server: on when `cert` and `key` are set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM). Empty: no TLS.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// A CA certificate (PEM): when set, clients must present a certificate it signed.
    pub client_ca: PathBuf,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty()
    }
}

/// Who may call the daemon.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// A file of bearer tokens, one per line, readable by the daemon's user alone (flag
    /// `--auth-token-file`). Empty: no tokens, every call is accepted.
    pub tokens_file: PathBuf,
}

impl AuthSettings {
    pub fn enabled(&self) -> bool {
        !self.tokens_file.as_os_str().is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LibrarySettings {
    /// Folders whose audio files make up the library. Only files under them are read.
    pub roots: Vec<PathBuf>,
    /// Where the library database (and later the vector index) lives.
    pub data_dir: PathBuf,
    /// Follow changes under the roots as they happen (otherwise only scans see them).
    pub watch: bool,
    /// Quiet time after a change before it is picked up, in milliseconds.
    pub debounce_ms: u64,
    /// A new file is analysed once its size has not changed for this long (it may still be
    /// being copied in), in milliseconds.
    pub settle_ms: u64,
    /// File extensions treated as audio (lower case, no dot).
    pub extensions: Vec<String>,
    /// The models the scans and the watcher run on library tracks, by name; empty: every
    /// loaded model. A head brings the model it reads, whose predictions are stored too.
    /// `Classify` may still ask for any loaded model. A name that is not loaded is an error
    /// at start-up.
    pub models: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Analysis threads; 0 means one per core.
    pub threads: usize,
    /// Jobs that may wait for a worker before submitters are made to wait.
    pub queue: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// Extra folders holding model folders, searched after TIMBRE_MODEL_PATH and before the
    /// shipped models.
    pub paths: Vec<PathBuf>,
    /// Use only these models, by name; empty: every model found.
    pub only: Vec<String>,
    /// `libonnxruntime.so`; empty: ORT_DYLIB_PATH, then the project's `.onnxruntime/`.
    pub onnxruntime: String,
    /// Where ONNX models run: "auto", "cpu" or "cuda".
    pub execution_provider: String,
    /// Threads inside one ONNX Runtime call (workers already run in parallel), 1 to 256.
    pub intra_threads: usize,
    /// How much ONNX Runtime optimises a model's graph when loading it: "disable", "basic",
    /// "extended" or "all" (its default, and the fastest).
    pub graph_optimization: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisSettings {
    /// Run every loaded descriptor plugin (tempo, key, loudness) on each analysed track.
    pub descriptors: bool,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings { descriptors: true }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// Extra plugin files or directories, searched after TIMBRE_PLUGIN_PATH.
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendSettings {
    /// The embedding space searched when a request names none: a model's name. Empty: the
    /// first of `preferred` that is loaded, else the first model loaded.
    pub model: String,
    /// Spaces tried in order when `model` is empty: by default the best shipped model
    /// (docs/EVALUATION.md).
    pub preferred: Vec<String>,
    /// Tracks returned when a request does not say, and at most.
    pub default_limit: usize,
    pub max_limit: usize,
    /// Playlist length when a request does not say, and at most.
    pub default_length: usize,
    pub max_length: usize,
    /// Listening history (RecordListen), used by requests that ask for it: tracks played this
    /// many seconds ago or less are left out.
    pub recent_window_s: f64,
    /// A skip after at most this many seconds of play is a negative example.
    pub quick_skip_s: f64,
    /// How far back listens are read as positive and negative examples, in seconds.
    pub history_lookback_s: f64,
    /// Most tracks taken from the history as examples, each kind (the latest first).
    pub history_examples: usize,
}

impl Default for RecommendSettings {
    fn default() -> Self {
        RecommendSettings {
            model: String::new(),
            preferred: vec!["musicnn-msd".into(), "cnn".into()],
            default_limit: 10,
            max_limit: 200,
            default_length: 20,
            max_length: 500,
            recent_window_s: 3.0 * 3600.0,
            quick_skip_s: 30.0,
            history_lookback_s: 30.0 * 86400.0,
            history_examples: 20,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:50051".into(),
            max_request_mib: 64,
            max_audio_seconds: 1800.0,
            shutdown_grace_s: 10.0,
            reflection: true,
            max_concurrent_streams: 64,
            insecure_listen: false,
            tls: TlsSettings::default(),
            auth: AuthSettings::default(),
        }
    }
}

impl Default for LibrarySettings {
    fn default() -> Self {
        LibrarySettings {
            roots: Vec::new(),
            data_dir: default_data_dir(),
            watch: true,
            debounce_ms: 1000,
            settle_ms: 1000,
            extensions: ["flac", "mp3", "ogg", "oga", "wav", "m4a", "aac", "alac", "mp4"].map(String::from).to_vec(),
            models: Vec::new(),
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings { threads: 0, queue: 32 }
    }
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            paths: Vec::new(),
            only: Vec::new(),
            onnxruntime: String::new(),
            execution_provider: "auto".into(),
            intra_threads: 1,
            graph_optimization: "all".into(),
        }
    }
}

/// `$XDG_DATA_HOME/timbre`, else `~/.local/share/timbre`.
fn default_data_dir() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share").join("timbre")
}

fn xdg_dir(variable: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/")).join(fallback),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration")]
    Load(#[from] config::ConfigError),
    #[error("configuration file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("configuration: unknown key `{key}` in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("configuration: {key} = {value} (from {origin}): {reason}")]
    Invalid { key: String, value: String, origin: String, reason: String },
}

/// The effective settings and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub provenance: Provenance,
}

impl Settings {
    /// Load every layer; `config_file` is `--config`, which must exist when given.
    pub fn load(config_file: Option<&Path>, flags: &Flags) -> Result<Loaded, ConfigError> {
        let files = [
            (PathBuf::from("/etc/timbre/timbre.toml"), false),
            (xdg_dir("XDG_CONFIG_HOME", ".config").join("timbre/timbre.toml"), false),
        ];
        let mut files: Vec<(PathBuf, bool)> = files.into();
        if let Some(file) = config_file {
            files.push((file.to_path_buf(), true));
        }
        let (settings, provenance) = layers::load(&Settings::default(), &files, flags)?;
        let loaded = Loaded { settings, provenance };
        loaded.validate()?;
        Ok(loaded)
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().expect("validated at load")
    }

    /// Worker threads, with 0 resolved to the number of cores.
    pub fn worker_threads(&self) -> usize {
        match self.workers.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.library.data_dir.join("library.sqlite3")
    }

    pub fn model_options(&self) -> crate::models::ModelOptions {
        crate::models::ModelOptions {
            paths: self.models.paths.clone(),
            onnxruntime: (!self.models.onnxruntime.is_empty()).then(|| PathBuf::from(&self.models.onnxruntime)),
            execution_provider: self.models.execution_provider.clone(),
            intra_threads: self.models.intra_threads,
            graph_optimization: self.models.graph_optimization.clone(),
            only: self.models.only.clone(),
        }
    }
}

impl Loaded {
    /// `library.models` against the models that loaded (known only once they have): each name
    /// must be one of them.
    pub fn check_library_models(&self, loaded: &[String]) -> Result<(), ConfigError> {
        let key = "library.models";
        match self.settings.library.models.iter().find(|m| !loaded.contains(m)) {
            Some(unknown) => Err(invalid(
                key,
                unknown,
                self.provenance.origin(key),
                &format!("no loaded model has this name (loaded: {})", loaded.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// Checks a type alone cannot make; each error names the key and the layer that set it.
    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        let origin = |key: &str| self.provenance.origin(key);
        check_values(s, &origin)?;
        let invalid = |key: &str, value: &dyn std::fmt::Debug, reason: &str| invalid(key, value, origin(key), reason);
        for root in &s.library.roots {
            if !root.is_dir() {
                return Err(invalid("library.roots", root, "not a directory"));
            }
        }
        let tls = &s.server.tls;
        match (tls.cert.as_os_str().is_empty(), tls.key.as_os_str().is_empty()) {
            (false, true) => return Err(invalid("server.tls.cert", &tls.cert, "server.tls.key must be set too")),
            (true, false) => return Err(invalid("server.tls.key", &tls.key, "server.tls.cert must be set too")),
            _ => {}
        }
        if !tls.client_ca.as_os_str().is_empty() && !tls.enabled() {
            return Err(invalid("server.tls.client_ca", &tls.client_ca, "needs server.tls.cert and server.tls.key"));
        }
        let r = &s.recommend;
        for (key, value, max_key, max) in [
            ("recommend.default_limit", r.default_limit, "recommend.max_limit", r.max_limit),
            ("recommend.default_length", r.default_length, "recommend.max_length", r.max_length),
        ] {
            if value > max {
                let reason = format!("more than {max_key} = {max} (from {})", origin(max_key));
                return Err(invalid(key, &value, &reason));
            }
        }
        let mut names = std::collections::HashSet::new();
        for source in &s.live {
            if !names.insert(source.name.as_str()) {
                return Err(invalid("live", &source.name, "two live sources have this name"));
            }
        }
        Ok(())
    }
}

fn invalid(key: &str, value: &dyn std::fmt::Debug, origin: String, reason: &str) -> ConfigError {
    ConfigError::Invalid { key: key.into(), value: format!("{value:?}"), origin, reason: reason.into() }
}

/// The checks of one key's value alone, without I/O: run on the merged settings and on each
/// file and the environment by itself, so a bad value is an error even where a later layer
/// overrides it. `origin` names the layer that set a key.
fn check_values(s: &Settings, origin: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    let invalid = |key: &str, value: &dyn std::fmt::Debug, reason: &str| invalid(key, value, origin(key), reason);
    if s.server.listen.parse::<SocketAddr>().is_err() {
        return Err(invalid("server.listen", &s.server.listen, "expected an address like 127.0.0.1:50051"));
    }
    if s.server.max_request_mib == 0 {
        return Err(invalid("server.max_request_mib", &0, "must be at least 1"));
    }
    // Written so that NaN fails too.
    if s.server.max_audio_seconds.is_nan() || s.server.max_audio_seconds <= 0.0 {
        return Err(invalid("server.max_audio_seconds", &s.server.max_audio_seconds, "must be positive"));
    }
    if s.server.shutdown_grace_s.is_nan() || s.server.shutdown_grace_s < 0.0 {
        return Err(invalid("server.shutdown_grace_s", &s.server.shutdown_grace_s, "must not be negative"));
    }
    if s.server.max_concurrent_streams == 0 {
        return Err(invalid("server.max_concurrent_streams", &0, "must be at least 1"));
    }
    if s.workers.queue == 0 {
        return Err(invalid("workers.queue", &0, "must be at least 1"));
    }
    if !["auto", "cpu", "cuda"].contains(&s.models.execution_provider.as_str()) {
        return Err(invalid("models.execution_provider", &s.models.execution_provider, "expected auto, cpu or cuda"));
    }
    if !(1..=256).contains(&s.models.intra_threads) {
        return Err(invalid("models.intra_threads", &s.models.intra_threads, "expected 1 to 256"));
    }
    if !["disable", "basic", "extended", "all"].contains(&s.models.graph_optimization.as_str()) {
        let reason = "expected disable, basic, extended or all";
        return Err(invalid("models.graph_optimization", &s.models.graph_optimization, reason));
    }
    for root in &s.library.roots {
        if !root.is_absolute() {
            return Err(invalid("library.roots", root, "library roots must be absolute paths"));
        }
    }
    if s.library.models.iter().any(|m| m.trim().is_empty()) {
        return Err(invalid("library.models", &s.library.models, "a model name is empty"));
    }
    if !s.library.data_dir.is_absolute() {
        return Err(invalid("library.data_dir", &s.library.data_dir, "must be an absolute path"));
    }
    s.index.validate().map_err(|e| ConfigError::Invalid {
        key: "index".into(),
        value: format!("{:?}", s.index.backend),
        origin: origin("index.backend"),
        reason: e.to_string(),
    })?;
    s.tagging.validate().map_err(|(key, value, reason)| invalid(&key, &value, &reason))?;
    let r = &s.recommend;
    for (key, value) in [
        ("recommend.default_limit", r.default_limit),
        ("recommend.max_limit", r.max_limit),
        ("recommend.default_length", r.default_length),
        ("recommend.max_length", r.max_length),
    ] {
        if value == 0 {
            return Err(invalid(key, &value, "must be at least 1"));
        }
    }
    for (key, value) in [
        ("recommend.recent_window_s", r.recent_window_s),
        ("recommend.quick_skip_s", r.quick_skip_s),
        ("recommend.history_lookback_s", r.history_lookback_s),
    ] {
        if value.is_nan() || value < 0.0 {
            return Err(invalid(key, &value, "must not be negative"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in docs/CONFIGURATION.md is a valid configuration: every key known, every
    /// type right, both kinds of live source.
    #[test]
    fn the_documented_example_loads() {
        let doc = include_str!("../../../docs/CONFIGURATION.md");
        let example = doc.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a toml block");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("timbre.toml");
        std::fs::write(&file, example).expect("write");
        let (settings, provenance) =
            layers::load(&Settings::default(), &[(file.clone(), true)], &Flags::default()).expect("loads");
        assert_eq!(settings.live.len(), 2);
        assert_eq!(settings.workers.queue, 32);
        assert_eq!(provenance.origin("library.roots"), file.display().to_string());
    }

    /// `text` as the `--config` file, with `flags` over it: the loaded settings or the error
    /// as `timbred` prints it, and the file's name.
    fn load_file(text: &str, flags: &Flags) -> (Result<Loaded, String>, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("timbre.toml");
        std::fs::write(&file, text).expect("write");
        let loaded =
            layers::load(&Settings::default(), &[(file.clone(), true)], flags).and_then(|(settings, provenance)| {
                let loaded = Loaded { settings, provenance };
                loaded.validate().map(|()| loaded)
            });
        (loaded.map_err(|e| format!("{:#}", anyhow::Error::from(e))), file.display().to_string())
    }

    #[test]
    fn a_bad_recommend_value_names_its_key_and_file() {
        let (loaded, file) = load_file("[recommend]\ndefault_limit = 300\n", &Flags::default());
        let error = loaded.expect_err("default above the maximum");
        assert!(error.contains("recommend.default_limit = 300") && error.contains(&file), "{error}");
        assert!(error.contains("recommend.max_limit = 200 (from built-in default)"), "{error}");
        assert!(!error.contains("RecommendSettings"), "no debug struct: {error}");

        let (loaded, file) = load_file("[recommend]\nmax_length = 0\n", &Flags::default());
        let error = loaded.expect_err("zero");
        assert!(error.contains("recommend.max_length = 0") && error.contains(&file), "{error}");
    }

    #[test]
    fn a_bad_value_in_a_file_is_an_error_even_when_a_flag_overrides_it() {
        let mut flags = Flags::default();
        flags.set("server.listen", "--listen", "127.0.0.1:6000");
        let (loaded, file) = load_file("[server]\nlisten = 12345\n", &flags);
        let error = loaded.expect_err("not an address");
        assert!(error.contains("server.listen") && error.contains(&file), "{error}");

        let (loaded, file) =
            load_file("[workers]\nthreads = \"many\"\n", flags.set("workers.threads", "--workers", 2_i64));
        let error = loaded.expect_err("not a number");
        assert!(error.contains("workers.threads") && error.contains(&file), "{error}");

        let (loaded, _) = load_file("[server]\nlisten = \"127.0.0.1:1\"\n", &flags);
        assert_eq!(loaded.expect("a good value, overridden").settings.server.listen, "127.0.0.1:6000");
    }

    #[test]
    fn onnx_runtime_options_are_checked_naming_their_key_and_file() {
        let (loaded, file) = load_file("[models]\ngraph_optimization = \"fast\"\n", &Flags::default());
        let error = loaded.expect_err("not a level");
        assert!(error.contains("models.graph_optimization = \"fast\"") && error.contains(&file), "{error}");
        assert!(error.contains("disable, basic, extended or all"), "{error}");
        for threads in [0, 257] {
            let (loaded, file) = load_file(&format!("[models]\nintra_threads = {threads}\n"), &Flags::default());
            let error = loaded.expect_err("out of range");
            assert!(error.contains(&format!("models.intra_threads = {threads}")) && error.contains(&file), "{error}");
        }
        let (loaded, _) = load_file("[models]\ngraph_optimization = \"basic\"\nintra_threads = 4\n", &Flags::default());
        let options = loaded.expect("good values").settings.model_options();
        assert_eq!((options.graph_optimization.as_str(), options.intra_threads), ("basic", 4));
    }

    #[test]
    fn library_models_must_be_loaded_models_named_in_the_error() {
        let (loaded, file) = load_file("[library]\nmodels = [\"genre\", \"nope\"]\n", &Flags::default());
        let loaded = loaded.expect("names are checked once models have loaded");
        let names = ["musicnn-msd".to_string(), "genre".to_string()];
        let error = format!("{:#}", anyhow::Error::from(loaded.check_library_models(&names).expect_err("unknown")));
        assert!(error.contains("library.models = \"nope\"") && error.contains(&file), "{error}");
        assert!(error.contains("loaded: musicnn-msd, genre"), "{error}");
        let (loaded, _) = load_file("[library]\nmodels = [\"genre\"]\n", &Flags::default());
        assert!(loaded.expect("loads").check_library_models(&names).is_ok());
        let (loaded, _) = load_file("[library]\nmodels = [\"\"]\n", &Flags::default());
        assert!(loaded.expect_err("empty name").contains("library.models"));
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key_and_streams_at_least_one() {
        let (loaded, file) = load_file("[server.tls]\ncert = \"/etc/timbre/server.pem\"\n", &Flags::default());
        let error = loaded.expect_err("no key");
        assert!(error.contains("server.tls.cert") && error.contains("server.tls.key must be set too"), "{error}");
        assert!(error.contains(&file), "{error}");
        let (loaded, _) = load_file("[server.tls]\nclient_ca = \"/etc/timbre/ca.pem\"\n", &Flags::default());
        assert!(loaded.expect_err("no TLS").contains("server.tls.client_ca"));
        let (loaded, _) = load_file("[server]\nmax_concurrent_streams = 0\n", &Flags::default());
        assert!(loaded.expect_err("zero").contains("server.max_concurrent_streams"));
        let (loaded, _) = load_file(
            "[server.tls]\ncert = \"/s.pem\"\nkey = \"/s.key\"\n[server.auth]\ntokens_file = \"/t\"\n",
            &Flags::default(),
        );
        let settings = loaded.expect("TLS and tokens").settings;
        assert!(settings.server.tls.enabled() && settings.server.auth.enabled());
    }
}
