//! TODO(backoff): filled in by its owner.
