//! What slicers write in comments: layer/feature/object tags, producer, file-level facts.
pub mod meta;
pub mod producer;
pub mod tags;
