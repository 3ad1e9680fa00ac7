//! PKI.
