//! Integration tests: config_cli.
