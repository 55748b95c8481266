//! Helpers for the enrich unit tests: temporary definition directories with reference data,
//! and the MaxMind DB builders in `tests/common/mmdb.rs`, which integration tests share.

use std::path::Path;

/// MaxMind DB builders (the same file integration tests include).
#[path = "../../tests/common/mmdb.rs"]
pub mod mmdb;

/// A fresh directory to hold definitions and reference data.
pub fn definition_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Write a file under `dir`, creating parent directories.
pub fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent directory");
    }
    std::fs::write(&path, text).expect("write test file");
}
