//! Integration tests: init_e2e.
