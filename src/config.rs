//! Configuration: one TOML file; every key documented on the struct that holds it. Unknown
//! keys are errors. `alertctx.example.toml` at the repository root shows every section.

use crate::dedup::DedupConfig;
use crate::normalize::Route;
use crate::sanitize::SafetyConfig;
use crate::score::QualityConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Input → source routes, tried in order before shape detection.
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dedup: DedupConfig,
    #[serde(default)]
    pub quality: QualityConfig,
    /// Neutralising untrusted text (the bundle's `safety` layer).
    #[serde(default)]
    pub safety: SafetyConfig,
    /// The Kafka worker (`alertctx run`); not needed by `alertctx process`.
    pub kafka: Option<KafkaConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `[kafka]`: the worker's consumer group, topics, batching and delivery settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated host:port list.
    pub brokers: String,
    /// Consumer group; every worker of one fleet uses the same id.
    pub group_id: String,
    /// Raw topics to consume.
    pub topics: Vec<String>,
    /// Topic bundles are written to, keyed by the alert's main entity (see the README).
    pub output_topic: String,
    /// Topic dead-letter records are written to: the original bytes as the value, reason and
    /// source coordinates in headers.
    pub dlq_topic: String,
    /// Most consumed messages whose outputs are not all acknowledged; consumption pauses above it.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How often acknowledged offsets are committed (synchronously, only for owned partitions), e.g. `1s`.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: String,
    /// How long a revoke or shutdown waits for in-flight output before its final, synchronous
    /// commit, e.g. `20s`. A shutdown's steps (flush, commit, leaving the group) share this one
    /// deadline. Keep it below the orchestrator's termination grace period.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: String,
    /// librdkafka consumer properties passed through as they are (SASL, SSL, fetch sizes...).
    #[serde(default)]
    pub consumer: std::collections::BTreeMap<String, String>,
    /// librdkafka producer properties passed through as they are.
    #[serde(default)]
    pub producer: std::collections::BTreeMap<String, String>,
}

fn default_max_in_flight() -> usize {
    10_000
}
fn default_commit_interval() -> String {
    "1s".into()
}
fn default_drain_timeout() -> String {
    "20s".into()
}

/// `[metrics]`: the HTTP endpoint serving `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address to listen on; empty turns the endpoint off.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// `[pipeline]`: what the core loads and the limits decoders enforce.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Directory of mapping files. Absent: the mappings embedded in the binary.
    pub mappings: Option<PathBuf>,
    /// Directory of enricher definitions (`*.toml`). Absent: no enrichment.
    pub enrichers: Option<PathBuf>,
    /// Tag rules file. Absent: the rules embedded in the binary (`enrichers/tags.toml`).
    pub tags: Option<PathBuf>,
    /// Largest record accepted, in bytes; larger ones are dead-lettered (`too_large`).
    pub max_record_bytes: usize,
    /// Deepest JSON/XML nesting accepted; deeper records are dead-lettered (`too_deep`).
    pub max_depth: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let limits = crate::decode::Limits::default();
        PipelineConfig {
            mappings: None,
            enrichers: None,
            tags: None,
            max_record_bytes: limits.max_record_bytes,
            max_depth: limits.max_depth,
        }
    }
}

impl Config {
    /// Read a configuration file. Relative paths inside it are resolved against the file's
    /// directory.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let mut cfg = Self::parse(&text, std::env::vars())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut cfg.pipeline.mappings,
            &mut cfg.pipeline.enrichers,
            &mut cfg.pipeline.tags,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    /// Parse configuration text, then apply environment overrides: `ALERTCTX__SECTION__KEY=value`
    /// sets `key` in `[section]` (`ALERTCTX__KAFKA__BROKERS=kafka:9092`); the value is read as a
    /// TOML value when it is one (`20`, `true`, `["a", "b"]`) and as a string otherwise.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        // The file on its own first, so its errors carry line and column.
        let plain: Config = toml::from_str(text)?;
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ALERTCTX__"))
            .collect();
        if env.is_empty() {
            return Ok(plain);
        }
        let mut doc: toml::Table = toml::from_str(text)?;
        for (key, value) in env {
            let Some(path) = key.strip_prefix("ALERTCTX__") else {
                continue;
            };
            let segs: Vec<String> = path.split("__").map(|s| s.to_lowercase()).collect();
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value.clone()));
            let mut table = &mut doc;
            for seg in &segs[..segs.len() - 1] {
                table = table
                    .entry(seg.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| anyhow::anyhow!("{key}: `{seg}` is not a section"))?;
            }
            table.insert(segs[segs.len() - 1].clone(), parsed);
        }
        Ok(toml::Value::Table(doc).try_into()?)
    }

    /// Every structural problem of a configuration file (bad syntax, unknown keys, wrong
    /// types, missing keys), each with its line and column, not just the first: after each
    /// error the offending item is blanked out (line breaks kept, so later locations stay
    /// true) and the text is read again. A syntax error ends the search, since nothing after
    /// it can be trusted.
    pub fn structural_problems(text: &str) -> Vec<String> {
        const MOST: usize = 100;
        let mut text = text.to_string();
        let mut problems = Vec::new();
        while problems.len() < MOST {
            if let Err(e) = toml::from_str::<toml::Table>(&text) {
                problems.push(e.to_string().trim_end().to_string());
                break;
            }
            let Err(e) = toml::from_str::<Config>(&text) else {
                break;
            };
            problems.push(e.to_string().trim_end().to_string());
            let Some(span) = e.span().filter(|s| !s.is_empty() && s.end <= text.len()) else {
                break;
            };
            let blanked = blank_item(&text, span);
            if blanked == text {
                break;
            }
            text = blanked;
        }
        problems
    }

    pub fn limits(&self) -> crate::decode::Limits {
        crate::decode::Limits {
            max_record_bytes: self.pipeline.max_record_bytes,
            max_depth: self.pipeline.max_depth,
        }
    }
}

/// `text` with the item at `span` blanked: the whole lines it touches become spaces (a key's
/// line, or a table with all its keys), line breaks kept.
fn blank_item(text: &str, span: std::ops::Range<usize>) -> String {
    let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let mut end = text[span.end..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i);
    if text[start..].trim_start().starts_with('[') {
        // A table header: its keys go with it, up to the next header.
        let mut at = end;
        while at < text.len() {
            let next = text[at + 1..].find('\n').map_or(text.len(), |i| at + 1 + i);
            if text[at + 1..next].trim_start().starts_with('[') {
                break;
            }
            at = next;
        }
        end = at;
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.extend(
        text[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' }),
    );
    out.push_str(&text[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_problems_are_all_reported_with_their_lines() {
        let text = "[pipeline]\nmax_depht = 3\n\n[dedup]\ncapactiy = 5\nwindow = 7\n\n[quality]\nmax_age = '7d'\n";
        let p = Config::structural_problems(text);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(
            p[0].contains("line 2") && p[0].contains("max_depht"),
            "{}",
            p[0]
        );
        assert!(
            p[1].contains("line 5") && p[1].contains("capactiy"),
            "{}",
            p[1]
        );
        assert!(
            p[2].contains("line 6") && p[2].contains("window"),
            "{}",
            p[2]
        );
        assert!(Config::structural_problems("[dedup]\nwindow = '5m'\n").is_empty());
        let syntax = Config::structural_problems("[dedup\nwindow = 1\n");
        assert_eq!(syntax.len(), 1);
        assert!(syntax[0].contains("line 1"), "{}", syntax[0]);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<Config>("[pipeline]\nmax_depht = 3").is_err());
        assert!(toml::from_str::<Config>("[dedup]\nwindow = '5m'\nsize = 3").is_err());
        assert!(toml::from_str::<Config>("[safety]\nmax_char = 100").is_err());
        let c: Config = toml::from_str(
            "[dedup]\nwindow = '5m'\n[[routes]]\ninput = 'raw.okta'\nsource = 'okta'",
        )
        .unwrap();
        assert_eq!(c.dedup.window, "5m");
        assert_eq!(c.routes[0].source, "okta");
    }

    #[test]
    fn environment_overrides() {
        let env = vec![
            (
                "ALERTCTX__KAFKA__BROKERS".to_string(),
                "kafka-0:9092".to_string(),
            ),
            ("ALERTCTX__DEDUP__CAPACITY".to_string(), "42".to_string()),
            (
                "ALERTCTX__KAFKA__CONSUMER__SECURITY.PROTOCOL".to_string(),
                "SASL_SSL".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let text = "[kafka]\nbrokers = 'x:1'\ngroup_id = 'g'\ntopics = ['raw']\noutput_topic = 'out'\ndlq_topic = 'dlq'\n";
        let c = Config::parse(text, env).unwrap();
        let k = c.kafka.unwrap();
        assert_eq!(k.brokers, "kafka-0:9092");
        assert_eq!(k.consumer["security.protocol"], "SASL_SSL");
        assert_eq!(c.dedup.capacity, 42);
        let bad = vec![("ALERTCTX__DEDUP__CAPACTIY".to_string(), "1".to_string())];
        assert!(
            Config::parse("", bad).is_err(),
            "unknown keys from the environment are errors too"
        );
    }

    #[test]
    fn example_config_parses() {
        let c = Config::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/alertctx.example.toml"
        )))
        .unwrap();
        assert!(c.pipeline.enrichers.unwrap().ends_with("enrichers"));
        assert_eq!(
            c.safety,
            SafetyConfig::default(),
            "the example shows the defaults"
        );
        assert_eq!(c.quality, crate::score::QualityConfig::default());
        assert_eq!(c.dedup, crate::dedup::DedupConfig::default());
        assert_eq!(c.metrics, MetricsConfig::default());
        let k = c.kafka.expect("the example shows the [kafka] section");
        assert_eq!(k.max_in_flight, default_max_in_flight());
        assert_eq!(k.commit_interval, default_commit_interval());
        assert_eq!(k.drain_timeout, default_drain_timeout());
    }
}
