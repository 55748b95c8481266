//! Zeek TSV logs (the ASCII writer): `#separator`/`#fields`/`#types` headers, one row a record.
use super::{DecodeError, Reason, Value};

/// The header in force for a block of Zeek TSV rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZeekHeader {
    pub fields: Vec<String>,
}

impl ZeekHeader {
    pub fn parse_row<'a>(&self, _line: &'a str) -> Result<Value<'a>, DecodeError> {
        Err(DecodeError::new(Reason::InvalidZeek, "not yet"))
    }
}
