//! TODO(logs): filled in by its owner.
