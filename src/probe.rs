//! TODO(probe): filled in by its owner.
