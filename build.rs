//! Embeds every mapping file in schemas/mappings into the binary (see normalize::EMBEDDED_MAPPINGS).
use std::{env, fs, path::Path};

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!(
        "cargo:rustc-env=ALERTCTX_BUILD_COMMIT={}",
        std::env::var("ALERTCTX_BUILD_COMMIT").unwrap_or(commit)
    );
    println!("cargo:rerun-if-env-changed=ALERTCTX_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/logs/HEAD");
    let dir = Path::new("schemas/mappings");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut out = String::from("[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let abs = fs::canonicalize(&f).expect("mapping path");
        out.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            f.file_name().unwrap().to_string_lossy(),
            abs.display().to_string()
        ));
    }
    out.push(']');
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("mappings.rs"),
        out,
    )
    .unwrap();

    // The example telemetry `alertctx demo` produces: every fixture file, by source directory.
    let fixtures = Path::new("tests/fixtures");
    println!("cargo:rerun-if-changed={}", fixtures.display());
    let mut entries = Vec::new();
    if let Ok(dirs) = fs::read_dir(fixtures) {
        for d in dirs.flatten() {
            let dir = d.path();
            if !dir.is_dir() {
                continue;
            }
            println!("cargo:rerun-if-changed={}", dir.display());
            for f in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = f.path();
                println!("cargo:rerun-if-changed={}", path.display());
                entries.push((
                    dir.file_name().unwrap().to_string_lossy().to_string(),
                    path.file_name().unwrap().to_string_lossy().to_string(),
                    fs::canonicalize(&path).unwrap().display().to_string(),
                ));
            }
        }
    }
    entries.sort();
    let mut out = String::from("[\n");
    for (source, name, abs) in entries {
        out.push_str(&format!(
            "    ({source:?}, {name:?}, include_bytes!({abs:?}).as_slice()),\n"
        ));
    }
    out.push(']');
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("examples.rs"),
        out,
    )
    .unwrap();
}
