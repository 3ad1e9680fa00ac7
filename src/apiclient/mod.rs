//! The one client module for the kube-apiserver (kube-rs).
//!
//! Everything plinth says to the apiserver goes through here: the agent's Node, Lease and
//! mirror pods (identity `system:node:<name>` from kubelet.conf) and init's API phases
//! (admin.conf). This module owns the three things every caller needs the same way:
//! - identity: [`connect`] builds a [`kube::Client`] from a kubeconfig file (its embedded CA,
//!   client certificate and key), with plinth's timeouts;
//! - errors: [`ApiError`] names the verb and the object; [`is_transient`] and friends classify
//!   a [`kube::Error`];
//! - retries: [`retry`] retries transient failures with backoff until a deadline, and gives up
//!   at once on what no retry can cure (403, 422, …).
//!
//! [`ensure`] is the idempotent create-or-update used by the API phases (it reports whether
//! the object was created, already as desired, or updated). Logic on top is unit-tested with
//! the in-memory apiserver in [`fake`], which sits behind a real `kube::Client`.

#[cfg(test)]
pub mod fake;

use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long to wait for a TCP/TLS connection to the apiserver.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a response (plinth makes no long-running calls but watches).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors talking to the apiserver.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The kubeconfig file could not be read or is not usable.
    #[error("kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KubeconfigError,
    },
    /// A client could not be built from the kubeconfig (TLS material, server URL).
    #[error("client from kubeconfig {path}")]
    Client {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A request failed.
    #[error("{what}")]
    Request {
        /// The verb and the object, e.g. `create ConfigMap kube-system/kubeadm-config`.
        what: String,
        /// The apiserver's answer or the transport error.
        #[source]
        source: kube::Error,
    },
    /// A transient failure outlasted the retry deadline.
    #[error("{what}: still failing after {waited:?} of retries")]
    Timeout {
        /// The verb and the object.
        what: String,
        /// How long it was retried.
        waited: Duration,
        /// The last failure.
        #[source]
        source: kube::Error,
    },
}

impl ApiError {
    /// The HTTP status code the apiserver answered with, when it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Request { source, .. } | ApiError::Timeout { source, .. } => code(source),
            _ => None,
        }
    }
}

/// Builds a client from a kubeconfig file, using its current context's identity.
pub async fn connect(path: &Path) -> Result<kube::Client, ApiError> {
    connect_with(path, None).await
}

/// Like [`connect`], but talks to `server` (e.g. this node's own apiserver,
/// `https://10.0.0.5:6443`) instead of the kubeconfig's server, which may be a load balancer
/// that does not exist yet. The CA and the client identity still come from the file.
pub async fn connect_at(path: &Path, server: &str) -> Result<kube::Client, ApiError> {
    connect_with(path, Some(server)).await
}

async fn connect_with(path: &Path, server: Option<&str>) -> Result<kube::Client, ApiError> {
    let kc = Kubeconfig::read_from(path).map_err(|source| ApiError::Kubeconfig {
        path: path.into(),
        source,
    })?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|source| ApiError::Kubeconfig {
            path: path.into(),
            source,
        })?;
    if let Some(server) = server {
        cfg.cluster_url = server.parse().map_err(|e| ApiError::Kubeconfig {
            path: path.into(),
            source: KubeconfigError::ParseClusterUrl(e),
        })?;
    }
    cfg.connect_timeout = Some(CONNECT_TIMEOUT);
    cfg.read_timeout = Some(READ_TIMEOUT);
    kube::Client::try_from(cfg).map_err(|source| ApiError::Client {
        path: path.into(),
        source,
    })
}

/// The HTTP status code of an apiserver answer.
pub fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// 404 Not Found.
pub fn is_not_found(e: &kube::Error) -> bool {
    code(e) == Some(404)
}

/// 409 with reason AlreadyExists (a create of an existing name).
pub fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// 409 Conflict on a resourceVersion (re-read and try again).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason != "AlreadyExists")
}

/// True when trying again later may succeed: the apiserver is unreachable, starting, or
/// overloaded (connection errors, timeouts, 429, 5xx). Authorization, admission and validation
/// failures (401, 403, 404, 409, 422, …) are not transient.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// How [`retry`] waits: exponential backoff from `first` up to `max`, until `deadline` has
/// passed since the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Give up once this much time has passed.
    pub deadline: Duration,
}

impl RetryPolicy {
    /// For init's API phases: the apiserver was just healthy; ride out a restart.
    pub const PHASE: RetryPolicy = RetryPolicy {
        first: Duration::from_millis(200),
        max: Duration::from_secs(2),
        deadline: Duration::from_secs(60),
    };

    /// The wait after attempt `n` (0-based).
    pub fn wait(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Runs `f` until it succeeds, fails with an error that is not transient, or the policy's
/// deadline passes. `what` names the verb and object for the error.
pub async fn retry<T, F, Fut>(what: &str, policy: &RetryPolicy, mut f: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let start = tokio::time::Instant::now();
    let mut n = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if is_transient(&e) => {
                let waited = start.elapsed();
                if waited >= policy.deadline {
                    return Err(ApiError::Timeout {
                        what: what.to_string(),
                        waited,
                        source: e,
                    });
                }
                let pause = policy.wait(n).min(policy.deadline - waited);
                tracing::debug!("{what}: {e}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                n += 1;
            }
            Err(source) => {
                return Err(ApiError::Request {
                    what: what.to_string(),
                    source,
                })
            }
        }
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The object did not exist and was created.
    Created,
    /// The object already held every desired field.
    Unchanged,
    /// Some desired fields differed and were patched.
    Updated,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Unchanged => "unchanged",
            Outcome::Updated => "updated",
        })
    }
}

/// Makes the object `desired` exist with every field it sets: creates it when missing, leaves
/// it alone when the live object already holds those fields (fields the server or others added
/// are kept), else merge-patches the desired fields in. Transient failures are retried with
/// `policy`. `what` names the object in errors, e.g. `ConfigMap kube-system/kubeadm-config`.
pub async fn ensure<K>(
    api: &Api<K>,
    desired: &K,
    what: &str,
    policy: &RetryPolicy,
) -> Result<Outcome, ApiError>
where
    K: kube::Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let want = serde_json::to_value(desired).map_err(|e| ApiError::Request {
        what: format!("encode {what}"),
        source: kube::Error::SerdeError(e),
    })?;
    let (post, patch_params, patch) = (
        PostParams::default(),
        PatchParams::default(),
        Patch::Merge(&want),
    );
    loop {
        let live = retry(&format!("get {what}"), policy, || api.get_opt(&name)).await?;
        let Some(live) = live else {
            match retry(&format!("create {what}"), policy, || {
                api.create(&post, desired)
            })
            .await
            {
                Ok(_) => return Ok(Outcome::Created),
                // Someone created it in between: compare with theirs.
                Err(ApiError::Request { source, .. }) if is_already_exists(&source) => continue,
                Err(e) => return Err(e),
            }
        };
        let have = serde_json::to_value(&live).map_err(|e| ApiError::Request {
            what: format!("encode {what}"),
            source: kube::Error::SerdeError(e),
        })?;
        if contains(&have, &want) {
            return Ok(Outcome::Unchanged);
        }
        retry(&format!("update {what}"), policy, || {
            api.patch(&name, &patch_params, &patch)
        })
        .await?;
        return Ok(Outcome::Updated);
    }
}

/// True when every field of `want` is in `have` with the same value. Objects may hold more
/// keys; arrays must have the same length with each element contained in its counterpart
/// (the server defaults fields inside list elements, e.g. a container's imagePullPolicy).
pub fn contains(have: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| contains(hv, wv)) || wv.is_null()),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| contains(hv, wv))
        }
        (h, w) => h == w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "kube-system"},
            "data": data.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_,_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn contains_ignores_extra_fields_but_not_different_values() {
        let have = json!({"a": 1, "b": {"c": [ {"x": 1, "y": 2} ]}, "extra": true});
        assert!(contains(&have, &json!({"a": 1, "b": {"c": [{"x": 1}]}})));
        assert!(!contains(&have, &json!({"a": 2})));
        assert!(!contains(&have, &json!({"b": {"c": [{"x": 1}, {"x": 2}]}})));
        assert!(!contains(&have, &json!({"missing": 1})));
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let p = RetryPolicy::PHASE;
        assert_eq!(p.wait(0), Duration::from_millis(200));
        assert_eq!(p.wait(1), Duration::from_millis(400));
        assert_eq!(p.wait(10), Duration::from_secs(2));
        assert_eq!(p.wait(40), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn ensure_creates_then_leaves_alone_then_updates() {
        let server = fake::ApiServer::new();
        let client = server.client("kubernetes-admin");
        let api: Api<ConfigMap> = Api::namespaced(client, "kube-system");
        let p = RetryPolicy::PHASE;
        let want = cm("kubeadm-config", &[("k", "v1")]);
        assert_eq!(
            ensure(&api, &want, "cm", &p).await.unwrap(),
            Outcome::Created
        );
        assert_eq!(
            ensure(&api, &want, "cm", &p).await.unwrap(),
            Outcome::Unchanged
        );
        let want2 = cm("kubeadm-config", &[("k", "v2")]);
        assert_eq!(
            ensure(&api, &want2, "cm", &p).await.unwrap(),
            Outcome::Updated
        );
        let live = api.get("kubeadm-config").await.unwrap();
        assert_eq!(live.data.unwrap()["k"], "v2");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_rides_out_an_unavailable_apiserver_but_not_a_denial() {
        let server = fake::ApiServer::new();
        let api: Api<ConfigMap> = Api::namespaced(server.client("admin"), "kube-system");
        server.set_down(true);
        let s2 = server.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            s2.set_down(false);
        });
        let got = retry("get cm x", &RetryPolicy::PHASE, || api.get_opt("x")).await;
        assert!(got.unwrap().is_none());

        server.set_admission(|r| {
            if r.verb == "create" {
                Err(fake::Denied::forbidden("no creates here"))
            } else {
                Ok(())
            }
        });
        let (post, x) = (PostParams::default(), cm("x", &[]));
        let err = retry("create cm x", &RetryPolicy::PHASE, || api.create(&post, &x))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(403), "{err:?}");
        assert!(matches!(err, ApiError::Request { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_at_the_deadline_naming_the_object() {
        let server = fake::ApiServer::new();
        let api: Api<ConfigMap> = Api::namespaced(server.client("admin"), "default");
        server.set_down(true);
        let policy = RetryPolicy {
            deadline: Duration::from_secs(5),
            ..RetryPolicy::PHASE
        };
        let err = retry("get ConfigMap default/x", &policy, || api.get_opt("x"))
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Timeout { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("get ConfigMap default/x"),
            "{err}"
        );
    }
}
