//! init's API phases (issue 11 items 4–9): upload-config, mark-control-plane, bootstrap-token,
//! addon and show-join-command, checked with kubectl against the apiserver init brought up;
//! with the real binaries (`PLINTH_E2E_BIN_DIR`) also the bootstrapsigner's signature of
//! cluster-info and a real `kubeadm join --dry-run` through discovery and TLS bootstrap.

use super::*;
use crate::support::doubles::real_bin_dir;

/// `kubectl --kubeconfig KC ARGS` inside the node's netns.
fn kubectl(node: &Node, kubeconfig: &Path, args: &[&str]) -> Out {
    let kc = kubeconfig.display().to_string();
    let mut all = vec!["--kubeconfig", kc.as_str()];
    all.extend_from_slice(args);
    node.run(&kubectl_binary().expect("kubectl"), &all, SHORT)
}

/// `kubectl get --raw PATH` as JSON; `None` when it fails (404, 403).
fn get_raw(node: &Node, kubeconfig: &Path, path: &str) -> Option<Value> {
    let out = kubectl(node, kubeconfig, &["get", "--raw", path]);
    out.ok()
        .then(|| serde_json::from_str(&out.stdout).expect("JSON"))
}

/// The object at `path`, which must exist.
fn must_get(node: &Node, kubeconfig: &Path, path: &str) -> Value {
    let out = kubectl(node, kubeconfig, &["get", "--raw", path]);
    assert!(out.ok(), "kubectl get --raw {path}:\n{}", out.show());
    serde_json::from_str(&out.stdout).expect("JSON")
}

/// The last line of init's output: `kubeadm join <ep> --token <t> --discovery-token-ca-cert-hash sha256:<h>`.
fn join_line(out: &Out) -> (String, String, String) {
    let last = out
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let w: Vec<&str> = last.split_whitespace().collect();
    assert!(
        w.len() == 7
            && w[..2] == ["kubeadm", "join"]
            && w[3] == "--token"
            && w[5] == "--discovery-token-ca-cert-hash",
        "init's output does not end with the join command:\n{}",
        out.show()
    );
    (w[2].to_string(), w[4].to_string(), w[6].to_string())
}

/// The end of the kube-apiserver pod's log, for failure messages.
fn apiserver_log(node: &Node) -> String {
    let dir = node.root.path("/var/log/pods");
    let mut out = String::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().contains("kube-apiserver") {
            for f in walk(&e.path()) {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&lines[lines.len().saturating_sub(30)..].join("\n"));
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// sha256 of the CA's SubjectPublicKeyInfo, by the real openssl (independent of plinth).
fn openssl_ca_pin(ca: &Path) -> String {
    let script = format!(
        "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | sha256sum",
        ca.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha256:{}",
        text.split_whitespace().next().unwrap_or_default()
    )
}

/// The lines of the API phases that say what happened to an object.
fn object_lines(out: &Out) -> Vec<&str> {
    let phases = [
        "[upload-config]",
        "[mark-control-plane]",
        "[bootstrap-token]",
        "[addons]",
    ];
    out.stdout
        .lines()
        .filter(|l| phases.iter().any(|p| l.starts_with(p)))
        .filter(|l| {
            l.ends_with(": created")
                || l.ends_with(": unchanged")
                || l.ends_with(": updated")
                || l.contains("FAILED")
        })
        .collect()
}

/// What `plinth init` leaves in the API: the kubeadm-config and kubelet-config ConfigMaps, the
/// node marked control-plane, a bootstrap token with kubeadm's RBAC, cluster-info readable by
/// anonymous (signed by the bootstrapsigner with the real controller-manager), CoreDNS and
/// kube-proxy (`--skip-phases addon/kube-proxy` leaves kube-proxy out), and a join command
/// that ends init's output; a re-run changes nothing and says so; with the real binaries the
/// printed `kubeadm join --dry-run` gets through discovery and the TLS bootstrap checks.
#[test]
fn init_posts_cluster_objects_and_kubeadm_join_discovers_the_cluster() {
    let node = Node::new("postinit");
    let name = "cp-postinit";
    let text = std::fs::read_to_string(&node.cfg).unwrap();
    std::fs::write(
        &node.cfg,
        text.replace("  name: cp1\n", &format!("  name: {name}\n")),
    )
    .unwrap();
    let admin = node.root.path("/etc/kubernetes/admin.conf");
    let kubelet = node.root.path("/etc/kubernetes/kubelet.conf");

    // 1. init without kube-proxy.
    let first = node.plinth(&["init", "--skip-phases", "addon/kube-proxy"], INIT_TIMEOUT);
    assert!(first.ok(), "plinth init failed:\n{}", first.show());
    let (endpoint, token, hash) = join_line(&first);
    assert_eq!(endpoint, format!("{}:6443", node.ns.addr()));
    assert_eq!(
        hash,
        openssl_ca_pin(&node.root.path("/etc/kubernetes/pki/ca.crt"))
    );
    assert!(
        first
            .stdout
            .contains("Then you can join any number of worker nodes"),
        "{}",
        first.show()
    );
    assert!(
        !first
            .stdout
            .contains("[addons] DaemonSet kube-system/kube-proxy"),
        "{}",
        first.show()
    );
    assert!(get_raw(
        &node,
        &admin,
        "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"
    )
    .is_none());
    let coredns = must_get(
        &node,
        &admin,
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
    );
    assert_eq!(
        coredns["spec"]["template"]["spec"]["serviceAccountName"],
        "coredns"
    );
    let dns = must_get(
        &node,
        &admin,
        "/api/v1/namespaces/kube-system/services/kube-dns",
    );
    assert_eq!(dns["spec"]["clusterIP"], "10.96.0.10");

    // 2. upload-config.
    let cc = must_get(
        &node,
        &admin,
        "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
    );
    let cc = cc["data"]["ClusterConfiguration"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        cc.contains("apiVersion: kubeadm.k8s.io/v1beta3")
            && cc.contains("kind: ClusterConfiguration"),
        "{cc}"
    );
    let version = binaries_version();
    let kubelet_cm = if version.starts_with("v1.24.0-alpha") {
        "kubelet-config-1.24"
    } else {
        "kubelet-config"
    };
    let kcm = must_get(
        &node,
        &admin,
        &format!("/api/v1/namespaces/kube-system/configmaps/{kubelet_cm}"),
    );
    assert!(kcm["data"]["kubelet"]
        .as_str()
        .unwrap_or_default()
        .contains("kind: KubeletConfiguration"));

    // 3. bootstrap-token: the Secret, kubeadm's bindings, cluster-info for anonymous.
    let id = token.split('.').next().unwrap().to_string();
    let secret = must_get(
        &node,
        &admin,
        &format!("/api/v1/namespaces/kube-system/secrets/bootstrap-token-{id}"),
    );
    assert_eq!(secret["type"], "bootstrap.kubernetes.io/token");
    for crb in [
        "kubeadm:kubelet-bootstrap",
        "kubeadm:get-nodes",
        "kubeadm:node-autoapprove-bootstrap",
        "kubeadm:node-autoapprove-certificate-rotation",
    ] {
        must_get(
            &node,
            &admin,
            &format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{crb}"),
        );
    }
    let server = format!("https://{endpoint}");
    let anonymous =
        crate::support::Https::new(&node.root.path("/etc/kubernetes/pki/ca.crt")).unwrap();
    let (code, body) = anonymous
        .get(
            &node.ns,
            &format!("{server}/api/v1/namespaces/kube-public/configmaps/cluster-info"),
        )
        .expect("GET cluster-info");
    assert_eq!(code, 200, "anonymous cannot read cluster-info: {body}");
    let ci: Value = serde_json::from_str(&body).unwrap();
    assert!(ci["data"]["kubeconfig"]
        .as_str()
        .unwrap_or_default()
        .contains(&format!("server: {server}")));

    // 4. mark-control-plane: the agent registers the Node (when it has a kubeconfig); else
    //    register it as the kubelet would, with kubelet.conf, and run the phase.
    if get_raw(&node, &admin, &format!("/api/v1/nodes/{name}")).is_none() {
        let body = node.dir.path().join("node.json");
        std::fs::write(
            &body,
            serde_json::json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
            .to_string(),
        )
        .unwrap();
        let b = body.display().to_string();
        let reg = kubectl(
            &node,
            &kubelet,
            &["create", "--raw", "/api/v1/nodes", "-f", &b],
        );
        assert!(
            reg.ok(),
            "registering Node {name} with kubelet.conf:\n{}\napiserver log:\n{}",
            reg.show(),
            apiserver_log(&node)
        );
        let mark = node.plinth(&["init", "phase", "mark-control-plane"], SHORT);
        assert!(mark.ok(), "{}", mark.show());
        assert!(
            mark.stdout
                .contains(&format!("[mark-control-plane] Node {name}: updated")),
            "{}",
            mark.show()
        );
    }
    let n = must_get(&node, &admin, &format!("/api/v1/nodes/{name}"));
    assert_eq!(
        n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        ""
    );
    assert_eq!(
        n["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"],
        ""
    );
    let taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t["key"] == "node-role.kubernetes.io/control-plane"
                && t["effect"] == "NoSchedule"),
        "{n}"
    );

    // 5. The whole init again: kube-proxy now, everything else unchanged, the same token.
    let second = node.init_ok();
    let lines = object_lines(&second);
    let changed: Vec<&&str> = lines
        .iter()
        .filter(|l| !l.ends_with(": unchanged"))
        .collect();
    assert!(
        !changed.is_empty()
            && changed
                .iter()
                .all(|l| l.starts_with("[addons]") && l.ends_with(": created")),
        "second init changed more than kube-proxy: {changed:#?}\n{}",
        second.show()
    );
    assert!(
        second
            .stdout
            .contains("[addons] DaemonSet kube-system/kube-proxy: created"),
        "{}",
        second.show()
    );
    assert_eq!(join_line(&second).1, token);
    let third = node.init_ok();
    let lines = object_lines(&third);
    assert!(
        lines.len() > 20 && lines.iter().all(|l| l.ends_with(": unchanged")),
        "{lines:#?}\n{}",
        third.show()
    );
    assert_eq!(join_line(&third).1, token);

    // 6. plinth token: the token is listed; another one comes with a join command.
    let list = node.plinth_raw(
        &[
            "token",
            "list",
            "--kubeconfig",
            &admin.display().to_string(),
        ],
        SHORT,
    );
    assert!(list.ok() && list.stdout.contains(&token), "{}", list.show());
    let created = node.plinth_raw(
        &[
            "token",
            "create",
            "--print-join-command",
            "--kubeconfig",
            &admin.display().to_string(),
        ],
        SHORT,
    );
    assert!(created.ok(), "{}", created.show());
    let (ep2, token2, hash2) = join_line(&created);
    assert_eq!(
        (ep2.as_str(), hash2.as_str()),
        (endpoint.as_str(), hash.as_str())
    );
    assert_ne!(token2, token);

    // 7. Real binaries: the bootstrapsigner signs cluster-info for the token, and a real
    //    `kubeadm join --dry-run` discovers the cluster with the printed command.
    let Some(bin) = real_bin_dir() else {
        eprintln!("postinit e2e: PLINTH_E2E_BIN_DIR unset: the doubles run no bootstrapsigner and there is no real kubeadm; skipping the JWS signature and kubeadm join --dry-run checks");
        return;
    };
    // Nothing but the static pods may land on a plinth node (its agent runs no other pod):
    // the scheduler leaves CoreDNS pending (the node's plinth.io/static-pods-only taint) and
    // kube-proxy's DaemonSet, which tolerates every taint, wants no pod here (its affinity).
    let mut settled = None;
    crate::support::wait_until(Duration::from_secs(45), Duration::from_millis(500), || {
        let ds = get_raw(
            &node,
            &admin,
            "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
        );
        let dns = get_raw(
            &node,
            &admin,
            "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns",
        );
        match (ds, dns) {
            (Some(ds), Some(dns)) => {
                let observed = ds["status"]["observedGeneration"].is_number()
                    && ds["status"]["observedGeneration"] == ds["metadata"]["generation"];
                let pods = dns["items"].as_array().cloned().unwrap_or_default();
                let scheduled = pods.iter().any(|p| {
                    p["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "PodScheduled"))
                });
                if observed && scheduled {
                    settled = Some((ds, pods));
                }
                settled.is_some()
            }
            _ => false,
        }
    });
    let (ds, dns_pods) = settled.expect(
        "kube-proxy DaemonSet observed and CoreDNS pods considered by the scheduler within 45 s",
    );
    assert_eq!(ds["status"]["desiredNumberScheduled"], 0, "{ds}");
    for p in &dns_pods {
        assert!(
            p["spec"]["nodeName"].is_null(),
            "CoreDNS bound to the plinth node: {p}"
        );
    }
    let n = must_get(&node, &admin, &format!("/api/v1/nodes/{name}"));
    assert!(
        n["spec"]["taints"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["key"] == "plinth.io/static-pods-only" && t["effect"] == "NoSchedule")),
        "{n}"
    );

    let jws = format!("jws-kubeconfig-{id}");
    let signed =
        crate::support::wait_until(Duration::from_secs(45), Duration::from_millis(500), || {
            get_raw(
                &node,
                &admin,
                "/api/v1/namespaces/kube-public/configmaps/cluster-info",
            )
            .is_some_and(|c| c["data"][&jws].is_string())
        });
    let yaml = kubectl(
        &node,
        &admin,
        &[
            "get",
            "cm",
            "cluster-info",
            "-n",
            "kube-public",
            "-o",
            "yaml",
        ],
    );
    assert!(
        signed && yaml.stdout.contains(&format!("{jws}:")),
        "cluster-info not signed:\n{}",
        yaml.show()
    );
    let nodes = kubectl(&node, &admin, &["get", "nodes"]);
    assert!(
        nodes
            .stdout
            .lines()
            .any(|l| l.starts_with(name) && l.contains("control-plane")),
        "{}",
        nodes.show()
    );
    let kubeadm = bin.join("kubeadm");
    // kubeadm's dry run writes into /etc/kubernetes/tmp/kubeadm-join-dryrun*/ on this host:
    // remove what it made (and the directories, when this test created them).
    let host_dirs = ["/etc/kubernetes", "/etc/kubernetes/tmp"];
    let existed: Vec<bool> = host_dirs.iter().map(|d| Path::new(d).exists()).collect();
    let join = node.run(
        &kubeadm,
        &[
            "join",
            &endpoint,
            "--token",
            &token,
            "--discovery-token-ca-cert-hash",
            &hash,
            "--dry-run",
            "--ignore-preflight-errors=all",
            "--node-name",
            "worker-postinit",
            "-v=1",
        ],
        Duration::from_secs(90),
    );
    let all = format!("{}\n{}", join.stdout, join.stderr);
    for word in all.split('"') {
        if word.starts_with("/etc/kubernetes/tmp/kubeadm-join-dryrun")
            && !word.contains(char::is_whitespace)
        {
            let dir = Path::new(word);
            let dir = if dir.extension().is_some() {
                dir.parent().unwrap_or(dir)
            } else {
                dir
            };
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    for (d, existed) in host_dirs.iter().zip(existed).rev() {
        if !existed {
            let _ = std::fs::remove_dir(d);
        }
    }
    assert!(
        all.contains("Cluster info signature and contents are valid and TLS certificate validates against pinned roots"),
        "kubeadm join did not get through discovery:\n{}",
        join.show()
    );
    // Past the TLS bootstrap checks: the bootstrap token read kubeadm-config and the kubelet
    // configuration, and got (no) Node of this name.
    assert!(
        all.contains("[dryrun] Would start the kubelet") && all.contains("clusterDNS:"),
        "kubeadm join did not get through the TLS bootstrap checks:\n{}",
        join.show()
    );
    assert!(
        join.ok(),
        "kubeadm join --dry-run failed after discovery:\n{}",
        join.show()
    );
    eprintln!("kubeadm join --dry-run:\n{}", join.show());
}
