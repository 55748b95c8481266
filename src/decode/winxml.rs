//! Windows event XML.
use super::{DecodeError, Reason, Value};
pub fn parse_event(_xml: &str, _max_depth: usize) -> Result<Value<'_>, DecodeError> {
    Err(DecodeError::new(Reason::InvalidXml, "not yet"))
}
