//! The documentation stays true: every gap code is in the README table with its weight, and
//! the bundle schema's code list is the code catalogue; every metric is in the README's table.

mod common;

use alertctx::score::CODES;

#[test]
fn readme_documents_every_gap_code_with_its_weight() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    for c in CODES {
        let row = format!(
            "| `{}` | {} | {} ({}) | {} |",
            c.code, c.group, c.weight, c.cap, c.meaning
        );
        assert!(
            readme.contains(&row),
            "README gap table lacks or misstates:\n{row}"
        );
    }
}

#[test]
fn schema_gap_codes_are_the_catalogue() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("schemas/bundle.schema.json")).unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = schema["$defs"]["quality"]["properties"]["gaps"]["items"]["properties"]
        ["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let codes: Vec<&str> = CODES.iter().map(|c| c.code).collect();
    assert_eq!(listed, codes);
}

#[test]
fn safety_kinds_are_documented_and_in_the_schema() {
    use alertctx::sanitize::{FindingKind, RemovalKind};
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("schemas/bundle.schema.json")).unwrap(),
    )
    .unwrap();
    let listed = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    let props = &schema["$defs"]["safety"]["properties"];
    let removals: Vec<String> = RemovalKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    assert_eq!(
        listed(&props["removals"]["items"]["properties"]["kind"]["enum"]),
        removals
    );
    let findings: Vec<String> = FindingKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    assert_eq!(
        listed(&props["findings"]["items"]["properties"]["kind"]["enum"]),
        findings
    );
    for k in RemovalKind::ALL {
        assert!(
            readme.contains(&format!("| `{}` |", k.as_str())),
            "README lacks removal kind {}",
            k.as_str()
        );
    }
    for k in FindingKind::ALL {
        assert!(
            readme.contains(&format!("| `{}` | `{}` |", k.as_str(), k.tag())),
            "README lacks finding kind {} with its tag",
            k.as_str()
        );
    }
    assert!(
        readme.contains("| `alertctx_safety_findings_total` |"),
        "README lacks the safety metric"
    );
}

#[test]
fn readme_documents_every_dead_letter_reason() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    for r in alertctx::decode::Reason::ALL {
        assert!(
            readme.contains(&format!("`{}`", r.as_str())),
            "README lacks dead-letter reason {r}"
        );
    }
}

#[test]
fn readme_documents_every_metric() {
    let src = std::fs::read_to_string(common::repo().join("src/metrics.rs")).unwrap();
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    // Every metric is registered in `Metrics::new` as `kind(&r, "<name>", "<help>", ...)`.
    let names: Vec<&str> = src
        .split("(&r, \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(names.len() >= 25, "{names:?}");
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| !readme.contains(&format!("`alertctx_{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README's metrics table lacks {missing:?}"
    );
}
