//! The CIS 1.12 (kube-bench) check evaluator, test-only: `evaluate.rs` is also compiled into
//! the library's unit tests (`src/manifests/cis.rs`), so it names what it uses through
//! `super::`.

pub use plinth::fs::HostRoot;
pub use plinth::manifests::{Component, RenderedManifest};

mod evaluate;

pub use evaluate::{evaluate, evaluate_with, CheckResult, CheckStatus, OwnerNames};
