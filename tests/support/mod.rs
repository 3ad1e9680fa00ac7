//! Shared test support: temp roots, network namespaces, real etcd, a test PKI, an HTTPS client
//! and the strict test doubles for the control-plane binaries. Never shipped.
//!
//! Each test module uses a part of it, hence `dead_code` is allowed here.
#![allow(dead_code, unused_imports)]

pub mod cis;
pub mod doubles;
pub mod etcd;
pub mod https;
pub mod mirror;
pub mod netns;
pub mod pki;
pub mod procs;
pub mod root;
pub mod status_api;
pub mod tools;

pub use doubles::{make_bin_dir, using_doubles};
pub use etcd::{etcd_binary, etcd_version, Etcd, EtcdPki};
pub use https::Https;
pub use netns::NetNs;
pub use pki::{rsa_key_pair, write_kubeconfig, KeyPair, TestCa, Usage};
pub use procs::{pid_alive, wait_until, ChildGuard};
pub use root::{diff_snapshots, snapshot_dir, TempRoot, TreeEntry};
pub use status_api::fake_status_api;
pub use tools::{kubectl_binary, openssl};
