//! What a joining node needs to find and trust this cluster: bootstrap tokens
//! ([`token`]) and the `cluster-info` discovery document with the CA pin ([`clusterinfo`]).
//! Pure builders and parsers; the phases that apply them are in [`crate::postinit`].

pub mod clusterinfo;
pub mod token;
