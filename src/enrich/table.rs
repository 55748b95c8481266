//! Reads the reference-data tables behind the asset and user enrichers: a CSV file with a
//! header row, or a JSON array of flat objects. Every row remembers the line it starts on, so
//! a bad row can be reported as `file:line`.
//!
//! Column names are matched case-insensitively and trimmed; values are trimmed. In JSON,
//! numbers and booleans are rendered as text and an array of scalars becomes a `;`-separated
//! list, the same as a CSV cell. Columns a table does not know are ignored (inventory exports
//! carry many), and rows whose cells are all empty are skipped. CSV lines starting with `#`
//! are comments.

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;

/// How a table file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

impl TableFormat {
    /// The format a file name implies: `.json` is JSON, anything else CSV.
    pub fn for_path(path: &Path) -> TableFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => TableFormat::Json,
            _ => TableFormat::Csv,
        }
    }
}

/// One row: its cells by lowercased column name.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line the row starts on.
    pub line: usize,
    /// (column, cell). Column names are shared between the rows of a CSV file; a row costs
    /// its cells and little more, which matters at 100k rows.
    cells: Vec<(std::sync::Arc<str>, Box<str>)>,
}

impl Row {
    /// The trimmed cell, `""` when the column is absent.
    pub fn get(&self, column: &str) -> &str {
        self.cells
            .iter()
            .find(|(c, _)| c.as_ref() == column)
            .map_or("", |(_, v)| v)
    }

    /// A `;`-separated cell as its non-empty, trimmed items.
    pub fn list(&self, column: &str) -> Vec<String> {
        split_list(self.get(column))
    }
}

/// The rows loaded so far (line and id), so that a row claiming a key an earlier row holds is
/// reported naming that row; the first row keeps the key. Shared by the inventory and the
/// directory; dropped once the table is loaded.
pub struct Claims {
    /// `asset`, `user`: how the warning names the owner.
    kind: &'static str,
    rows: Vec<(usize, Box<str>)>,
    warnings: Vec<String>,
}

impl Claims {
    pub fn new(kind: &'static str) -> Claims {
        Claims {
            kind,
            rows: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Register the row being loaded under its id; returns its row number.
    pub fn add_row(&mut self, row: &Row, id: &str) -> u32 {
        let n = u32::try_from(self.rows.len())
            .ok()
            .filter(|&n| n != u32::MAX)
            .expect("reference table of more than 4 billion rows");
        self.rows.push((row.line, id.into()));
        n
    }

    /// Whether `row` gets a key; `held` is the row that has it already, if any, in which case
    /// the answer is no and a warning says who keeps it.
    pub fn claim(
        &mut self,
        path: &Path,
        row: &Row,
        held: Option<u32>,
        what: &str,
        shown: &dyn std::fmt::Display,
    ) -> bool {
        let Some(owner) = held else { return true };
        let (line, owner) = &self.rows[owner as usize];
        self.warnings.push(format!(
            "{}:{}: {what} {shown} already belongs to {} {owner:?} (line {line}); keeping the first",
            path.display(),
            row.line,
            self.kind,
        ));
        false
    }

    pub fn into_warnings(self) -> Vec<String> {
        self.warnings
    }
}

/// Split a `;`-separated list into trimmed, non-empty items.
pub fn split_list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_version(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// CSV rows; errors are returned as `:line: message` (or `: message` without a position).
#[cfg(test)]
fn csv_rows(bytes: &[u8]) -> Result<Vec<Row>, String> {
    csv_iter(bytes)?.collect()
}

/// CSV rows one at a time, so a large file is never held as rows all at once.
fn csv_iter(bytes: &[u8]) -> Result<impl Iterator<Item = Result<Row, String>> + '_, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let headers: Vec<std::sync::Arc<str>> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| std::sync::Arc::from(h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()))
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(": no header row".into());
    }
    Ok(reader.into_records().filter_map(move |record| {
        let record = match record {
            Ok(r) => r,
            Err(e) => return Some(Err(csv_err(e))),
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut cells: Vec<(std::sync::Arc<str>, Box<str>)> = Vec::new();
        for (h, v) in headers.iter().zip(record.iter()) {
            // A repeated column: the last one wins, as it did when rows were maps.
            if !h.is_empty() && !v.is_empty() {
                match cells.iter_mut().find(|(c, _)| c == h) {
                    Some(slot) => slot.1 = v.into(),
                    None => cells.push((h.clone(), v.into())),
                }
            }
        }
        (!cells.is_empty()).then_some(Ok(Row { line, cells }))
    }))
}

fn csv_err(e: csv::Error) -> String {
    match e.position() {
        Some(p) => format!(":{}: {e}", p.line()),
        None => format!(": {e}"),
    }
}

/// Read a table row by row, handing each to `f` without keeping it; every row must fill
/// the `required` columns, and there must be at least one. Returns the file's version.
pub fn for_each_row(
    path: &Path,
    format: Option<TableFormat>,
    required: &[&str],
    mut f: impl FnMut(&Row) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut each = |row: &Row| -> anyhow::Result<()> {
        for col in required {
            if row.get(col).is_empty() {
                return Err(row_error(path, row, format!("missing {col}")));
            }
        }
        f(row)
    };
    let mut n = 0usize;
    match format.unwrap_or_else(|| TableFormat::for_path(path)) {
        TableFormat::Csv => {
            for row in csv_iter(&bytes).map_err(|e| anyhow!("{}{e}", path.display()))? {
                each(&row.map_err(|e| anyhow!("{}{e}", path.display()))?)?;
                n += 1;
            }
        }
        TableFormat::Json => {
            for row in json_rows(&bytes).map_err(|e| anyhow!("{}{e}", path.display()))? {
                each(&row)?;
                n += 1;
            }
        }
    }
    if n == 0 {
        bail!("{}: no rows", path.display());
    }
    Ok(sha256_version(&bytes))
}

/// JSON rows: a top-level array of objects. Each element is parsed on its own so that its
/// starting line is known.
fn json_rows(bytes: &[u8]) -> Result<Vec<Row>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!(": not UTF-8: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cursor = Cursor {
        text,
        pos: 0,
        line: 1,
    };
    cursor.skip_ws();
    if !cursor.eat(b'[') {
        return Err(format!(
            ":{}: expected a JSON array of objects",
            cursor.line
        ));
    }
    let mut rows = Vec::new();
    cursor.skip_ws();
    if !cursor.eat(b']') {
        loop {
            let line = cursor.line;
            let mut stream =
                serde_json::Deserializer::from_str(&text[cursor.pos..]).into_iter::<Value>();
            let value = match stream.next() {
                Some(Ok(v)) => v,
                Some(Err(e)) => return Err(format!(":{}: {e}", line + e.line().saturating_sub(1))),
                None => return Err(format!(":{line}: unexpected end of input")),
            };
            cursor.advance(stream.byte_offset());
            rows.extend(json_row(line, value)?);
            cursor.skip_ws();
            if cursor.eat(b',') {
                cursor.skip_ws();
                continue;
            }
            if cursor.eat(b']') {
                break;
            }
            return Err(format!(":{}: expected ',' or ']'", cursor.line));
        }
    }
    cursor.skip_ws();
    if cursor.pos < text.len() {
        return Err(format!(
            ":{}: trailing characters after the array",
            cursor.line
        ));
    }
    Ok(rows)
}

fn json_row(line: usize, value: Value) -> Result<Option<Row>, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            ":{line}: expected an object, found {}",
            kind_of(&value)
        ));
    };
    let mut cells: Vec<(std::sync::Arc<str>, Box<str>)> = Vec::new();
    for (key, v) in map {
        let key = key.trim().to_ascii_lowercase();
        let cell = match v {
            Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(scalar(&item).ok_or_else(|| {
                        format!(
                            ":{line}: column {key:?} holds a list with {} in it",
                            kind_of(&item)
                        )
                    })?);
                }
                parts.join(";")
            }
            other => scalar(&other)
                .ok_or_else(|| format!(":{line}: column {key:?} holds {}", kind_of(&other)))?,
        };
        let cell = cell.trim();
        if !key.is_empty() && !cell.is_empty() {
            match cells.iter_mut().find(|(c, _)| c.as_ref() == key) {
                Some(slot) => slot.1 = cell.into(),
                None => cells.push((key.into(), cell.into())),
            }
        }
    }
    Ok((!cells.is_empty()).then_some(Row { line, cells }))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A position in JSON text that keeps its line number up to date.
struct Cursor<'t> {
    text: &'t str,
    pos: usize,
    line: usize,
}

impl Cursor<'_> {
    fn advance(&mut self, n: usize) {
        let end = (self.pos + n).min(self.text.len());
        self.line += memchr::memchr_iter(b'\n', &self.text.as_bytes()[self.pos..end]).count();
        self.pos = end;
    }

    fn skip_ws(&mut self) {
        let rest = &self.text.as_bytes()[self.pos..];
        let n = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        self.advance(n);
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.text.as_bytes().get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

/// Errors for a bad row, as `file:line: message`.
pub fn row_error(path: &Path, row: &Row, msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{}:{}: {msg}", path.display(), row.line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_their_lines_and_skip_comments() {
        let text =
            b"# exported 2026-01-01\nAsset_ID , hostname,extra\na1, web01 ,x\n\n,,\na2,db01,\n";
        let rows = csv_rows(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].line,
                rows[0].get("asset_id"),
                rows[0].get("hostname")
            ),
            (3, "a1", "web01")
        );
        assert_eq!(
            (rows[1].line, rows[1].get("asset_id"), rows[1].get("extra")),
            (6, "a2", "")
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = csv_rows(b"a,b\n1,2\n1,2,3\n").unwrap_err();
        assert!(err.starts_with(":3:"), "{err}");
    }

    #[test]
    fn json_rows_keep_their_lines() {
        let text = "[\n  {\"asset_id\": \"a1\", \"ip\": [\"10.0.0.1\", \"10.0.0.2\"], \"n\": 5, \"ok\": true},\n\n  {\"asset_id\": \"a2\",\n   \"tags\": null}\n]\n";
        let rows = json_rows(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].list("ip"), vec!["10.0.0.1", "10.0.0.2"]);
        assert_eq!(rows[0].get("n"), "5");
        assert_eq!(rows[0].get("ok"), "true");
        assert_eq!(
            (rows[1].line, rows[1].get("asset_id"), rows[1].get("tags")),
            (4, "a2", "")
        );
        assert_eq!(json_rows(b" [ ] ").unwrap(), vec![]);
    }

    #[test]
    fn json_errors_name_the_line() {
        let err = json_rows(b"[\n {\"a\": 1},\n {\"a\": {\"b\": 2}}\n]").unwrap_err();
        assert!(err.starts_with(":3: column \"a\" holds an object"), "{err}");
        let err = json_rows(b"[\n {\"a\": 1},\n 5\n]").unwrap_err();
        assert!(err.starts_with(":3: expected an object"), "{err}");
        let err = json_rows(b"[\n {\"a\": 1}\n {\"a\": 2}\n]").unwrap_err();
        assert!(err.starts_with(":3: expected ','"), "{err}");
        let err = json_rows(b"[\n {\"a\": 1},\n {\"a\": tru}\n]").unwrap_err();
        assert!(err.starts_with(":3:"), "{err}");
        let err = json_rows(b"{\"a\": 1}").unwrap_err();
        assert!(err.contains("expected a JSON array"), "{err}");
    }

    #[test]
    fn lists_split_on_semicolons() {
        assert_eq!(split_list(" a ; ;b;"), vec!["a", "b"]);
        assert!(split_list("").is_empty());
    }
}
