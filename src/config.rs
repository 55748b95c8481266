//! Configuration: one TOML file; every key documented on the struct that holds it. Unknown
//! keys are errors. `alertctx.example.toml` at the repository root shows every section.

use crate::dedup::DedupConfig;
use crate::normalize::Route;
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
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.pipeline.mappings, &mut cfg.pipeline.enrichers, &mut cfg.pipeline.tags].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    pub fn limits(&self) -> crate::decode::Limits {
        crate::decode::Limits { max_record_bytes: self.pipeline.max_record_bytes, max_depth: self.pipeline.max_depth }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<Config>("[pipeline]\nmax_depht = 3").is_err());
        assert!(toml::from_str::<Config>("[dedup]\nwindow = '5m'\nsize = 3").is_err());
        let c: Config = toml::from_str("[dedup]\nwindow = '5m'\n[[routes]]\ninput = 'raw.okta'\nsource = 'okta'").unwrap();
        assert_eq!(c.dedup.window, "5m");
        assert_eq!(c.routes[0].source, "okta");
    }

    #[test]
    fn example_config_parses() {
        let c = Config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/alertctx.example.toml"))).unwrap();
        assert!(c.pipeline.enrichers.unwrap().ends_with("enrichers"));
    }
}
