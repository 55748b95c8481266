//! (stub until the enrichers branch lands)
use serde::Serialize;

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct EnrichOutput {
    pub entities: Vec<Entity>,
    pub enrichment: Vec<Enrichment>,
    pub misses: Vec<Miss>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub kind: &'static str,
    pub attribute: String,
    pub value: String,
    pub matched_by: &'static str,
    pub enricher: String,
    pub context: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enrichment {
    pub attribute: String,
    pub value: String,
    pub enricher: String,
    pub source: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    pub attribute: String,
    pub value: String,
    pub enricher: String,
    pub code: &'static str,
}

pub trait Enricher: Send {
    fn name(&self) -> &str;
    fn kind(&self) -> &'static str;
    fn data_version(&self) -> &str;
    fn enrich(&mut self, alert: &serde_json::Value, out: &mut EnrichOutput);
}

pub struct Loaded {
    pub enrichers: Vec<Box<dyn Enricher>>,
    pub warnings: Vec<String>,
}

pub fn load_dir(_dir: &std::path::Path) -> anyhow::Result<Loaded> {
    Ok(Loaded { enrichers: Vec::new(), warnings: Vec::new() })
}
