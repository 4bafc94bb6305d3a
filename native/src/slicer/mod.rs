//! What slicers write in comments: layer/feature/object tags, producer, file-level facts.
//!
//! * [`tags`] — the hot path: [`tags::classify`] turns one comment (text after `;`, or inside
//!   `( )`) into a [`tags::Tag`] without allocating.
//! * [`producer`] — which program wrote the file ([`producer::detect`]) and its G-code flavour.
//! * [`roles`] — feature labels to one vocabulary of extrusion roles ([`roles::role_of`]).
//! * [`meta`] — file-level facts (estimates, filament, settings), config/header lines, Cura's
//!   `;SETTING_3` block and embedded thumbnails; off the hot path, allocation allowed.
//!
//! Every convention is documented where it is recognised, with a line taken from the corpus in
//! `shared/corpus/` (file named) or, for slicers not in the corpus, from what they are known to
//! write.
pub mod meta;
pub mod producer;
pub mod roles;
pub mod tags;

#[cfg(test)]
mod corpus_tests;
