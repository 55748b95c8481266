//! Text lines: syslog header, then CEF, LEEF, PAN-OS CSV, or plain message.
use super::{DecodeError, Reason, Value};
pub fn parse_line(_line: &str) -> Result<Value<'_>, DecodeError> {
    Err(DecodeError::new(Reason::InvalidCef, "not yet"))
}
