//! Shared test support: temp roots, network namespaces, real etcd, test doubles. Never shipped.

pub mod tools;
pub mod tree;
