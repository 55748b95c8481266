//! Zeek TSV logs (the ASCII writer): `#separator`/`#fields`/`#types` headers, one row a record.
use super::{DecodeError, Reason, Value};

/// The header in force for a block of Zeek TSV rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZeekHeader {
    pub fields: Vec<String>,
}

impl ZeekHeader {
    pub fn apply_directive(&mut self, line: &str) -> bool {
        if let Some(f) = line.strip_prefix("#fields\t") {
            self.fields = f.split('\t').map(str::to_string).collect();
            return true;
        }
        line.starts_with("#separator") || line.starts_with("#close") || line.starts_with("#path")
    }
    pub fn is_ready(&self) -> bool {
        !self.fields.is_empty()
    }

    pub fn parse_row<'a>(&self, _line: &'a str) -> Result<Value<'a>, DecodeError> {
        Err(DecodeError::new(Reason::InvalidZeek, "not yet"))
    }
}
