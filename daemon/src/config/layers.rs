//! Building the layers, merging them, and remembering where each value came from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use config::{Config, ConfigError as LoadError, FileFormat, Map, Source, Value, ValueKind};

use super::{ConfigError, Settings};

const DEFAULT_ORIGIN: &str = "built-in default";

/// Keys whose values are secrets: recorded as `<redacted>` when set, so `timbred config` can be
/// pasted into a bug report.
const SECRET_KEYS: &[&str] = &["index.qdrant.api_key"];

/// Settings given as command-line flags: the last and strongest layer.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    values: Vec<(String, ValueKind, String)>,
}

impl Flags {
    /// `key` (dotted, e.g. "server.listen") set by `flag` (e.g. "--listen").
    pub fn set(&mut self, key: &str, flag: &str, value: impl Into<ValueKind>) -> &mut Self {
        self.values.push((key.into(), value.into(), flag.into()));
        self
    }

    pub fn set_paths(&mut self, key: &str, flag: &str, paths: &[PathBuf]) -> &mut Self {
        if !paths.is_empty() {
            let list: Vec<Value> =
                paths.iter().map(|p| Value::new(None, ValueKind::String(p.display().to_string()))).collect();
            self.set(key, flag, ValueKind::Array(list));
        }
        self
    }
}

/// Each effective key (dotted), its value as text and the layer that set it.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    entries: BTreeMap<String, (String, String)>,
}

impl Provenance {
    /// Where `key` (or the nearest enclosing key that is recorded) came from.
    pub fn origin(&self, key: &str) -> String {
        let mut key = key;
        loop {
            if let Some((_, origin)) = self.entries.get(key) {
                return origin.clone();
            }
            match key.rsplit_once('.') {
                Some((parent, _)) => key = parent,
                None => return DEFAULT_ORIGIN.into(),
            }
        }
    }

    /// `(key, value, origin)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.entries.iter().map(|(k, (v, o))| (k.as_str(), v.as_str(), o.as_str()))
    }
}

/// A fixed map of values that all share one origin (the defaults, the flags).
#[derive(Debug, Clone)]
struct Layer {
    values: Map<String, Value>,
}

impl Source for Layer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, LoadError> {
        Ok(self.values.clone())
    }
}

fn stamp(value: Value, origin: &String) -> Value {
    let kind = match value.kind {
        ValueKind::Table(table) => ValueKind::Table(table.into_iter().map(|(k, v)| (k, stamp(v, origin))).collect()),
        ValueKind::Array(items) => ValueKind::Array(items.into_iter().map(|v| stamp(v, origin)).collect()),
        kind => kind,
    };
    Value::new(Some(origin), kind)
}

fn defaults_layer(defaults: &Settings) -> Result<Layer, LoadError> {
    let origin = DEFAULT_ORIGIN.to_string();
    let values = Config::try_from(defaults)?.collect()?;
    Ok(Layer { values: values.into_iter().map(|(k, v)| (k, stamp(v, &origin))).collect() })
}

fn flags_layer(flags: &Flags) -> Layer {
    let values = flags
        .values
        .iter()
        .map(|(key, kind, flag)| (key.clone(), stamp(Value::new(None, kind.clone()), &format!("flag {flag}"))))
        .collect();
    Layer { values }
}

/// `TIMBRE_SECTION__KEY=value`. Only names with `__` are settings: TIMBRE_LOG, TIMBRE_PLUGIN_PATH
/// and TIMBRE_MODEL_PATH are read where they are used. Lists are colon-separated.
fn environment_layer() -> config::Environment {
    let settings: Map<String, String> = std::env::vars()
        .filter(|(name, _)| name.strip_prefix("TIMBRE_").is_some_and(|rest| rest.contains("__")))
        .collect();
    let mut env = config::Environment::with_prefix("TIMBRE")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .list_separator(":")
        .source(Some(settings));
    for key in ["library.roots", "library.extensions", "models.paths", "models.only", "plugins.paths"] {
        env = env.with_list_parse_key(key);
    }
    env
}

pub(super) fn load(
    defaults: &Settings,
    files: &[(PathBuf, bool)],
    flags: &Flags,
) -> Result<(Settings, Provenance), ConfigError> {
    // Known keys, and the defaults `config` drops (empty lists), come from serde's own view.
    let mut default_entries = BTreeMap::new();
    flatten_json("", &serde_json::to_value(defaults).expect("settings serialise"), &mut default_entries);
    for key in super::TABLE_ARRAYS {
        default_entries.insert(key.to_string(), "[]".into());
    }
    let known: BTreeSet<String> = default_entries.keys().cloned().collect();
    let defaults = defaults_layer(defaults)?;

    let mut builder = Config::builder().add_source(defaults.clone());
    for (path, required) in files {
        if *required && !path.is_file() {
            return Err(
                LoadError::Message(format!("the file {} given with --config does not exist", path.display())).into()
            );
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(error) => return Err(ConfigError::File { path: path.clone(), reason: error.to_string() }),
        };
        // Read here rather than by `config::File`, whose origin would be a path relative to the
        // working directory; errors should name the file as the user knows it.
        let origin = path.display().to_string();
        let values = config::File::from_str(&text, FileFormat::Toml)
            .collect()
            .map_err(|e| ConfigError::File { path: path.clone(), reason: e.to_string() })?;
        check_known(&values, &known, &origin)?;
        let layer = Layer { values: values.into_iter().map(|(k, v)| (k, stamp(v, &origin))).collect() };
        check_layer(&defaults, layer.clone(), &origin)?;
        builder = builder.add_source(layer);
    }
    let env = environment_layer();
    check_known(&env.collect()?, &known, "the environment")?;
    check_layer(&defaults, env.clone(), "the environment")?;
    let flags = flags_layer(flags);
    builder = builder.add_source(env).add_source(flags);

    let merged = builder.build()?;
    let mut provenance = Provenance::default();
    record("", &merged.collect()?, &mut provenance);
    for (key, value) in default_entries.into_iter().filter(|(_, v)| !v.is_empty()) {
        provenance.entries.entry(key).or_insert_with(|| (value, DEFAULT_ORIGIN.into()));
    }
    let settings = merged.try_deserialize::<Settings>()?;
    Ok((settings, provenance))
}

/// One layer over the defaults, read and checked by itself: a bad value in a file or the
/// environment is an error even when a later layer overrides it (`listen = 12345` in a file
/// would otherwise go unnoticed until the day `--listen` is dropped).
fn check_layer(defaults: &Layer, layer: impl Source + Send + Sync + 'static, origin: &str) -> Result<(), ConfigError> {
    let settings = Config::builder().add_source(defaults.clone()).add_source(layer).build()?.try_deserialize()?;
    super::check_values(&settings, &|_| origin.to_string())
}

/// Every table path and leaf of the defaults, with the leaves' values as TOML would write them.
/// Below an array (`[[live]]`) serde checks the fields.
fn flatten_json(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                if value.is_object() {
                    flatten_json(&path, value, out);
                    out.insert(path, String::new());
                } else {
                    out.insert(path, value.to_string());
                }
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn flatten_keys(prefix: &str, table: &Map<String, Value>, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        if let ValueKind::Table(inner) = &value.kind {
            flatten_keys(&path, inner, out);
        }
        out.insert(path);
    }
}

fn check_known(values: &Map<String, Value>, known: &BTreeSet<String>, origin: &str) -> Result<(), ConfigError> {
    let mut keys = BTreeSet::new();
    // Environment keys arrive dotted ("server.listen"); file keys arrive nested.
    for (key, value) in values {
        if let ValueKind::Table(inner) = &value.kind {
            flatten_keys(key, inner, &mut keys);
        }
        keys.insert(key.clone());
    }
    match keys.into_iter().find(|k| !known.contains(k)) {
        Some(key) => Err(ConfigError::UnknownKey { key, origin: origin.into() }),
        None => Ok(()),
    }
}

fn record(prefix: &str, table: &Map<String, Value>, out: &mut Provenance) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match &value.kind {
            ValueKind::Table(inner) => record(&path, inner, out),
            _ => {
                let origin = value.origin().unwrap_or(DEFAULT_ORIGIN).to_string();
                let mut text = display(value);
                if SECRET_KEYS.contains(&path.as_str()) && text != "\"\"" {
                    text = "<redacted>".into();
                }
                out.entries.insert(path, (text, origin));
            }
        }
    }
}

/// A value as TOML would write it.
fn display(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "\"\"".into(),
        ValueKind::String(s) => format!("{s:?}"),
        ValueKind::Array(items) => format!("[{}]", items.iter().map(display).collect::<Vec<_>>().join(", ")),
        ValueKind::Table(table) => {
            let fields: Vec<String> = table.iter().map(|(k, v)| format!("{k} = {}", display(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn later_layers_win_and_each_value_knows_its_layer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let low = write(dir.path(), "low.toml", "[server]\nlisten = \"127.0.0.1:1\"\n[workers]\nqueue = 7\n");
        let high = write(dir.path(), "high.toml", "[server]\nlisten = \"127.0.0.1:2\"\n");
        let mut flags = Flags::default();
        flags.set("workers.threads", "--threads", 3_i64);
        let (settings, provenance) =
            load(&Settings::default(), &[(low.clone(), true), (high.clone(), true)], &flags).expect("loads");
        assert_eq!(settings.server.listen, "127.0.0.1:2");
        assert_eq!(settings.workers.queue, 7);
        assert_eq!(settings.workers.threads, 3);
        assert_eq!(provenance.origin("server.listen"), high.display().to_string());
        assert_eq!(provenance.origin("workers.queue"), low.display().to_string());
        assert_eq!(provenance.origin("workers.threads"), "flag --threads");
        assert_eq!(provenance.origin("server.max_request_mib"), DEFAULT_ORIGIN);
    }

    /// The message as `timbred` prints it (`{:#}`): the error and its causes.
    fn chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }

    #[test]
    fn a_wrong_type_names_the_key_and_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "bad.toml", "[workers]\nthreads = \"many\"\n");
        let error = load(&Settings::default(), &[(file.clone(), true)], &Flags::default()).expect_err("bad type");
        let message = chain(&error);
        assert!(message.contains("workers.threads") && message.contains(&file.display().to_string()), "{message}");
    }

    #[test]
    fn secrets_are_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "secret.toml", "[index.qdrant]\napi_key = \"s3cret-key\"\n");
        let (settings, provenance) =
            load(&Settings::default(), &[(file.clone(), true)], &Flags::default()).expect("loads");
        assert_eq!(settings.index.qdrant.api_key, "s3cret-key", "the daemon still gets it");
        let printed: Vec<String> = provenance.iter().map(|(k, v, o)| format!("{k} = {v} # {o}")).collect();
        assert!(printed.iter().all(|line| !line.contains("s3cret")), "{printed:#?}");
        let line = printed.iter().find(|l| l.starts_with("index.qdrant.api_key = ")).expect("listed");
        assert!(line.contains("<redacted>") && line.contains(&file.display().to_string()), "{line}");

        let (_, provenance) = load(&Settings::default(), &[], &Flags::default()).expect("loads");
        let unset = provenance.iter().find(|(k, _, _)| *k == "index.qdrant.api_key").expect("listed");
        assert_eq!(unset.1, "\"\"", "an empty key shows that it is empty");
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "typo.toml", "[server]\nlisen = \"127.0.0.1:1\"\n");
        let error = load(&Settings::default(), &[(file.clone(), true)], &Flags::default()).expect_err("typo");
        let message = error.to_string();
        assert!(message.contains("server.lisen") && message.contains(&file.display().to_string()), "{message}");
    }
}
