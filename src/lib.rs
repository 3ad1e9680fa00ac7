//! plinth: turn one Linux host into a Kubernetes control-plane node, kubeadm-style, with a
//! bundled static pod agent instead of kubelet + container runtime.
//!
//! Data flows one way: [`config`] → plans ([`pki`], [`kubeconfig`], [`manifests`]) → [`fs`]
//! writes → the manifest dir → [`agent`] (with [`runtime`], [`probe`], [`backoff`], [`logs`]).

pub mod agent;
pub mod backoff;
pub mod config;
pub mod fs;
pub mod kubeconfig;
pub mod logs;
pub mod manifests;
pub mod pki;
pub mod probe;
pub mod runtime;
pub mod security;
