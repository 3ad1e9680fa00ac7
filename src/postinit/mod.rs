//! init's phases that talk to the apiserver once the control plane is healthy, named and
//! behaving as kubeadm's: [`uploadconfig`], [`markcontrolplane`], [`bootstraptoken`],
//! [`addons`] (CoreDNS, kube-proxy) and [`joincommand`] (show-join-command).
//!
//! Each phase is a function over a [`Context`] (a `kube::Client` with admin.conf's identity and
//! the effective [`ClusterSpec`]). Every object is made to exist idempotently with
//! [`crate::apiclient::ensure`], with bounded retries while the apiserver is unavailable; a
//! phase reports each object as created, unchanged or updated, or its own failure, and goes
//! on with the next object, so one refusal names exactly what failed.

pub mod addons;
pub mod bootstraptoken;
pub mod joincommand;
pub mod markcontrolplane;
pub mod rbac;
pub mod uploadconfig;

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::Api;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::apiclient::{self, ApiError, Outcome, RetryPolicy};
use crate::config::ClusterSpec;
use crate::fs::HostRoot;

/// Why the post-init phases could not start or what failed.
#[derive(Debug, thiserror::Error)]
pub enum PostInitError {
    /// admin.conf could not be read or used.
    #[error("[{phase}] connecting with {path}")]
    Connect {
        /// The phase.
        phase: &'static str,
        /// The kubeconfig.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<ApiError>,
    },
    /// The cluster CA could not be read or pinned.
    #[error("[{phase}] {what}: {reason}")]
    Ca {
        /// The phase.
        phase: &'static str,
        /// The file.
        what: String,
        /// Why.
        reason: String,
    },
    /// A bootstrap token could not be generated.
    #[error("[{phase}] generating a bootstrap token")]
    Token {
        /// The phase.
        phase: &'static str,
        /// Why.
        #[source]
        source: crate::bootstrap::token::TokenError,
    },
}

/// What a phase needs: the client, the effective spec, the cluster CA and the server URL
/// joining nodes use (admin.conf's cluster, as kubeadm copies it), and how long to retry.
#[derive(Clone)]
pub struct Context<'a> {
    /// A client with admin.conf's identity, talking to this node's apiserver.
    pub client: kube::Client,
    /// The effective configuration.
    pub spec: &'a ClusterSpec,
    /// The cluster CA (PEM), from admin.conf.
    pub ca_pem: Vec<u8>,
    /// The server URL in admin.conf (controlPlaneEndpoint, else this node's).
    pub server: String,
    /// Retries of each call while the apiserver is unavailable.
    pub policy: RetryPolicy,
    /// How long mark-control-plane waits for the agent to register the Node; `None` when
    /// nothing will register it (the agent runs without a kubeconfig).
    pub node_wait: Option<Duration>,
}

impl<'a> Context<'a> {
    /// Connects with `<kubeconfigDir>/admin.conf` to this node's apiserver (the endpoint may
    /// be a load balancer that does not exist yet). `phase` names the caller in errors.
    pub async fn connect(
        spec: &'a ClusterSpec,
        root: &HostRoot,
        phase: &'static str,
    ) -> Result<Context<'a>, PostInitError> {
        let path = admin_conf(spec, root);
        let kc = crate::client::ClientConfig::load(&path).map_err(|e| PostInitError::Ca {
            phase,
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let client = apiclient::connect_at(&path, &spec.local_endpoint().url())
            .await
            .map_err(|source| PostInitError::Connect {
                phase,
                path: path.clone(),
                source: Box::new(source),
            })?;
        Ok(Context {
            client,
            spec,
            ca_pem: kc.ca_pem,
            server: kc.server,
            policy: RetryPolicy::PHASE,
            node_wait: Some(DEFAULT_NODE_WAIT),
        })
    }
}

/// How long mark-control-plane waits for the Node by default (the agent registers it as soon
/// as the apiserver answers; kubeadm waits for the kubelet the same way).
pub const DEFAULT_NODE_WAIT: Duration = Duration::from_secs(60);

/// The host path of admin.conf under `root`.
pub fn admin_conf(spec: &ClusterSpec, root: &HostRoot) -> PathBuf {
    root.path(Path::new(&spec.plinth.kubeconfig_dir).join("admin.conf"))
}

/// One object a phase made exist, or failed to.
#[derive(Debug)]
pub struct ObjectResult {
    /// `ConfigMap kube-system/kubeadm-config`.
    pub what: String,
    /// What happened.
    pub result: Result<Outcome, ApiError>,
}

/// What one phase did.
#[derive(Debug)]
pub struct PhaseReport {
    /// The phase name (`upload-config`, `addon/coredns`, ...).
    pub phase: &'static str,
    /// Lines to print before the objects (what the phase is about, kubeadm-style).
    pub notes: Vec<String>,
    /// Each object, in the order applied.
    pub objects: Vec<ObjectResult>,
    /// A failure that is not one object's (e.g. the Node never registered).
    pub error: Option<String>,
}

impl PhaseReport {
    /// An empty report for `phase`.
    pub fn new(phase: &'static str) -> PhaseReport {
        PhaseReport {
            phase,
            notes: Vec::new(),
            objects: Vec::new(),
            error: None,
        }
    }

    /// True when an object or the phase itself failed.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.objects.iter().any(|o| o.result.is_err())
    }

    /// True when nothing was created or updated.
    pub fn unchanged(&self) -> bool {
        self.objects
            .iter()
            .all(|o| matches!(o.result, Ok(Outcome::Unchanged)))
    }

    /// The lines to print: notes, then `[phase] <object>: created|unchanged|updated`, or
    /// `[phase] <object>: FAILED: <error and its causes>`.
    pub fn lines(&self) -> Vec<String> {
        let p = self.phase;
        let mut out: Vec<String> = self.notes.iter().map(|n| format!("[{p}] {n}")).collect();
        for o in &self.objects {
            match &o.result {
                Ok(outcome) => out.push(format!("[{p}] {}: {outcome}", o.what)),
                Err(e) => out.push(format!("[{p}] {}: FAILED: {}", o.what, chain(e))),
            }
        }
        if let Some(e) = &self.error {
            out.push(format!("[{p}] FAILED: {e}"));
        }
        out
    }

    /// Records the outcome of one object.
    pub fn push(&mut self, what: String, result: Result<Outcome, ApiError>) {
        self.objects.push(ObjectResult { what, result });
    }
}

/// An error with its sources, `a: b: c`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `Kind ns/name` or `Kind name` for messages.
pub fn describe<K>(obj: &K) -> String
where
    K: kube::Resource<DynamicType = ()>,
{
    let kind = K::kind(&());
    let name = obj.meta().name.clone().unwrap_or_default();
    match &obj.meta().namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Makes `obj` exist (create, leave alone, or update) and records the outcome in `report`.
pub async fn apply<K>(ctx: &Context<'_>, report: &mut PhaseReport, obj: K)
where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let what = describe(&obj);
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let result = apiclient::ensure(&api, &obj, &what, &ctx.policy).await;
    report.push(what, result);
}

/// [`apply`] for cluster-scoped objects (ClusterRole, ClusterRoleBinding).
pub async fn apply_cluster<K>(ctx: &Context<'_>, report: &mut PhaseReport, obj: K)
where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
{
    let what = describe(&obj);
    let api: Api<K> = Api::all(ctx.client.clone());
    let result = apiclient::ensure(&api, &obj, &what, &ctx.policy).await;
    report.push(what, result);
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A context over the in-memory apiserver, for the phases' unit tests.
    use super::*;
    use crate::apiclient::fake::ApiServer;

    /// A CA certificate (PEM) for tests.
    pub fn ca_pem() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![]).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().pem().into_bytes()
    }

    /// The test spec: node cp1 at 10.0.0.5, v1.24.0.
    pub fn spec() -> ClusterSpec {
        let mut s = crate::config::defaults_for("cp1", "10.0.0.5".parse().unwrap());
        s.kubernetes_version = crate::config::validate::parse_kube_version("v1.24.0").unwrap();
        s
    }

    /// A context for `spec` on `server` as the admin, with short retries.
    pub fn context<'a>(server: &ApiServer, spec: &'a ClusterSpec, ca: &[u8]) -> Context<'a> {
        Context {
            client: server.client("kubernetes-admin"),
            spec,
            ca_pem: ca.to_vec(),
            server: "https://10.0.0.5:6443".into(),
            policy: RetryPolicy {
                first: Duration::from_millis(10),
                max: Duration::from_millis(50),
                deadline: Duration::from_millis(500),
            },
            node_wait: Some(Duration::from_millis(500)),
        }
    }
}
