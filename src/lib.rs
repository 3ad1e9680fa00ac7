//! plinth: turn one Linux host into a Kubernetes control-plane node, kubeadm-style, with a
//! bundled static pod agent instead of kubelet + container runtime.
//!
//! Data flows one way: [`config`] → plans ([`pki`], [`kubeconfig`], [`manifests`]) → [`fs`]
//! writes → the manifest dir → [`agent`] (with [`runtime`], [`probe`], [`backoff`], [`logs`]).
//! [`init`], [`health`], [`verify`], [`regenerate`], [`certs`] and [`reset`] are the
//! operator's verbs built on those; [`workflow`] holds init's phase table and the runner.

pub mod acl;
pub mod agent;
pub mod agentctl;
pub mod apiclient;
pub mod backoff;
pub mod binaries;
pub mod binlayout;
pub mod bootstrap;
pub mod certs;
pub mod client;
pub mod config;
pub mod error;
pub mod fs;
pub mod health;
pub mod init;
pub mod kubeconfig;
pub mod ledger;
pub mod logs;
pub mod manifests;
pub mod pki;
pub mod postinit;
pub mod preflight;
pub mod probe;
pub mod procfs;
pub mod regenerate;
pub mod report;
pub mod reset;
pub mod runtime;
pub mod security;
pub mod tokens;
pub mod verify;
pub mod workflow;
