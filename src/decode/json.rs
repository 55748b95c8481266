//! JSON records.
use super::{DecodeError, Limits, Reason, Value};
pub fn parse<'a>(_buf: &'a mut [u8], _limits: &Limits) -> Result<Value<'a>, DecodeError> {
    Err(DecodeError::new(Reason::InvalidJson, "not yet"))
}
