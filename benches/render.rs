//! Render benchmark: the full PKI (11 keys: 3 CAs, 7 leaves, sa) plus the 5 kubeconfigs
//! (5 client keys) into a fresh temporary root, as `plinth init` does on a new machine.
//!
//! Targets on the 2-core reference machine: RSA-2048 at most half of kubeadm's ~2.6 s
//! (≤ 1.3 s); ECDSA-P256 ≤ 50 ms. Run with `cargo bench --bench render`; criterion's median is
//! in target/criterion/render_full_set/<alg>/new/estimates.json.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use plinth::config::{defaults_for, ClusterSpec, Endpoint, KeyAlgorithm};
use plinth::fs::HostRoot;
use plinth::kubeconfig::{self, KubeconfigOptions};
use plinth::pki::{self, PkiOptions};

fn spec(alg: KeyAlgorithm) -> ClusterSpec {
    let mut s = defaults_for("cp1", "192.168.10.5".parse().expect("ip"));
    s.control_plane_endpoint = Some(Endpoint {
        host: "lb.example.com".into(),
        port: 6443,
    });
    s.api_server.cert_sans = vec!["10.0.0.100".into(), "api.example.com".into()];
    s.key_algorithm = alg;
    s
}

/// One full render into `dir`; panics if anything is not generated.
fn render(spec: &ClusterSpec, dir: &std::path::Path) {
    let root = HostRoot::new(Some(dir));
    let p = pki::reconcile(spec, &root, &PkiOptions::default()).expect("pki");
    let k = kubeconfig::reconcile(spec, &root, &KubeconfigOptions::default()).expect("kubeconfig");
    assert_eq!(p.changed_files().len(), 22);
    assert_eq!(k.changed_files().len(), 5);
    black_box((p, k));
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("render_full_set");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    for (name, alg, time) in [
        ("rsa2048", KeyAlgorithm::Rsa2048, Duration::from_secs(15)),
        (
            "ecdsa_p256",
            KeyAlgorithm::EcdsaP256,
            Duration::from_secs(3),
        ),
    ] {
        let s = spec(alg);
        g.measurement_time(time);
        g.warm_up_time(Duration::from_secs(1));
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    render(&s, dir.path());
                    // Returned so that deleting the tree is not timed.
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
