//! PROVISIONAL (replaced by the full module).
#[derive(Debug, Clone, PartialEq)]
pub struct Producer { pub name: String, pub version: Option<String> }
pub fn detect(_head: &[u8], _tail: &[u8]) -> Option<Producer> { None }
pub fn flavour(_head: &[u8], _tail: &[u8]) -> Option<String> { None }
