//! Tests of the whole render pipeline.

use super::*;
use crate::config::defaults_for;

fn ctx() -> RenderContext {
    RenderContext::isolated(&HostRoot::default()).with_etcd_user(990, 990)
}

#[test]
fn peek() {
    let spec = defaults_for("cp1", "192.168.10.5".parse().unwrap());
    for m in render_all(&spec, &ctx()).unwrap() {
        println!("---\n{}", m.yaml);
    }
}
