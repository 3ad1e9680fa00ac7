//! Integration tests: agent_e2e.
