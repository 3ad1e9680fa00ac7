//! An in-memory apiserver for unit tests, behind a real [`kube::Client`].
//!
//! It serves the REST verbs plinth uses (get, list with field/label selectors on equality,
//! create, update, merge and JSON patch, delete with preconditions, the `status` subresource)
//! for any resource path, keeps resourceVersions (a stale one is a 409 Conflict) and lets a test
//! install an admission hook that sees the requesting user and refuses what the real
//! apiserver refuses for that call (Node authorizer, NodeRestriction, validation). It can be
//! taken down ([`ApiServer::set_down`]) to test retries and catch-up. It is not a second
//! apiserver: no watches, no defaulting, no strategic merge or server-side apply (they are
//! answered 415 / 405 so the code under test does not rely on them unknowingly).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Method, Request as HttpRequest, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

/// One request as the admission hook sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The user the client authenticates as (e.g. `system:node:cp1`).
    pub user: &'a str,
    /// `get`, `list`, `create`, `update`, `patch` or `delete`.
    pub verb: &'static str,
    /// The resource's plural name, e.g. `pods`.
    pub resource: &'a str,
    /// The subresource, e.g. `status`.
    pub subresource: Option<&'a str>,
    /// The namespace, for namespaced resources.
    pub namespace: Option<&'a str>,
    /// The object's name (none for list and for a create with generateName).
    pub name: Option<&'a str>,
    /// The object as it would be stored (create, update, patch).
    pub object: Option<&'a Value>,
    /// The stored object before the request (update, patch, delete).
    pub existing: Option<&'a Value>,
}

/// A refusal by the admission hook, answered as a metav1 Status.
#[derive(Debug, Clone)]
pub struct Denied {
    /// HTTP code.
    pub code: u16,
    /// Machine-readable reason (Forbidden, Invalid, …).
    pub reason: String,
    /// Message.
    pub message: String,
}

impl Denied {
    /// 403 Forbidden, as the authorizer or an admission plugin answers.
    pub fn forbidden(message: impl Into<String>) -> Denied {
        Denied {
            code: 403,
            reason: "Forbidden".into(),
            message: message.into(),
        }
    }

    /// 422 Invalid, as validation answers.
    pub fn invalid(message: impl Into<String>) -> Denied {
        Denied {
            code: 422,
            reason: "Invalid".into(),
            message: message.into(),
        }
    }
}

type Admission = Arc<dyn Fn(&Request<'_>) -> Result<(), Denied> + Send + Sync>;

/// A request as it was received, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The user.
    pub user: String,
    /// The verb (see [`Request::verb`]).
    pub verb: String,
    /// The path, without the query.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group_version: String,
    resource: String,
    namespace: Option<String>,
    name: String,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    uid: u64,
    down: bool,
    admission: Option<Admission>,
    log: Vec<Logged>,
}

/// The in-memory apiserver. Clones share one store.
#[derive(Clone, Default)]
pub struct ApiServer {
    state: Arc<Mutex<State>>,
}

/// The transport error of a server that is down (a connection refused, for the client).
#[derive(Debug, thiserror::Error)]
#[error("connection refused (the fake apiserver is down)")]
pub struct Down;

impl ApiServer {
    /// An empty apiserver.
    pub fn new() -> ApiServer {
        ApiServer::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client that authenticates as `user`.
    pub fn client(&self, user: &str) -> kube::Client {
        let server = self.clone();
        let user = user.to_string();
        let service = tower::service_fn(move |req: HttpRequest<kube::client::Body>| {
            let server = server.clone();
            let user = user.clone();
            async move {
                if server.lock().down {
                    return Err(Box::new(Down) as Box<dyn std::error::Error + Send + Sync>);
                }
                let (parts, body) = req.into_parts();
                let body = body.collect().await?.to_bytes();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    server.handle(
                        &user,
                        &parts.method,
                        &parts.uri,
                        parts
                            .headers
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or(""),
                        &body,
                    ),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    /// Takes the server down (every request fails as a refused connection) or back up.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Installs the admission hook, called for every request before it takes effect.
    pub fn set_admission(
        &self,
        hook: impl Fn(&Request<'_>) -> Result<(), Denied> + Send + Sync + 'static,
    ) {
        self.lock().admission = Some(Arc::new(hook));
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// The stored object at an API path such as `api/v1/namespaces/kube-system/pods/etcd-cp1`
    /// or `api/v1/nodes/cp1`.
    pub fn get(&self, path: &str) -> Option<Value> {
        let key = parse_path(path).ok()?.key()?;
        self.lock().objects.get(&key).cloned()
    }

    /// The stored objects of a collection path such as `api/v1/namespaces/kube-system/pods`.
    pub fn list(&self, path: &str) -> Vec<Value> {
        let Ok(p) = parse_path(path) else {
            return Vec::new();
        };
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| p.selects(k))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Removes an object behind the client's back (as `kubectl delete` by someone else does).
    pub fn remove(&self, path: &str) -> Option<Value> {
        let key = parse_path(path).ok()?.key()?;
        self.lock().objects.remove(&key)
    }

    fn handle(
        &self,
        user: &str,
        method: &Method,
        uri: &http::Uri,
        content_type: &str,
        body: &Bytes,
    ) -> Response<Full<Bytes>> {
        let path = uri.path().trim_start_matches('/');
        let query: BTreeMap<String, String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), percent_decode(v)))
            .collect();
        let mut st = self.lock();
        let parsed = match parse_path(path) {
            Ok(p) => p,
            Err(msg) => return status(404, "NotFound", &msg),
        };
        let verb = match (method, parsed.name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) => "list",
            (&Method::POST, false) => "create",
            (&Method::PUT, true) => "update",
            (&Method::PATCH, true) => "patch",
            (&Method::DELETE, true) => "delete",
            _ => return status(405, "MethodNotAllowed", &format!("{method} {path}")),
        };
        st.log.push(Logged {
            user: user.into(),
            verb: verb.into(),
            path: path.into(),
        });
        if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
            return status(
                405,
                "MethodNotAllowed",
                "the fake apiserver serves no watches",
            );
        }
        let admission = st.admission.clone();
        let admit = |object: Option<&Value>, existing: Option<&Value>, name: Option<&str>| {
            let Some(hook) = &admission else {
                return Ok(());
            };
            hook(&Request {
                user,
                verb,
                resource: &parsed.resource,
                subresource: parsed.subresource.as_deref(),
                namespace: parsed.namespace.as_deref(),
                name,
                object,
                existing,
            })
        };
        let parse_body = || -> Result<Value, Response<Full<Bytes>>> {
            serde_json::from_slice(body)
                .map_err(|e| status(400, "BadRequest", &format!("body is not JSON: {e}")))
        };
        let kind = parsed.resource.clone();
        match verb {
            "list" => {
                if let Err(d) = admit(None, None, None) {
                    return denied(d);
                }
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|(k, v)| {
                        parsed.selects(k)
                            && selector_matches(query.get("fieldSelector"), v, field_value)
                            && selector_matches(query.get("labelSelector"), v, label_value)
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                let rv = st.resource_version.to_string();
                ok(
                    200,
                    &json!({"kind": "List", "apiVersion": "v1",
                    "metadata": {"resourceVersion": rv}, "items": items}),
                )
            }
            "get" => {
                let key = parsed.key().expect("named");
                let existing = st.objects.get(&key);
                if let Err(d) = admit(None, existing, Some(&key.name)) {
                    return denied(d);
                }
                match existing {
                    Some(v) => ok(200, v),
                    None => not_found(&kind, &key.name),
                }
            }
            "create" => {
                let mut obj = match parse_body() {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                let name = match obj["metadata"]["name"].as_str() {
                    Some(n) if !n.is_empty() => n.to_string(),
                    _ => match obj["metadata"]["generateName"].as_str() {
                        Some(g) => format!("{g}{:05x}", st.uid + 1),
                        None => return status(422, "Invalid", "metadata.name: Required value"),
                    },
                };
                let key = Key {
                    name: name.clone(),
                    ..parsed.collection_key()
                };
                if let Some(ns) = &key.namespace {
                    if obj["metadata"]["namespace"]
                        .as_str()
                        .is_some_and(|n| n != ns)
                    {
                        return status(400, "BadRequest", "the namespace of the object does not match the namespace on the request");
                    }
                    obj["metadata"]["namespace"] = json!(ns);
                }
                obj["metadata"]["name"] = json!(name);
                if let Err(d) = admit(Some(&obj), None, Some(&name)) {
                    return denied(d);
                }
                if st.objects.contains_key(&key) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("{kind} \"{name}\" already exists"),
                    );
                }
                st.uid += 1;
                st.resource_version += 1;
                let meta = &mut obj["metadata"];
                meta["uid"] = json!(format!("00000000-0000-0000-0000-{:012x}", st.uid));
                meta["resourceVersion"] = json!(st.resource_version.to_string());
                meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                st.objects.insert(key, obj.clone());
                ok(201, &obj)
            }
            "update" | "patch" => {
                let key = parsed.key().expect("named");
                let Some(existing) = st.objects.get(&key).cloned() else {
                    return not_found(&kind, &key.name);
                };
                let submitted = if verb == "update" {
                    match parse_body() {
                        Ok(v) => v,
                        Err(r) => return r,
                    }
                } else {
                    let patch = match parse_body() {
                        Ok(v) => v,
                        Err(r) => return r,
                    };
                    let mut doc = existing.clone();
                    match content_type {
                        "application/merge-patch+json" => json_patch::merge(&mut doc, &patch),
                        "application/json-patch+json" => {
                            let ops: json_patch::Patch = match serde_json::from_value(patch) {
                                Ok(p) => p,
                                Err(e) => return status(400, "BadRequest", &e.to_string()),
                            };
                            if let Err(e) = json_patch::patch(&mut doc, &ops) {
                                return status(422, "Invalid", &e.to_string());
                            }
                        }
                        other => {
                            return status(
                                415,
                                "UnsupportedMediaType",
                                &format!(
                                    "the fake apiserver takes merge and JSON patches, not {other}"
                                ),
                            )
                        }
                    }
                    doc
                };
                let want_rv = submitted["metadata"]["resourceVersion"].as_str();
                if want_rv
                    .is_some_and(|rv| Some(rv) != existing["metadata"]["resourceVersion"].as_str())
                {
                    return status(409, "Conflict", &format!("Operation cannot be fulfilled on {kind} \"{}\": the object has been modified; please apply your changes to the latest version and try again", key.name));
                }
                let mut obj = if parsed.subresource.as_deref() == Some("status") {
                    let mut o = existing.clone();
                    o["status"] = submitted["status"].clone();
                    o
                } else {
                    let mut o = submitted;
                    if let Some(s) = existing.get("status") {
                        o["status"] = s.clone();
                    }
                    o
                };
                for field in ["uid", "creationTimestamp", "namespace", "name"] {
                    obj["metadata"][field] = existing["metadata"][field].clone();
                }
                if let Err(d) = admit(Some(&obj), Some(&existing), Some(&key.name)) {
                    return denied(d);
                }
                st.resource_version += 1;
                obj["metadata"]["resourceVersion"] = json!(st.resource_version.to_string());
                st.objects.insert(key, obj.clone());
                ok(200, &obj)
            }
            "delete" => {
                let key = parsed.key().expect("named");
                let Some(existing) = st.objects.get(&key).cloned() else {
                    return not_found(&kind, &key.name);
                };
                let opts: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let pre = &opts["preconditions"];
                for field in ["uid", "resourceVersion"] {
                    if let Some(want) = pre[field].as_str() {
                        if existing["metadata"][field].as_str() != Some(want) {
                            return status(409, "Conflict", &format!("Precondition failed: {field} in precondition: {want}, {field} in object meta: {}", existing["metadata"][field]));
                        }
                    }
                }
                if let Err(d) = admit(None, Some(&existing), Some(&key.name)) {
                    return denied(d);
                }
                st.objects.remove(&key);
                ok(200, &existing)
            }
            _ => unreachable!("verbs are matched above"),
        }
    }
}

/// A parsed API path.
#[derive(Debug)]
struct ApiPath {
    group_version: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl ApiPath {
    fn collection_key(&self) -> Key {
        Key {
            group_version: self.group_version.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            name: String::new(),
        }
    }

    fn key(&self) -> Option<Key> {
        Some(Key {
            name: self.name.clone()?,
            ..self.collection_key()
        })
    }

    /// True for the keys of this collection (all namespaces when the path names none).
    fn selects(&self, k: &Key) -> bool {
        k.group_version == self.group_version
            && k.resource == self.resource
            && (self.namespace.is_none() || k.namespace == self.namespace)
            && self.name.as_ref().is_none_or(|n| *n == k.name)
    }
}

fn parse_path(path: &str) -> Result<ApiPath, String> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return Err(format!("the fake apiserver does not serve /{path}")),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, r, rest @ ..] => (Some(ns.to_string()), [&[*r][..], rest].concat()),
        _ => (None, rest.to_vec()),
    };
    match rest.as_slice() {
        [r] => Ok(ApiPath {
            group_version: gv,
            resource: r.to_string(),
            namespace,
            name: None,
            subresource: None,
        }),
        [r, n, sub @ ..] if sub.len() <= 1 => Ok(ApiPath {
            group_version: gv,
            resource: r.to_string(),
            namespace,
            name: Some(n.to_string()),
            subresource: sub.first().map(|s| s.to_string()),
        }),
        _ => Err(format!("the fake apiserver does not serve /{path}")),
    }
}

fn field_value<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    field
        .split('.')
        .try_fold(obj, |v, k| v.get(k))
        .and_then(Value::as_str)
}

fn label_value<'a>(obj: &'a Value, label: &str) -> Option<&'a str> {
    obj["metadata"]["labels"].get(label).and_then(Value::as_str)
}

/// Equality-based selectors (`a=b,c!=d`), as plinth uses them.
fn selector_matches(
    selector: Option<&String>,
    obj: &Value,
    value: for<'a> fn(&'a Value, &str) -> Option<&'a str>,
) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    sel.split(',').all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            value(obj, k) != Some(v)
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            value(obj, k) == Some(v)
        } else {
            value(obj, term).is_some()
        }
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ok(code: u16, v: &Value) -> Response<Full<Bytes>> {
    respond(code, v)
}

fn denied(d: Denied) -> Response<Full<Bytes>> {
    status(d.code, &d.reason, &d.message)
}

fn not_found(kind: &str, name: &str) -> Response<Full<Bytes>> {
    status(404, "NotFound", &format!("{kind} \"{name}\" not found"))
}

fn status(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}),
    )
}

fn respond(code: u16, v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

    fn pod(name: &str, node: &str) -> Pod {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}))
        .unwrap()
    }

    #[tokio::test]
    async fn crud_with_resource_versions_and_conflicts() {
        let s = ApiServer::new();
        let pods: Api<Pod> = Api::namespaced(s.client("admin"), "kube-system");
        let created = pods
            .create(&PostParams::default(), &pod("a", "n1"))
            .await
            .unwrap();
        let rv = created.metadata.resource_version.clone().unwrap();
        let err = pods
            .create(&PostParams::default(), &pod("a", "n1"))
            .await
            .unwrap_err();
        assert!(crate::apiclient::is_already_exists(&err), "{err:?}");
        // A replace with the current resourceVersion works; with the old one it conflicts.
        let mut p = created.clone();
        p.metadata.labels = Some([("x".to_string(), "1".to_string())].into());
        pods.replace("a", &PostParams::default(), &p).await.unwrap();
        let err = pods
            .replace("a", &PostParams::default(), &p)
            .await
            .unwrap_err();
        assert!(crate::apiclient::is_conflict(&err), "{err:?}");
        assert_ne!(
            pods.get("a")
                .await
                .unwrap()
                .metadata
                .resource_version
                .unwrap(),
            rv
        );
        // Status goes through its subresource only.
        let st = json!({"status": {"phase": "Running"}});
        pods.patch_status("a", &PatchParams::default(), &Patch::Merge(&st))
            .await
            .unwrap();
        pods.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}})),
        )
        .await
        .unwrap();
        assert_eq!(
            pods.get("a").await.unwrap().status.unwrap().phase.unwrap(),
            "Running"
        );
        // Field selectors and deletes with a UID precondition.
        pods.create(&PostParams::default(), &pod("b", "n2"))
            .await
            .unwrap();
        let on_n1 = pods
            .list(&ListParams::default().fields("spec.nodeName=n1"))
            .await
            .unwrap();
        assert_eq!(on_n1.items.len(), 1);
        let wrong = DeleteParams::default().preconditions(kube::api::Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        });
        assert!(crate::apiclient::is_conflict(
            &pods.delete("b", &wrong).await.unwrap_err()
        ));
        pods.delete("b", &DeleteParams::default()).await.unwrap();
        assert!(pods.get_opt("b").await.unwrap().is_none());
        assert!(s.get("api/v1/namespaces/kube-system/pods/a").is_some());
        assert_eq!(s.list("api/v1/namespaces/kube-system/pods").len(), 1);
    }

    #[tokio::test]
    async fn admission_sees_the_user_and_cluster_scoped_paths_work() {
        let s = ApiServer::new();
        s.set_admission(|r| match (r.user, r.resource, r.name) {
            ("system:node:n1", "nodes", Some("n1")) | ("admin", _, _) => Ok(()),
            _ => Err(Denied::forbidden(format!(
                "{} cannot {} nodes {:?}",
                r.user, r.verb, r.name
            ))),
        });
        let node = |n: &str| -> Node {
            serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}),
            )
            .unwrap()
        };
        let as_n1: Api<Node> = Api::all(s.client("system:node:n1"));
        as_n1
            .create(&PostParams::default(), &node("n1"))
            .await
            .unwrap();
        let err = as_n1
            .create(&PostParams::default(), &node("n2"))
            .await
            .unwrap_err();
        assert_eq!(crate::apiclient::code(&err), Some(403));
        assert!(s.get("api/v1/nodes/n1").is_some() && s.get("api/v1/nodes/n2").is_none());
        let cms: Api<ConfigMap> = Api::namespaced(s.client("admin"), "kube-public");
        let err = cms
            .patch("x", &PatchParams::default(), &Patch::Strategic(json!({})))
            .await
            .unwrap_err();
        assert_eq!(crate::apiclient::code(&err), Some(404));
        assert_eq!(s.requests().last().unwrap().user, "admin");
    }
}
