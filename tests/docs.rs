//! The documentation stays true: every gap code is in the README table with its weight, and
//! the bundle schema's code list is the code catalogue.

mod common;

use alertctx::score::CODES;

#[test]
fn readme_documents_every_gap_code_with_its_weight() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    for c in CODES {
        let row = format!("| `{}` | {} | {} ({}) | {} |", c.code, c.group, c.weight, c.cap, c.meaning);
        assert!(readme.contains(&row), "README gap table lacks or misstates:\n{row}");
    }
}

#[test]
fn schema_gap_codes_are_the_catalogue() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo().join("schemas/bundle.schema.json")).unwrap()).unwrap();
    let listed: Vec<&str> = schema["$defs"]["quality"]["properties"]["gaps"]["items"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let codes: Vec<&str> = CODES.iter().map(|c| c.code).collect();
    assert_eq!(listed, codes);
}

#[test]
fn readme_documents_every_dead_letter_reason() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    for r in alertctx::decode::Reason::ALL {
        assert!(readme.contains(&format!("`{}`", r.as_str())), "README lacks dead-letter reason {r}");
    }
}
