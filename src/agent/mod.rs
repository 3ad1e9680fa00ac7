//! The bundled static pod agent (`plinth agent`): keeps exactly the pods of a manifest
//! directory running, with kubelet semantics, as supervised host processes.
//!
//! Data flows one way: [`source`] (inotify + relist) → [`podconfig`] (desired pods by name,
//! last known good, conflicts) → one worker per pod UID → the [`crate::runtime::Runtime`].

pub mod env;
pub mod hostpath;
pub mod pod;
pub mod podconfig;
pub mod resolve;
pub mod source;
pub mod state;
pub mod worker;
