//! The one integration-test binary (see Cargo.toml `autotests = false`): each area is a module.

mod support;

mod agent_e2e;
mod binaries;
mod certs_renew;
mod cli_consistency;
mod cli_output;
mod config_cli;
mod conventions;
mod init_e2e;
mod module_graph;
mod render;
mod runtime_e2e;
