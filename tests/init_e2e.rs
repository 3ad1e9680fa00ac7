//! Integration tests: init_e2e.
//!
//! - `doubles_selftest`: proves the strict test doubles (tests/support/doubles) accept a
//!   correct, kubeadm-shaped invocation and reject what the real binaries reject, against a real
//!   etcd inside a network namespace.
//! - `init_flow`: issue 3's end-to-end suite — the real `plinth` binary from an empty root to a
//!   healthy control plane and through the day-2 verbs (verify, manifest regenerate, certs
//!   renew, reset), plus the failure paths (preflight, a control plane that cannot become
//!   healthy). Doubles by default, real binaries with `PLINTH_E2E_BIN_DIR`: same assertions.

mod doubles_selftest {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    use nix::sys::signal::Signal;
    use serde_json::json;

    use crate::support::doubles::doubles_dir;
    use crate::support::{
        kubectl_binary, rsa_key_pair, wait_until, write_kubeconfig, ChildGuard, Etcd, EtcdPki,
        Https, KeyPair, NetNs, TestCa, Usage,
    };

    /// A netns with a real TLS etcd and a full kubeadm-like PKI for the control plane.
    struct Fixture {
        ns: NetNs,
        dir: tempfile::TempDir,
        etcd_pki: EtcdPki,
        etcd: Etcd,
        ca: TestCa,
        apiserver: KeyPair,
        apiserver_etcd_client: KeyPair,
        kubelet_client: KeyPair,
        front_proxy_ca: TestCa,
        front_proxy_client: KeyPair,
        sa_key: PathBuf,
        sa_pub: PathBuf,
        super_admin: KeyPair,
        admin: KeyPair,
    }

    fn p(x: &Path) -> String {
        x.display().to_string()
    }

    impl Fixture {
        fn new(tag: &str) -> Fixture {
            let ns = NetNs::create(tag).expect("netns");
            let dir = tempfile::tempdir().expect("tempdir");
            let pki = dir.path().join("pki");
            let etcd_pki = EtcdPki::new(&pki.join("etcd"), ns.addr()).expect("etcd pki");
            let etcd = Etcd::start(&ns, &dir.path().join("etcd"), &etcd_pki).expect("etcd");
            let ca = TestCa::new(&pki, "ca", "kubernetes").unwrap();
            let sans = [
                format!("IP:{}", ns.addr()),
                "IP:127.0.0.1".into(),
                "DNS:localhost".into(),
                "DNS:kubernetes".into(),
            ];
            let apiserver = ca
                .issue(
                    &pki,
                    "apiserver",
                    "kube-apiserver",
                    &[],
                    &sans,
                    Usage::Server,
                )
                .unwrap();
            let kubelet_client = ca
                .issue(
                    &pki,
                    "apiserver-kubelet-client",
                    "kube-apiserver-kubelet-client",
                    &["kubeadm:cluster-admins"],
                    &[],
                    Usage::Client,
                )
                .unwrap();
            let apiserver_etcd_client = etcd_pki.client.clone();
            let front_proxy_ca = TestCa::new(&pki, "front-proxy-ca", "front-proxy-ca").unwrap();
            let front_proxy_client = front_proxy_ca
                .issue(
                    &pki,
                    "front-proxy-client",
                    "front-proxy-client",
                    &[],
                    &[],
                    Usage::Client,
                )
                .unwrap();
            let (sa_key, sa_pub) = rsa_key_pair(&pki, "sa").unwrap();
            let super_admin = ca
                .issue(
                    &pki,
                    "super-admin",
                    "kubernetes-super-admin",
                    &["system:masters"],
                    &[],
                    Usage::Client,
                )
                .unwrap();
            let admin = ca
                .issue(
                    &pki,
                    "admin",
                    "kubernetes-admin",
                    &["kubeadm:cluster-admins"],
                    &[],
                    Usage::Client,
                )
                .unwrap();
            Fixture {
                ns,
                dir,
                etcd_pki,
                etcd,
                ca,
                apiserver,
                apiserver_etcd_client,
                kubelet_client,
                front_proxy_ca,
                front_proxy_client,
                sa_key,
                sa_pub,
                super_admin,
                admin,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("https://{}:6443{path}", self.ns.addr())
        }

        /// kubeadm's kube-apiserver flags for this fixture, with `overrides` (`--name=value`)
        /// replacing flags of the same name or appended.
        fn apiserver_args(&self, overrides: &[String]) -> Vec<String> {
            let mut args = vec![
                format!("--advertise-address={}", self.ns.addr()),
                "--allow-privileged=true".into(),
                "--authorization-mode=Node,RBAC".into(),
                format!("--client-ca-file={}", p(&self.ca.cert)),
                "--enable-admission-plugins=NodeRestriction".into(),
                "--enable-bootstrap-token-auth=true".into(),
                format!("--etcd-cafile={}", p(&self.etcd_pki.ca.cert)),
                format!("--etcd-certfile={}", p(&self.apiserver_etcd_client.cert)),
                format!("--etcd-keyfile={}", p(&self.apiserver_etcd_client.key)),
                format!("--etcd-servers={}", self.etcd.client_url),
                format!(
                    "--kubelet-client-certificate={}",
                    p(&self.kubelet_client.cert)
                ),
                format!("--kubelet-client-key={}", p(&self.kubelet_client.key)),
                "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
                format!(
                    "--proxy-client-cert-file={}",
                    p(&self.front_proxy_client.cert)
                ),
                format!(
                    "--proxy-client-key-file={}",
                    p(&self.front_proxy_client.key)
                ),
                "--requestheader-allowed-names=front-proxy-client".into(),
                format!(
                    "--requestheader-client-ca-file={}",
                    p(&self.front_proxy_ca.cert)
                ),
                "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
                "--requestheader-group-headers=X-Remote-Group".into(),
                "--requestheader-username-headers=X-Remote-User".into(),
                "--secure-port=6443".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p(&self.sa_pub)),
                format!("--service-account-signing-key-file={}", p(&self.sa_key)),
                "--service-cluster-ip-range=10.96.0.0/12".into(),
                format!("--tls-cert-file={}", p(&self.apiserver.cert)),
                format!("--tls-private-key-file={}", p(&self.apiserver.key)),
            ];
            for o in overrides {
                let name = o.split('=').next().unwrap_or(o);
                args.retain(|a| a.split('=').next() != Some(name));
                args.push(o.clone());
            }
            args
        }

        /// Starts a double inside the netns with its log in the temp dir.
        fn start(
            &self,
            component: &str,
            args: &[String],
            env: &[(&str, &str)],
            log: &str,
        ) -> ChildGuard {
            let mut cmd = self.ns.command(doubles_dir().join(component));
            cmd.args(args);
            for (k, v) in env {
                cmd.env(k, v);
            }
            ChildGuard::spawn_logged(&mut cmd, &self.dir.path().join(log)).expect("spawn double")
        }

        fn start_apiserver(&self, overrides: &[String], log: &str) -> ChildGuard {
            self.start("kube-apiserver", &self.apiserver_args(overrides), &[], log)
        }

        fn client(&self, who: Option<&KeyPair>) -> Https {
            let c = Https::new(&self.ca.cert).unwrap();
            match who {
                Some(kp) => c.client_cert(&kp.cert, &kp.key).unwrap(),
                None => c,
            }
        }

        /// Waits until GET url answers 200 (or the process exits); panics with the log.
        fn wait_ok(&self, guard: &mut ChildGuard, client: &Https, url: &str) {
            let ok = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
                if matches!(guard.try_wait(), Ok(Some(_))) {
                    return true;
                }
                matches!(client.get(&self.ns, url), Ok((200, _)))
            });
            if let Ok(Some(st)) = guard.try_wait() {
                panic!("double exited ({st}) before {url} was ok:\n{}", guard.log());
            }
            assert!(ok, "{url} not ok within 30s:\n{}", guard.log());
        }

        fn kubeconfig(&self, name: &str, user: &str, kp: &KeyPair) -> PathBuf {
            let path = self.dir.path().join(format!("{name}.conf"));
            write_kubeconfig(&path, &self.url(""), &self.ca.cert, kp, user).unwrap();
            path
        }
    }

    /// Runs a double to completion (inside `ns` when given — always when the arguments name a
    /// netns address): (exit code, stderr).
    fn run_to_exit(
        ns: Option<&NetNs>,
        component: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> (Option<i32>, String) {
        let program = doubles_dir().join(component);
        let mut cmd = match ns {
            Some(ns) => ns.command(&program),
            None => Command::new(&program),
        };
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run double");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn wait_exit(guard: &mut ChildGuard, secs: u64) -> Option<i32> {
        let st = guard
            .wait_timeout(Duration::from_secs(secs))
            .unwrap()
            .unwrap_or_else(|| panic!("double still running after {secs}s:\n{}", guard.log()));
        st.code()
    }

    #[test]
    fn apiserver_serves_health_over_tls_and_follows_etcd() {
        let mut fx = Fixture::new("dbl-ok");
        let mut api = fx.start_apiserver(&[], "apiserver.log");
        let anon = fx.client(None);
        fx.wait_ok(&mut api, &anon, &fx.url("/readyz"));

        let (code, body) = anon.get(&fx.ns, &fx.url("/readyz")).unwrap();
        assert_eq!((code, body.as_str()), (200, "ok"));
        assert_eq!(anon.get(&fx.ns, &fx.url("/livez")).unwrap().0, 200);
        let (code, body) = anon.get(&fx.ns, &fx.url("/version")).unwrap();
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["gitVersion"], "v1.33.0");
        assert_eq!(
            (v["major"].as_str(), v["minor"].as_str()),
            (Some("1"), Some("33"))
        );

        // Anonymous users only see the public paths; system:masters sees namespaces.
        let (code, body) = anon.get(&fx.ns, &fx.url("/api/v1/namespaces")).unwrap();
        assert_eq!(code, 403, "{body}");
        assert!(body.contains("system:anonymous"), "{body}");
        let masters = fx.client(Some(&fx.super_admin));
        let (code, body) = masters.get(&fx.ns, &fx.url("/api/v1/namespaces")).unwrap();
        assert_eq!(code, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let names: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["default", "kube-node-lease", "kube-public", "kube-system"]
        );

        // A client cert from another CA fails the TLS handshake.
        let stranger_ca = TestCa::new(&fx.dir.path().join("stranger"), "ca", "stranger").unwrap();
        let stranger = stranger_ca
            .issue(
                &fx.dir.path().join("stranger"),
                "s",
                "intruder",
                &["system:masters"],
                &[],
                Usage::Client,
            )
            .unwrap();
        assert!(fx
            .client(Some(&stranger))
            .get(&fx.ns, &fx.url("/readyz"))
            .is_err());
        // The serving cert does not verify against another CA.
        assert!(Https::new(&stranger_ca.cert)
            .unwrap()
            .get(&fx.ns, &fx.url("/livez"))
            .is_err());

        // The log names each request's identity.
        assert!(wait_until(
            Duration::from_secs(2),
            Duration::from_millis(50),
            || api
                .log()
                .contains("user=\"kubernetes-super-admin\" groups=[\"system:masters\"")
        ));

        // etcd gone → /readyz fails, /livez stays ok.
        fx.etcd.guard.kill();
        assert!(
            wait_until(
                Duration::from_secs(10),
                Duration::from_millis(200),
                || matches!(anon.get(&fx.ns, &fx.url("/readyz")), Ok((500, _)))
            ),
            "readyz stayed ok without etcd:\n{}",
            api.log()
        );
        let (_, body) = anon.get(&fx.ns, &fx.url("/readyz?verbose")).unwrap();
        assert!(body.contains("[-]etcd failed"), "{body}");
        assert_eq!(anon.get(&fx.ns, &fx.url("/livez")).unwrap().0, 200);

        // SIGTERM → prompt exit 0.
        api.signal(Signal::SIGTERM).unwrap();
        assert_eq!(wait_exit(&mut api, 5), Some(0));
    }

    #[test]
    fn cluster_admins_binding_flow_is_checked_and_persisted_in_etcd() {
        let fx = Fixture::new("dbl-crb");
        let mut api = fx.start_apiserver(&[], "apiserver.log");
        let anon = fx.client(None);
        fx.wait_ok(&mut api, &anon, &fx.url("/readyz"));
        let crbs = fx.url("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings");
        let one = format!("{crbs}/kubeadm:cluster-admins");
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kubeadm:cluster-admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubeadm:cluster-admins"}]
        });
        let admin = fx.client(Some(&fx.admin));
        let masters = fx.client(Some(&fx.super_admin));

        // Before the binding: admin.conf's identity is not authorized for anything but health.
        let (code, body) = admin.post_json(&fx.ns, &crbs, &binding).unwrap();
        assert_eq!(code, 403, "{body}");
        assert!(
            body.contains("kubernetes-admin") && body.contains("Forbidden"),
            "{body}"
        );
        assert_eq!(
            admin.get(&fx.ns, &fx.url("/api/v1/namespaces")).unwrap().0,
            403
        );
        assert_eq!(masters.get(&fx.ns, &one).unwrap().0, 404);

        // A wrong body is refused with the field named.
        let mut wrong = binding.clone();
        wrong["roleRef"]["name"] = json!("view");
        let (code, body) = masters.post_json(&fx.ns, &crbs, &wrong).unwrap();
        assert_eq!(code, 422, "{body}");
        assert!(body.contains("roleRef.name"), "{body}");

        let (code, body) = masters.post_json(&fx.ns, &crbs, &binding).unwrap();
        assert_eq!(code, 201, "{body}");
        let (code, body) = masters.post_json(&fx.ns, &crbs, &binding).unwrap();
        assert_eq!(code, 409, "{body}");
        assert!(body.contains("AlreadyExists"), "{body}");
        let (code, body) = masters.get(&fx.ns, &one).unwrap();
        assert_eq!(code, 200, "{body}");
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(got["roleRef"]["name"], "cluster-admin");

        // Now kubeadm:cluster-admins may act.
        assert_eq!(
            admin.get(&fx.ns, &fx.url("/api/v1/namespaces")).unwrap().0,
            200
        );

        // Real kubectl with an admin kubeconfig: discovery, list namespaces, raw readyz.
        let kubectl = kubectl_binary().expect("kubectl (scripts/install-deps.sh installs it)");
        let kc = fx.kubeconfig("admin", "kubernetes-admin", &fx.admin);
        let cache = fx.dir.path().join("kubectl-cache");
        let run = |args: &[&str]| {
            let out = fx
                .ns
                .command(&kubectl)
                .arg(format!("--kubeconfig={}", kc.display()))
                .arg(format!("--cache-dir={}", cache.display()))
                .args(args)
                .env("HOME", fx.dir.path())
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (ok, out, err) = run(&["get", "namespaces"]);
        assert!(
            ok && out.contains("kube-system") && out.contains("Active"),
            "{out}\n{err}"
        );
        let (ok, out, err) = run(&["get", "--raw", "/readyz"]);
        assert!(ok && out.trim() == "ok", "{out}\n{err}");

        // Restarted apiserver still has the binding: it lives in etcd.
        api.kill();
        let mut api2 = fx.start_apiserver(&[], "apiserver2.log");
        fx.wait_ok(&mut api2, &anon, &fx.url("/readyz"));
        assert_eq!(masters.get(&fx.ns, &one).unwrap().0, 200);
        assert_eq!(masters.post_json(&fx.ns, &crbs, &binding).unwrap().0, 409);
    }

    #[test]
    fn apiserver_rejects_mismatched_key_pairs_naming_both_files() {
        let fx = Fixture::new("dbl-key");
        let args = fx.apiserver_args(&[format!("--tls-private-key-file={}", p(&fx.admin.key))]);
        let mut api = fx.start("kube-apiserver", &args, &[], "apiserver.log");
        let code = wait_exit(&mut api, 20);
        assert_ne!(code, Some(0));
        let log = api.log();
        assert!(log.contains("private key does not match"), "{log}");
        assert!(
            log.contains(&p(&fx.admin.key)) && log.contains(&p(&fx.apiserver.cert)),
            "{log}"
        );

        // The service-account key pair is checked too.
        let (other_key, _) = rsa_key_pair(&fx.dir.path().join("other"), "sa").unwrap();
        let args = fx.apiserver_args(&[format!(
            "--service-account-signing-key-file={}",
            p(&other_key)
        )]);
        let (code, err) = run_to_exit(Some(&fx.ns), "kube-apiserver", &args, &[]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("--service-account-signing-key-file") && err.contains(&p(&fx.sa_pub)),
            "{err}"
        );

        // A missing file is named.
        let args = fx.apiserver_args(&["--client-ca-file=/nonexistent/ca.crt".to_string()]);
        let (code, err) = run_to_exit(Some(&fx.ns), "kube-apiserver", &args, &[]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("/nonexistent/ca.crt") && err.contains("no such file"),
            "{err}"
        );
    }

    /// doublelib.py's own unit tests (YAML subset, Go number/duration parsing, kubeconfigs).
    #[test]
    fn doublelib_unit_tests() {
        let out = Command::new("/usr/bin/python3")
            .arg(doubles_dir().join("test_doublelib.py"))
            .output()
            .expect("run /usr/bin/python3 (scripts/install-deps.sh installs it)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("OK") && err.contains("Ran "), "{err}");
    }

    #[test]
    fn flag_errors_use_pflag_wording() {
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "kube-apiserver",
                &["--secure-port=notaport"],
                "Error: invalid argument \"notaport\" for \"--secure-port\" flag: strconv.ParseInt: parsing \"notaport\": invalid syntax",
            ),
            ("kube-apiserver", &["--insecure-port=8080"], "Error: unknown flag: --insecure-port"),
            ("kube-apiserver", &["--secure-port"], "Error: flag needs an argument: --secure-port"),
            (
                "kube-apiserver",
                &["--allow-privileged=maybe"],
                "strconv.ParseBool: parsing \"maybe\": invalid syntax",
            ),
            (
                "kube-controller-manager",
                &["--leader-elect-lease-duration=15"],
                "time: missing unit in duration \"15\"",
            ),
            (
                "kube-controller-manager",
                &["--bind-address", "127.0.0.256"],
                "failed to parse IP: \"127.0.0.256\"",
            ),
            ("kube-scheduler", &["--foo"], "Error: unknown flag: --foo"),
            ("kube-scheduler", &["-v", "x"], "for \"-v, --v\" flag"),
            ("kube-scheduler", &["stray"], "does not take any arguments"),
        ];
        for (component, args, want) in cases {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let (code, err) = run_to_exit(None, component, &args, &[]);
            assert_eq!(code, Some(1), "{component} {args:?}: {err}");
            assert!(
                err.contains(want),
                "{component} {args:?}: want {want:?} in {err:?}"
            );
        }
        // Validation after parsing: a port out of range, a bad CIDR.
        let (code, err) = run_to_exit(
            None,
            "kube-apiserver",
            &[
                "--etcd-servers=https://127.0.0.1:2379".into(),
                "--secure-port=70000".into(),
                "--service-cluster-ip-range=10.96.0.0/40".into(),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                "--service-account-signing-key-file=/x".into(),
            ],
            &[],
        );
        assert_eq!(code, Some(1));
        assert!(
            err.contains("--secure-port 70000 must be between 1 and 65535"),
            "{err}"
        );
        assert!(
            err.contains("service-cluster-ip-range[0] is not a valid cidr"),
            "{err}"
        );
        // --version, with the override.
        for c in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            let out = Command::new(doubles_dir().join(c))
                .arg("--version")
                .env("PLINTH_DOUBLE_VERSION", "v1.31.2")
                .output()
                .unwrap();
            assert!(out.status.success());
            assert_eq!(String::from_utf8_lossy(&out.stdout), "Kubernetes v1.31.2\n");
        }
    }

    #[test]
    fn apiserver_rejects_an_etcd_client_cert_from_another_ca() {
        let fx = Fixture::new("dbl-etcd");
        let other = TestCa::new(&fx.dir.path().join("other"), "ca", "not-etcd").unwrap();
        let wrong = other
            .issue(
                &fx.dir.path().join("other"),
                "client",
                "kube-apiserver-etcd-client",
                &[],
                &[],
                Usage::Client,
            )
            .unwrap();
        let args = fx.apiserver_args(&[
            format!("--etcd-certfile={}", p(&wrong.cert)),
            format!("--etcd-keyfile={}", p(&wrong.key)),
        ]);
        let mut api = fx.start(
            "kube-apiserver",
            &args,
            &[("PLINTH_DOUBLE_CONNECT_TIMEOUT", "2")],
            "a.log",
        );
        let code = wait_exit(&mut api, 20);
        assert_eq!(code, Some(1));
        let log = api.log();
        assert!(log.contains(&fx.etcd.client_url), "{log}");
        assert!(log.contains("failed to reach etcd"), "{log}");
        // And a wrong etcd CA: the server cert does not verify.
        let args = fx.apiserver_args(&[format!("--etcd-cafile={}", p(&other.cert))]);
        let mut api = fx.start(
            "kube-apiserver",
            &args,
            &[("PLINTH_DOUBLE_CONNECT_TIMEOUT", "2")],
            "b.log",
        );
        assert_eq!(wait_exit(&mut api, 20), Some(1));
        assert!(
            api.log()
                .contains("x509: certificate signed by unknown authority"),
            "{}",
            api.log()
        );
    }

    #[test]
    fn controller_manager_and_scheduler_check_kubeconfigs_and_serve_health() {
        let fx = Fixture::new("dbl-cms");
        let mut api = fx.start_apiserver(&[], "apiserver.log");
        let anon = fx.client(None);
        fx.wait_ok(&mut api, &anon, &fx.url("/readyz"));
        let pki = fx.dir.path().join("pki");
        let cm_cert = fx
            .ca
            .issue(
                &pki,
                "cm",
                "system:kube-controller-manager",
                &[],
                &[],
                Usage::Client,
            )
            .unwrap();
        let sched_cert = fx
            .ca
            .issue(
                &pki,
                "sched",
                "system:kube-scheduler",
                &[],
                &[],
                Usage::Client,
            )
            .unwrap();
        let cm_conf = fx.kubeconfig(
            "controller-manager",
            "system:kube-controller-manager",
            &cm_cert,
        );
        let sched_conf = fx.kubeconfig("scheduler", "system:kube-scheduler", &sched_cert);
        let cm_args = |conf: &Path| -> Vec<String> {
            vec![
                "--allocate-node-cidrs=true".into(),
                format!("--authentication-kubeconfig={}", conf.display()),
                format!("--authorization-kubeconfig={}", conf.display()),
                "--bind-address=127.0.0.1".into(),
                format!("--client-ca-file={}", p(&fx.ca.cert)),
                "--cluster-cidr=10.244.0.0/16".into(),
                "--cluster-name=kubernetes".into(),
                format!("--cluster-signing-cert-file={}", p(&fx.ca.cert)),
                format!("--cluster-signing-key-file={}", p(&fx.ca.key)),
                "--controllers=*,bootstrapsigner,tokencleaner".into(),
                format!("--kubeconfig={}", conf.display()),
                "--leader-elect=true".into(),
                format!(
                    "--requestheader-client-ca-file={}",
                    p(&fx.front_proxy_ca.cert)
                ),
                format!("--root-ca-file={}", p(&fx.ca.cert)),
                format!("--service-account-private-key-file={}", p(&fx.sa_key)),
                "--service-cluster-ip-range=10.96.0.0/12".into(),
                "--use-service-account-credentials=true".into(),
            ]
        };
        let sched_args = |conf: &Path| -> Vec<String> {
            vec![
                format!("--authentication-kubeconfig={}", conf.display()),
                format!("--authorization-kubeconfig={}", conf.display()),
                "--bind-address=127.0.0.1".into(),
                format!("--kubeconfig={}", conf.display()),
                "--leader-elect=true".into(),
            ]
        };
        let insecure = Https::insecure();
        let mut cm = fx.start("kube-controller-manager", &cm_args(&cm_conf), &[], "cm.log");
        let mut sched = fx.start("kube-scheduler", &sched_args(&sched_conf), &[], "sched.log");
        fx.wait_ok(&mut cm, &insecure, "https://127.0.0.1:10257/healthz");
        fx.wait_ok(&mut sched, &insecure, "https://127.0.0.1:10259/healthz");
        for path in ["/livez", "/readyz"] {
            let (code, body) = insecure
                .get(&fx.ns, &format!("https://127.0.0.1:10259{path}"))
                .unwrap();
            assert_eq!((code, body.as_str()), (200, "ok"), "scheduler {path}");
        }
        // The controller-manager serves /healthz only (as the real one).
        assert_eq!(
            insecure
                .get(&fx.ns, "https://127.0.0.1:10257/livez")
                .unwrap()
                .0,
            403
        );
        assert!(
            api.log()
                .contains("user=\"system:kube-controller-manager\""),
            "{}",
            api.log()
        );

        // A kubeconfig identity that may not use the scheduler's Lease: /healthz fails, named.
        let stranger = fx
            .ca
            .issue(&pki, "nobody", "nobody", &[], &[], Usage::Client)
            .unwrap();
        let bad_conf = fx.kubeconfig("nobody", "nobody", &stranger);
        let mut args = sched_args(&bad_conf);
        args.push("--secure-port=10300".into());
        let mut bad = fx.start("kube-scheduler", &args, &[], "bad-sched.log");
        assert!(
            wait_until(Duration::from_secs(15), Duration::from_millis(200), || {
                matches!(insecure.get(&fx.ns, "https://127.0.0.1:10300/healthz?verbose"),
                    Ok((500, b)) if b.contains("[-]leaderElection failed") && b.contains("forbidden"))
            }),
            "{}",
            bad.log()
        );
        bad.kill();

        // A kubeconfig whose client key does not match its certificate: exit 1, named.
        let mismatched = KeyPair {
            cert: cm_cert.cert.clone(),
            key: sched_cert.key.clone(),
        };
        let mm_conf = fx.kubeconfig("mismatch", "system:kube-controller-manager", &mismatched);
        let (code, err) = run_to_exit(
            Some(&fx.ns),
            "kube-controller-manager",
            &cm_args(&mm_conf),
            &[],
        );
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("private key does not match") && err.contains("mismatch.conf"),
            "{err}"
        );

        // A kubeconfig CA that does not sign the apiserver's cert: gives up naming the cause.
        let other = TestCa::new(&fx.dir.path().join("other"), "ca", "other").unwrap();
        let wrong_ca_conf = fx.dir.path().join("wrong-ca.conf");
        write_kubeconfig(
            &wrong_ca_conf,
            &fx.url(""),
            &other.cert,
            &cm_cert,
            "system:kube-controller-manager",
        )
        .unwrap();
        let mut args = cm_args(&wrong_ca_conf);
        args.push("--secure-port=10301".into());
        let mut wrong = fx.start(
            "kube-controller-manager",
            &args,
            &[("PLINTH_DOUBLE_CONNECT_TIMEOUT", "2")],
            "wrong-ca.log",
        );
        assert_eq!(wait_exit(&mut wrong, 20), Some(1));
        assert!(
            wrong
                .log()
                .contains("x509: certificate signed by unknown authority"),
            "{}",
            wrong.log()
        );

        // Mismatched cluster-signing pair.
        let mut args = cm_args(&cm_conf);
        args.push(format!(
            "--cluster-signing-key-file={}",
            p(&fx.front_proxy_ca.key)
        ));
        let (code, err) = run_to_exit(Some(&fx.ns), "kube-controller-manager", &args, &[]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("--cluster-signing-key-file") && err.contains("does not match"),
            "{err}"
        );

        cm.signal(Signal::SIGTERM).unwrap();
        sched.signal(Signal::SIGTERM).unwrap();
        assert_eq!(wait_exit(&mut cm, 5), Some(0));
        assert_eq!(wait_exit(&mut sched, 5), Some(0));
    }
}

/// Issue 3's end-to-end suite: the real `plinth` binary driven through its whole journey, each
/// test in its own network namespace and temp root, with a real etcd and the strict doubles
/// (or, with `PLINTH_E2E_BIN_DIR`, the real kube-apiserver, kube-controller-manager and
/// kube-scheduler — the same assertions either way).
pub(crate) mod init_flow {
    use std::collections::BTreeMap;
    use std::fs::File;
    use std::net::TcpListener;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Once;
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use crate::support::doubles::component_path;
    use crate::support::{
        diff_snapshots, kubectl_binary, make_bin_dir, pid_alive, ChildGuard, NetNs, TempRoot,
        TreeEntry,
    };

    /// Day-2 verbs and the configuration init persists.
    mod dayconfig;
    /// init's API phases and the join command (issue 11 items 4–9).
    mod postinit;

    /// The agent in the API: Node, Lease, mirror pods (issue 11).
    mod apisync;

    /// The four static pods init brings up.
    const COMPONENTS: [&str; 4] = [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ];

    /// Trees whose content legitimately changes while the control plane runs (logs, the
    /// agent's state, etcd's database): the "second init changes nothing" snapshot lists these
    /// directories but not what is inside them.
    const LIVE_DIRS: [&str; 3] = ["var/log", "var/lib/plinth", "var/lib/etcd"];

    /// The control-plane health timeout in the tests' configs (kubeadm's default is 4m).
    const HEALTH_TIMEOUT: &str = "90s";

    /// Generous bounds so a hang fails the test instead of blocking CI.
    const INIT_TIMEOUT: Duration = Duration::from_secs(150);
    const SHORT: Duration = Duration::from_secs(30);
    /// Long enough for the agent's relist (20 s) and a real component's file watch resync.
    const LONG: Duration = Duration::from_secs(75);

    /// Parallel inits would race to create the host's `etcd` system user (groupadd/useradd
    /// lock the user database): create it once, before any test's init.
    pub(crate) fn ensure_etcd_user() -> (u32, u32) {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            plinth::security::ensure_etcd_user().expect("create the etcd system user");
        });
        plinth::security::lookup_etcd_user().expect("etcd user exists")
    }

    /// The Kubernetes version the component binaries report (`Kubernetes v1.33.0` →
    /// `v1.33.0`): the doubles' default, or the real binaries' under `PLINTH_E2E_BIN_DIR`.
    fn binaries_version() -> String {
        let out = Command::new(component_path("kube-apiserver"))
            .arg("--version")
            .output()
            .expect("run kube-apiserver --version");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .find(|w| w.starts_with('v'))
            .unwrap_or_else(|| panic!("no version in `kube-apiserver --version`: {text:?}"))
            .to_string()
    }

    /// What a finished command printed.
    #[derive(Debug)]
    struct Out {
        code: Option<i32>,
        stdout: String,
        stderr: String,
        elapsed: Duration,
    }

    impl Out {
        fn ok(&self) -> bool {
            self.code == Some(0)
        }

        /// Both streams, for assertion messages.
        fn show(&self) -> String {
            format!(
                "exit {:?} after {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.code,
                self.elapsed.as_secs_f64(),
                self.stdout,
                self.stderr
            )
        }
    }

    /// Optional config knobs.
    #[derive(Default)]
    struct Knobs<'a> {
        /// `InitConfiguration.timeouts.controlPlaneComponentHealthCheck` (default
        /// [`HEALTH_TIMEOUT`]; it also sets the startup probes' failureThreshold, so every
        /// config of one node must use the same value or all manifests change).
        health_timeout: Option<&'a str>,
        /// `ClusterConfiguration.apiServer.extraArgs` (v1beta4 name/value list).
        apiserver_extra_args: &'a [(&'a str, &'a str)],
        /// `ClusterConfiguration.scheduler.extraArgs`.
        scheduler_extra_args: &'a [(&'a str, &'a str)],
    }

    /// One control-plane host: a netns, an empty `--root`, a bin dir and a config file.
    ///
    /// Field order is drop order: on drop `plinth reset --force` runs first (unless the test
    /// did it), then the netns SIGKILLs anything left inside, then the directories go.
    struct Node {
        ns: NetNs,
        root: TempRoot,
        dir: tempfile::TempDir,
        bin: PathBuf,
        cfg: PathBuf,
        reset_done: bool,
        runs: AtomicU32,
    }

    impl Node {
        fn new(tag: &str) -> Node {
            ensure_etcd_user();
            let ns = NetNs::create(tag).expect("netns");
            let root = TempRoot::new().expect("temp root");
            let dir = tempfile::Builder::new()
                .prefix("plinth-e2e-")
                .tempdir()
                .expect("tempdir");
            let bin = make_bin_dir(&dir.path().join("bin")).expect("bin dir");
            let cfg = dir.path().join("cluster.yaml");
            let node = Node {
                ns,
                root,
                dir,
                bin,
                cfg,
                reset_done: false,
                runs: AtomicU32::new(0),
            };
            node.write_config(&node.cfg, &Knobs::default());
            node
        }

        /// A kubeadm v1beta4 config (+ PlinthConfiguration) for this node at `path`.
        fn write_config(&self, path: &Path, k: &Knobs) {
            let mut init = format!(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
                 nodeRegistration:\n  name: cp1\nlocalAPIEndpoint:\n  advertiseAddress: {}\n",
                self.ns.addr()
            );
            // Bounded below INIT_TIMEOUT so plinth's own per-component report, not the
            // harness's kill, explains a control plane that never gets healthy.
            init.push_str(&format!(
                "timeouts:\n  controlPlaneComponentHealthCheck: {}\n",
                k.health_timeout.unwrap_or(HEALTH_TIMEOUT)
            ));
            let mut cluster = format!(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                 kubernetesVersion: {}\nencryptionAlgorithm: ECDSA-P256\n",
                binaries_version()
            );
            for (section, args) in [
                ("apiServer", k.apiserver_extra_args),
                ("scheduler", k.scheduler_extra_args),
            ] {
                if !args.is_empty() {
                    cluster.push_str(&format!("{section}:\n  extraArgs:\n"));
                    for (n, v) in args {
                        cluster.push_str(&format!("  - name: {n}\n    value: \"{v}\"\n"));
                    }
                }
            }
            let plinth = format!(
                "apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\nbinPath: [{}]\n",
                self.bin.display()
            );
            std::fs::write(path, format!("{init}---\n{cluster}---\n{plinth}")).expect("config");
        }

        /// Runs `program args` inside the netns, output to files (a child that inherits them —
        /// the agent init spawns — can never block us), killed after `timeout`.
        fn run(&self, program: &Path, args: &[&str], timeout: Duration) -> Out {
            let n = self.runs.fetch_add(1, Ordering::SeqCst);
            let out_path = self.dir.path().join(format!("run{n}.out"));
            let err_path = self.dir.path().join(format!("run{n}.err"));
            let mut cmd = self.ns.command(program);
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(File::create(&out_path).expect("stdout file"))
                .stderr(File::create(&err_path).expect("stderr file"));
            let start = Instant::now();
            let mut child = ChildGuard::spawn(&mut cmd).expect("spawn");
            let status = child.wait_timeout(timeout).expect("wait");
            let read = |p: &Path| {
                String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
            };
            let out = Out {
                code: status.and_then(|s| s.code()),
                stdout: read(&out_path),
                stderr: read(&err_path),
                elapsed: start.elapsed(),
            };
            assert!(
                status.is_some(),
                "{} {args:?} still running after {timeout:?} (killed):\n{}",
                program.display(),
                out.show()
            );
            out
        }

        /// `plinth ARGS` (no --root/--config added).
        fn plinth_raw(&self, args: &[&str], timeout: Duration) -> Out {
            self.run(Path::new(env!("CARGO_BIN_EXE_plinth")), args, timeout)
        }

        /// `plinth ARGS --root ROOT --config CFG`.
        fn plinth_with(&self, cfg: &Path, args: &[&str], timeout: Duration) -> Out {
            let root = self.root.dir().display().to_string();
            let cfg = cfg.display().to_string();
            let mut all: Vec<&str> = args.to_vec();
            all.extend(["--root", &root, "--config", &cfg]);
            self.plinth_raw(&all, timeout)
        }

        fn plinth(&self, args: &[&str], timeout: Duration) -> Out {
            self.plinth_with(&self.cfg, args, timeout)
        }

        fn init(&self) -> Out {
            self.plinth(&["init"], INIT_TIMEOUT)
        }

        /// `plinth init` that must succeed.
        fn init_ok(&self) -> Out {
            let out = self.init();
            assert!(out.ok(), "plinth init failed:\n{}", out.show());
            out
        }

        /// `plinth reset --force` that must succeed; afterwards no process is left in the netns.
        fn reset(&mut self) -> Out {
            let out = self.plinth(&["reset", "--force"], SHORT);
            self.reset_done = true;
            assert!(out.ok(), "plinth reset failed:\n{}", out.show());
            let gone = crate::support::wait_until(
                Duration::from_secs(5),
                Duration::from_millis(50),
                || self.ns.pids().is_empty(),
            );
            let left: Vec<String> = self
                .ns
                .pids()
                .iter()
                .map(|p| format!("{p}: {}", cmdline(*p)))
                .collect();
            assert!(gone, "processes left in the netns after reset: {left:#?}");
            out
        }

        /// `serial=…` of a certificate file (host path) under the root, by the real openssl.
        fn file_serial(&self, host_path: &str) -> String {
            let out = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-serial", "-in"])
                .arg(self.root.path(host_path))
                .output()
                .expect("openssl");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }

        /// `serial=…` of the certificate served on the node address at `port` (empty when
        /// nothing answers), read inside the namespace by the real openssl.
        fn served_serial(&self, port: u16) -> String {
            let script = format!(
                "openssl s_client -connect {}:{port} </dev/null 2>/dev/null | openssl x509 -noout -serial",
                self.ns.addr()
            );
            let out = self
                .ns
                .command("sh")
                .args(["-c", &script])
                .output()
                .expect("sh");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }

        /// The agent's view (`plinth ps -o json`): container → pid of each running container.
        fn pids(&self) -> BTreeMap<String, i32> {
            let out = self.plinth_raw(&["ps", "-o", "json"], SHORT);
            if !out.ok() {
                return BTreeMap::new();
            }
            let v: Value = match serde_json::from_str(&out.stdout) {
                Ok(v) => v,
                Err(_) => return BTreeMap::new(),
            };
            let mut map = BTreeMap::new();
            for item in v["items"].as_array().into_iter().flatten() {
                let Some(pids) = item["metadata"]["annotations"]["plinth.io/pids"].as_str() else {
                    continue;
                };
                let pids: BTreeMap<String, i32> = serde_json::from_str(pids).unwrap_or_default();
                map.extend(pids);
            }
            map
        }

        /// The agent's restart record per container (`plinth ps -o json`): restart count and
        /// the reason of the last termination (`MountedFileChanged` when the agent decided the
        /// restart; `Error`/`Completed` when the component exited on its own).
        fn restarts(&self) -> BTreeMap<String, (i64, Option<String>)> {
            let out = self.plinth_raw(&["ps", "-o", "json"], SHORT);
            assert!(out.ok(), "plinth ps -o json: {}", out.show());
            let v: Value = serde_json::from_str(&out.stdout).expect("ps -o json is JSON");
            let mut map = BTreeMap::new();
            for item in v["items"].as_array().into_iter().flatten() {
                for cs in item["status"]["containerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let reason = cs["lastState"]["terminated"]["reason"]
                        .as_str()
                        .map(str::to_string);
                    map.insert(
                        cs["name"].as_str().unwrap_or_default().to_string(),
                        (cs["restartCount"].as_i64().unwrap_or_default(), reason),
                    );
                }
            }
            map
        }

        /// Waits until all four components have a running pid; returns them.
        fn running_pids(&self) -> BTreeMap<String, i32> {
            let mut last = BTreeMap::new();
            let ok = crate::support::wait_until(SHORT, Duration::from_millis(250), || {
                last = self.pids();
                COMPONENTS.iter().all(|c| last.contains_key(*c))
            });
            assert!(ok, "not all four components running: {last:?}");
            last
        }

        /// `plinth verify` until it exits 0 (components restarted by the test need a moment).
        fn verify_eventually(&self, what: &str) -> Out {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let out = self.plinth(&["verify"], SHORT);
                if out.ok() {
                    return out;
                }
                assert!(
                    Instant::now() < deadline,
                    "plinth verify still failing 30s after {what}:\n{}",
                    out.show()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }

        fn snapshot_live(&self) -> Vec<TreeEntry> {
            self.root.snapshot_excluding(&LIVE_DIRS).expect("snapshot")
        }

        fn read(&self, host_path: &str) -> Vec<u8> {
            std::fs::read(self.root.path(host_path))
                .unwrap_or_else(|e| panic!("read {host_path} under the root: {e}"))
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            if !self.reset_done {
                // Best effort (also on panic): stop the agent and its pods, remove the files.
                let root = self.root.dir().display().to_string();
                let cfg = self.cfg.display().to_string();
                let mut cmd = self.ns.command(env!("CARGO_BIN_EXE_plinth"));
                cmd.args(["reset", "--force", "--root", &root, "--config", &cfg])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                if let Ok(mut g) = ChildGuard::spawn(&mut cmd) {
                    let _ = g.wait_timeout(SHORT);
                }
            }
        }
    }

    fn cmdline(pid: i32) -> String {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    }

    fn assert_no_fail_json(out: &Out) -> Vec<Value> {
        let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!("verify -o json is not a JSON array ({e}):\n{}", out.show())
        });
        assert!(!rows.is_empty(), "verify -o json: no checks");
        for r in &rows {
            let obj = r
                .as_object()
                .unwrap_or_else(|| panic!("row not an object: {r}"));
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(keys, ["category", "name", "reason", "status"], "{r}");
            assert!(obj.values().all(Value::is_string), "{r}");
            let status = r["status"].as_str().unwrap_or_default();
            assert!(["pass", "warn"].contains(&status), "check not passing: {r}");
        }
        rows
    }

    /// Init from an empty root to all four healthy; a second init changes nothing; verify
    /// (table and JSON); kubectl with admin.conf; `certs renew apiserver` restarts nothing (the
    /// apiserver reloads its serving cert), `certs renew all` exactly the pods reading a
    /// renewed file only at start; reset leaves the root as
    /// it was before init, plus a file the test planted in a plinth-created dir.
    #[test]
    fn init_twice_verify_kubectl_renew_and_reset() {
        let mut node = Node::new("flow");
        // Content that exists before init and is not plinth's: reset must keep it.
        node.root
            .write("/etc/hostname-of-this-box", b"box\n", 0o644)
            .unwrap();
        node.root
            .write("/var/lib/other-app/data.db", b"precious", 0o600)
            .unwrap();
        let before_init = node.root.snapshot().unwrap();

        // 1. init from nothing: exit 0, progress per component, all four healthy.
        let first = node.init_ok();
        for c in COMPONENTS {
            let line = format!("[wait-control-plane] {c}: healthy");
            assert!(
                first.stderr.contains(&line) || first.stdout.contains(&line),
                "no progress line {line:?}:\n{}",
                first.show()
            );
        }
        assert!(
            first.stdout.contains("all 4 components are healthy"),
            "{}",
            first.show()
        );
        assert!(
            first
                .stdout
                .contains("[bootstrap] created ClusterRoleBinding kubeadm:cluster-admins"),
            "{}",
            first.show()
        );
        let pids = node.running_pids();
        let agent_pid: i32 = String::from_utf8_lossy(&node.read("/var/lib/plinth/agent.pid"))
            .trim()
            .parse()
            .expect("agent.pid holds a pid");
        assert!(pid_alive(agent_pid), "agent {agent_pid} not running");

        // 2. second init: exit 0, says nothing changed, the tree is byte-identical, and no
        //    process was replaced.
        let snap = node.snapshot_live();
        let second = node.init_ok();
        assert!(
            second
                .stdout
                .contains("every file is already up to date: nothing changed on disk"),
            "{}",
            second.show()
        );
        assert!(
            second.stdout.contains("the agent is already running"),
            "{}",
            second.show()
        );
        assert!(
            second
                .stdout
                .contains("ClusterRoleBinding kubeadm:cluster-admins already exists"),
            "{}",
            second.show()
        );
        let d = diff_snapshots(&snap, &node.snapshot_live());
        assert!(d.is_empty(), "second init changed the tree:\n{d}");
        assert_eq!(node.pids(), pids, "second init replaced a pod");
        assert!(pid_alive(agent_pid), "second init replaced the agent");

        // 2b. a config change converges: only the changed component's pod is replaced, and
        //     init returns once the agent runs the new manifest's pod (the old one answers
        //     its health endpoint until replaced; init must not count it).
        let cfg = node.cfg.clone();
        node.write_config(
            &cfg,
            &Knobs {
                scheduler_extra_args: &[("v", "2")],
                ..Knobs::default()
            },
        );
        let third = node.init_ok();
        assert!(
            third
                .stdout
                .contains("[control-plane] Updating /etc/kubernetes/manifests/kube-scheduler.yaml"),
            "{}",
            third.show()
        );
        assert!(
            !third.stdout.contains("nothing changed on disk"),
            "{}",
            third.show()
        );
        let manifest =
            String::from_utf8_lossy(&node.read("/etc/kubernetes/manifests/kube-scheduler.yaml"))
                .into_owned();
        assert!(manifest.contains("--v=2"), "{manifest}");
        let converged = node.running_pids();
        assert_ne!(
            converged["kube-scheduler"], pids["kube-scheduler"],
            "scheduler not replaced"
        );
        for c in ["etcd", "kube-apiserver", "kube-controller-manager"] {
            assert_eq!(
                converged[c], pids[c],
                "{c} replaced by a scheduler-only change"
            );
        }

        // 3. verify: exit 0; JSON rows {category,name,status,reason}, none failing, covering
        //    every component's pod and health endpoint, certs, kubeconfigs and etcd.
        let table = node.plinth(&["verify"], SHORT);
        assert!(table.ok(), "verify failed:\n{}", table.show());
        let json = node.plinth(&["verify", "-o", "json"], SHORT);
        assert!(json.ok(), "verify -o json failed:\n{}", json.show());
        let rows = assert_no_fail_json(&json);
        for c in COMPONENTS {
            for cat in ["pod", "health"] {
                assert!(
                    rows.iter().any(|r| r["category"] == cat && r["name"] == c),
                    "no {cat} check for {c}:\n{}",
                    json.stdout
                );
            }
            let health = rows
                .iter()
                .find(|r| r["category"] == "health" && r["name"] == c)
                .unwrap();
            assert_eq!(health["status"], "pass", "{health}");
        }
        let yaml = node.plinth(&["verify", "-o", "yaml"], SHORT);
        assert!(yaml.ok(), "verify -o yaml failed:\n{}", yaml.show());
        let from_yaml: Value = serde_saphyr::from_str(&yaml.stdout)
            .unwrap_or_else(|e| panic!("verify -o yaml does not parse ({e}):\n{}", yaml.stdout));
        assert_eq!(
            from_yaml.as_array().map(Vec::len),
            Some(rows.len()),
            "yaml and json list different checks:\n{}",
            yaml.stdout
        );
        for cat in ["cert", "kubeconfig", "etcd"] {
            assert!(
                rows.iter().any(|r| r["category"] == cat),
                "no {cat} checks:\n{}",
                json.stdout
            );
        }

        // 4. kubectl with admin.conf (group kubeadm:cluster-admins: works only through the
        //    binding init created via super-admin.conf).
        let kubectl = kubectl_binary().expect("kubectl (scripts/install-deps.sh)");
        let admin = node.root.path("/etc/kubernetes/admin.conf");
        let admin = admin.display().to_string();
        let readyz = node.run(
            &kubectl,
            &["--kubeconfig", &admin, "get", "--raw", "/readyz"],
            SHORT,
        );
        assert!(
            readyz.ok() && readyz.stdout.trim() == "ok",
            "{}",
            readyz.show()
        );
        let ns_list = node.run(
            &kubectl,
            &["--kubeconfig", &admin, "get", "namespaces"],
            SHORT,
        );
        assert!(ns_list.ok(), "{}", ns_list.show());
        assert!(
            ns_list
                .stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some("kube-system")),
            "{}",
            ns_list.show()
        );

        // 5. certs renew apiserver: kube-apiserver reloads its serving certificate by itself
        //    (the real one's dynamic serving cert; the double does the same), so NO pod is
        //    restarted: the agent sees the changed files and says why it leaves each pod
        //    alone, and the apiserver serves the renewed certificate. (The real
        //    kube-scheduler could still exit by itself if it lost its leader lease; such an
        //    exit is told apart from an agent restart by its reason.)
        let before = node.running_pids();
        let restarts_before = node.restarts();
        let renew = node.plinth(&["certs", "renew", "apiserver"], SHORT);
        assert!(renew.ok(), "{}", renew.show());
        let file_serial = node.file_serial("/etc/kubernetes/pki/apiserver.crt");
        let mut served = String::new();
        let switched = crate::support::wait_until(LONG, Duration::from_millis(500), || {
            served = node.served_serial(6443);
            served == file_serial
        });
        assert!(
            switched,
            "the apiserver still serves {served}, not the renewed {file_serial}"
        );
        let agent_log = node.root.path("/var/log/plinth/agent.log");
        let decided = crate::support::wait_until(LONG, Duration::from_millis(250), || {
            let log = std::fs::read_to_string(&agent_log).unwrap_or_default();
            log.contains("reloads by itself: no restart")
                && log.contains("no container's command line uses: no restart")
        });
        assert!(
            decided,
            "the agent never judged the renewed files:\n{}",
            std::fs::read_to_string(&agent_log).unwrap_or_default()
        );
        node.verify_eventually("certs renew apiserver");
        let after = node.running_pids();
        let restarts_after = node.restarts();
        for c in COMPONENTS {
            let (n0, _) = &restarts_before[c];
            let (n1, reason) = &restarts_after[c];
            assert_ne!(
                reason.as_deref().filter(|_| n1 != n0),
                Some("MountedFileChanged"),
                "{c} was restarted by the agent although no file it reads at start changed: \
                 {restarts_before:?} -> {restarts_after:?}"
            );
            if c != "kube-scheduler" {
                assert_eq!(
                    after[c], before[c],
                    "{c} replaced by a renewal it reloads or does not use: {before:?} -> {after:?}"
                );
            } else if after[c] != before[c] {
                eprintln!("{c} exited by itself during the renewal ({reason:?}): {n0} -> {n1}");
            }
        }

        // 6. certs renew all: kube-apiserver (etcd and kubelet client certs), the
        //    controller-manager and the scheduler (kubeconfigs' embedded client certs) read
        //    renewed files only at start → restarted; etcd reloads its serving and peer certs
        //    at every handshake and reads no other renewed file → keeps its pid.
        let before = node.running_pids();
        let renew = node.plinth(&["certs", "renew", "all"], SHORT);
        assert!(renew.ok(), "{}", renew.show());
        let mut now = BTreeMap::new();
        let restarted_set = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ];
        let restarted = crate::support::wait_until(LONG, Duration::from_millis(250), || {
            now = node.pids();
            restarted_set
                .iter()
                .all(|c| matches!(now.get(*c), Some(p) if *p != before[*c]))
        });
        assert!(
            restarted,
            "not every component reading a renewed file restarted after renew all: {before:?} -> {now:?}"
        );
        node.verify_eventually("certs renew all");
        // Still running on the new pids (a component that came back only to crash-loop on
        // the renewed files would have no running pid here).
        let after = node.running_pids();
        for c in restarted_set {
            assert_ne!(after[c], before[c], "{c}: {before:?} -> {after:?}");
        }
        assert_eq!(
            after["etcd"], before["etcd"],
            "etcd reloads its renewed serving/peer certs: {before:?} -> {after:?}"
        );

        // 7. reset: the root is exactly as before init, plus what the test planted in a
        //    plinth-created dir; nothing is left running in the netns.
        node.root
            .write("/etc/kubernetes/mine.txt", b"not plinth's\n", 0o644)
            .unwrap();
        let planted: Vec<TreeEntry> = node
            .root
            .snapshot_excluding(&LIVE_DIRS)
            .unwrap()
            .into_iter()
            .filter(|e| e.path == "etc/kubernetes" || e.path == "etc/kubernetes/mine.txt")
            .collect();
        assert_eq!(planted.len(), 2, "{planted:?}");
        let out = node.reset();
        assert!(
            out.stdout.contains("[reset] left /etc/kubernetes"),
            "{}",
            out.show()
        );
        let mut expected = before_init.clone();
        expected.extend(planted);
        expected.sort();
        let d = diff_snapshots(&expected, &node.root.snapshot().unwrap());
        assert!(
            d.is_empty(),
            "reset left the root different:\n{d}\n{}",
            out.show()
        );
    }

    /// Breaking kube-apiserver through `manifest regenerate` (an invalid extraArg) is rolled
    /// back automatically: non-zero exit, the old manifest is back byte for byte, its backup is
    /// kept outside the manifests dir, and verify passes again.
    #[test]
    fn regenerate_with_a_broken_apiserver_flag_rolls_back() {
        let mut node = Node::new("regen");
        node.init_ok();
        let manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";
        let good = node.read(manifest);

        // A bad value plinth cannot type-check (goaway-chance is a float flag plinth leaves to
        // the binary; `secure-port: notaport` is now refused before anything is written, see
        // config_cli::regenerate_broken_flag_is_rejected_before_anything_changes).
        let bad_cfg = node.dir.path().join("bad.yaml");
        node.write_config(
            &bad_cfg,
            &Knobs {
                apiserver_extra_args: &[("goaway-chance", "notafloat")],
                ..Knobs::default()
            },
        );
        let out = node.plinth_with(
            &bad_cfg,
            &["manifest", "regenerate", "kube-apiserver"],
            Duration::from_secs(300),
        );
        eprintln!("{}", out.show());
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        assert!(
            out.stdout.contains("--goaway-chance") && out.stdout.contains("notafloat"),
            "the flag diff is not shown:\n{}",
            out.show()
        );
        assert!(out.stderr.contains("rolled back"), "{}", out.show());
        assert_eq!(
            String::from_utf8_lossy(&node.read(manifest)),
            String::from_utf8_lossy(&good),
            "the manifest on disk is not the pre-regenerate one"
        );
        let backups = node.root.path("/var/lib/plinth/manifest-backups");
        let kept: Vec<PathBuf> = std::fs::read_dir(&backups)
            .unwrap_or_else(|e| panic!("{}: {e}", backups.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kube-apiserver.yaml"))
            })
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(std::fs::read(&kept[0]).unwrap(), good, "backup content");
        let mut in_dir: Vec<String> =
            std::fs::read_dir(node.root.path("/etc/kubernetes/manifests"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        in_dir.sort();
        assert_eq!(
            in_dir,
            COMPONENTS.map(|c| format!("{c}.yaml")),
            "the manifests dir must hold exactly the four manifests (no backup, no temp file)"
        );
        node.verify_eventually("the rollback");
        node.reset();
    }

    /// Issue 10 item 3: a broken flag cost 45 s of downtime — regenerate waited for 3 crash
    /// restarts with back-off (0, 10, 20 s) although every attempt exited within 60 ms with a
    /// usage error. A flag plinth cannot check (an unknown flag name reaches the binary) now
    /// rolls back on the new instance's first crash, and the report carries the binary's own
    /// error line.
    #[test]
    fn regenerate_rolls_back_on_first_usage_error_crash() {
        let mut node = Node::new("regen1");
        node.init_ok();
        let manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";
        let good = node.read(manifest);
        let bad_cfg = node.dir.path().join("bad.yaml");
        node.write_config(
            &bad_cfg,
            &Knobs {
                apiserver_extra_args: &[("no-such-flag", "1")],
                ..Knobs::default()
            },
        );
        let out = node.plinth_with(
            &bad_cfg,
            &["manifest", "regenerate", "kube-apiserver"],
            Duration::from_secs(300),
        );
        eprintln!("{}", out.show());
        assert_eq!(out.code, Some(1), "{}", out.show());
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("rolled back:"))
            .unwrap_or_else(|| panic!("no rollback line:\n{}", out.show()));
        assert!(
            line.contains("Error: unknown flag: --no-such-flag"),
            "the component's own error line is not in the report: {line}"
        );
        // The agent restarts a first crash at once, so a binary that exits within 60 ms may
        // have crashed twice by the next poll; the back-off restarts (10 s, 20 s) never come.
        assert!(
            line.contains("rejects its command line (1 quick exit with code")
                || line.contains("rejects its command line (2 quick exits with code"),
            "not rolled back on the first crash: {line}"
        );
        let ended = std::time::SystemTime::now();
        // From the failed version's first crash (the oldest write of its logs, while the agent
        // keeps them) to a healthy rollback; 3 back-off restarts alone took 30 s.
        let first_crash = std::fs::read_dir(node.root.path("/var/log/pods"))
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("kube-system_kube-apiserver-")
            })
            .flat_map(|e| std::fs::read_dir(e.path().join("kube-apiserver")).into_iter())
            .flat_map(|rd| rd.flatten())
            .filter(|e| {
                std::fs::read_to_string(e.path())
                    .is_ok_and(|t| t.contains("unknown flag: --no-such-flag"))
            })
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .min();
        if let Some(first_crash) = first_crash {
            let rollback = ended.duration_since(first_crash).unwrap_or_default();
            eprintln!(
                "first crash to rollback done: {rollback:?} (command took {:?})",
                out.elapsed
            );
            assert!(
                rollback < Duration::from_secs(20),
                "{rollback:?} from the first crash to the end of the rollback: it waited for \
                 crash restarts"
            );
        }
        // The whole command: the old instance's stop (up to its 30 s grace period, issue 10
        // item 1) plus the above.
        assert!(
            out.elapsed < Duration::from_secs(50),
            "took {:?}: the rollback waited for crash restarts",
            out.elapsed
        );
        assert_eq!(
            String::from_utf8_lossy(&node.read(manifest)),
            String::from_utf8_lossy(&good),
            "the manifest on disk is not the pre-regenerate one"
        );
        node.verify_eventually("the rollback");
        node.reset();
    }

    /// A port the control plane needs, held by another process: preflight fails naming the
    /// check (`Port-2379`) and the holder's pid; nothing is written.
    #[test]
    fn preflight_names_the_process_holding_a_port() {
        let mut node = Node::new("port");
        // This test process holds 127.0.0.1:2379 inside the netns.
        let listener = node
            .ns
            .run_in(|| TcpListener::bind("127.0.0.1:2379"))
            .unwrap()
            .expect("bind 2379 in the netns");
        let out = node.init();
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        let me = std::process::id();
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("Port-2379"))
            .unwrap_or_else(|| panic!("no Port-2379 error:\n{}", out.show()));
        assert!(line.contains("ERROR"), "{line}");
        assert!(
            line.contains(&format!("pid {me}")),
            "{line} (holder is {me})"
        );
        assert_eq!(
            node.root.snapshot().unwrap(),
            vec![],
            "a failed preflight wrote something"
        );
        assert!(node.ns.pids().is_empty(), "{:?}", node.ns.pids());
        drop(listener);
        node.reset_done = true; // nothing to reset
    }

    /// A component binary missing from the bin path: preflight fails naming it.
    #[test]
    fn preflight_names_a_missing_binary() {
        let mut node = Node::new("nobin");
        std::fs::remove_file(node.bin.join("kube-scheduler")).unwrap();
        let out = node.init();
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("[ERROR"))
            .collect();
        assert!(
            errors
                .iter()
                .any(|l| l.contains("kube-scheduler") && l.contains("not found")),
            "{}",
            out.show()
        );
        assert!(
            !errors.iter().any(|l| l.contains("kube-apiserver")),
            "only kube-scheduler is missing:\n{}",
            out.show()
        );
        assert_eq!(node.root.snapshot().unwrap(), vec![]);
        node.reset_done = true; // nothing to reset
    }

    /// A regular file where the etcd data dir goes is foreign content: preflight fails naming
    /// the check, and the file is neither chowned nor changed.
    #[test]
    fn preflight_rejects_a_file_at_the_etcd_data_dir() {
        let mut node = Node::new("datafile");
        node.root
            .write("/var/lib/etcd", b"not a directory\n", 0o600)
            .unwrap();
        let before = node.root.snapshot().unwrap();
        let meta = std::fs::metadata(node.root.path("/var/lib/etcd")).unwrap();
        let out = node.init();
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains("[ERROR DirAvailable--var-lib-etcd]")
                    && l.contains("not a directory")),
            "{}",
            out.show()
        );
        let d = diff_snapshots(&before, &node.root.snapshot().unwrap());
        assert!(d.is_empty(), "a failed preflight changed the root:\n{d}");
        let now = std::fs::metadata(node.root.path("/var/lib/etcd")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (now.uid(), now.gid()),
            (meta.uid(), meta.gid()),
            "owner changed"
        );
        node.reset_done = true; // nothing to reset
    }

    /// etcd cannot write its data dir (it runs as the etcd user; the pre-existing dir is
    /// read-only for it): init fails within the configured timeout with a per-component
    /// report — state, restarts, last exit code and etcd's own log tail naming the cause.
    #[test]
    fn init_that_cannot_become_healthy_reports_each_component() {
        let (uid, gid) = ensure_etcd_user();
        let mut node = Node::new("sick");
        let data = node.root.path("/var/lib/etcd");
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o500)).unwrap();
        let before_init = node.root.snapshot().unwrap();
        let cfg = node.cfg.clone();
        node.write_config(
            &cfg,
            &Knobs {
                health_timeout: Some("20s"),
                ..Knobs::default()
            },
        );

        let out = node.init();
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        assert!(
            out.elapsed < Duration::from_secs(20 + 25),
            "took {:?} with a 20s timeout",
            out.elapsed
        );
        assert!(
            out.stderr
                .contains("the control plane did not become healthy within 20s"),
            "{}",
            out.show()
        );
        assert!(!out.stderr.contains("timed out waiting for the condition"));
        let etcd = out
            .stderr
            .split("\n\n")
            .find(|s| s.trim_start().starts_with("etcd —"))
            .unwrap_or_else(|| panic!("no etcd section in the report:\n{}", out.show()));
        assert!(etcd.contains("restarts: "), "{etcd}");
        assert!(etcd.contains("last exit code: 1"), "{etcd}");
        let tail: Vec<&str> = etcd.lines().filter(|l| l.starts_with("      | ")).collect();
        assert!(
            tail.iter().any(|l| l.contains("data directory")),
            "etcd's log tail does not show the cause:\n{etcd}"
        );
        // The other components are reported too (they depend on etcd).
        assert!(out.stderr.contains("kube-apiserver —"), "{}", out.show());

        // Reset keeps the data dir it did not create.
        let reset = node.reset();
        assert!(
            reset
                .stdout
                .contains("[reset] left /var/lib/etcd: etcd data dir existed before plinth init"),
            "{}",
            reset.show()
        );
        let d = diff_snapshots(&before_init, &node.root.snapshot().unwrap());
        assert!(d.is_empty(), "{d}");
    }

    /// Issue 8 item 3: the etcd binary under a directory the etcd user may not search (0700):
    /// preflight names the binary, the user and the fix, and nothing is written or started.
    #[test]
    fn init_fails_fast_when_binary_not_executable_by_pod_user() {
        ensure_etcd_user();
        let mut node = Node::new("noexec");
        std::fs::set_permissions(&node.bin, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = node.init();
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("[ERROR FileExecutable-etcd]"))
            .unwrap_or_else(|| panic!("no FileExecutable-etcd error:\n{}", out.show()));
        let bin = node.bin.display().to_string();
        for want in [
            format!("{bin}/etcd"),
            "user etcd".to_string(),
            format!("chmod o+x {bin}"),
        ] {
            assert!(line.contains(&want), "{want:?} missing from: {line}");
        }
        assert!(
            !out.stderr.contains("FileExecutable-kube-"),
            "the other components run as root:\n{}",
            out.show()
        );
        assert_eq!(
            node.root.snapshot().unwrap(),
            vec![],
            "a failed preflight wrote something"
        );
        assert!(node.ns.pids().is_empty(), "{:?}", node.ns.pids());
        node.reset_done = true; // nothing to reset
    }

    /// Issue 8 item 3, with preflight's finding ignored: every start of etcd fails with
    /// `execve: Permission denied`, which no retry cures, so the wait gives up within seconds
    /// (not at its 90 s timeout; kubeadm's default is 240 s) with the per-component report.
    #[test]
    fn init_wait_fails_fast_when_etcd_can_never_start() {
        ensure_etcd_user();
        let mut node = Node::new("neverstart");
        std::fs::set_permissions(&node.bin, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = node.plinth(
            &["init", "--ignore-preflight-errors=FileExecutable-etcd"],
            INIT_TIMEOUT,
        );
        eprintln!("{}", out.show());
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        assert!(
            out.elapsed < Duration::from_secs(30),
            "took {:?}: the wait did not fail fast",
            out.elapsed
        );
        assert!(
            out.stderr.contains("[WARNING FileExecutable-etcd]"),
            "{}",
            out.show()
        );
        assert!(
            out.stderr.contains("etcd failed after") && out.stderr.contains("no retry will fix"),
            "{}",
            out.show()
        );
        let etcd = out
            .stderr
            .split("\n\n")
            .find(|s| s.trim_start().starts_with("etcd —"))
            .unwrap_or_else(|| panic!("no etcd section in the report:\n{}", out.show()));
        assert!(
            etcd.contains("EACCES") && etcd.contains("Permission denied"),
            "{etcd}"
        );
        assert!(
            etcd.contains(&format!("{}/etcd", node.bin.display())),
            "{etcd}"
        );
        node.reset();
    }

    /// Issue 8 item 3: a flag value the component rejects (apiServer.extraArgs goaway-chance:
    /// notafloat — a flag plinth does not type-check; `secure-port: notaport` is now refused by
    /// the config check before init writes anything): kube-apiserver exits at once with its
    /// usage error, every time; init fails within seconds and the report shows the component's
    /// own error line.
    #[test]
    fn init_fails_fast_on_a_flag_the_component_rejects() {
        let mut node = Node::new("badflag");
        let cfg = node.cfg.clone();
        node.write_config(
            &cfg,
            &Knobs {
                apiserver_extra_args: &[("goaway-chance", "notafloat")],
                ..Knobs::default()
            },
        );
        let out = node.init();
        eprintln!("{}", out.show());
        assert!(!out.ok() && out.code.is_some(), "{}", out.show());
        assert!(
            out.elapsed < Duration::from_secs(30),
            "took {:?}: the wait did not fail fast",
            out.elapsed
        );
        assert!(
            out.stderr.contains("kube-apiserver failed after"),
            "{}",
            out.show()
        );
        let api = out
            .stderr
            .split("\n\n")
            .find(|s| s.trim_start().starts_with("kube-apiserver —"))
            .unwrap_or_else(|| panic!("no kube-apiserver section:\n{}", out.show()));
        assert!(api.contains("rejects its command line"), "{api}");
        let error_line = r#"invalid argument "notafloat" for "--goaway-chance" flag"#;
        assert!(
            api.lines()
                .any(|l| l.starts_with("      | ") && l.contains(error_line)),
            "the component's error line is not in the report's log tail:\n{api}"
        );
        node.reset();
    }

    /// Issue 8 item 11 (CIS 1.1.19): every file under the PKI dir is root:root, yet etcd —
    /// running as the etcd user — reads its keys through a POSIX ACL grant: init gets healthy,
    /// verify reports the grant, and `certs renew etcd-server` (atomic rewrite) keeps it, with
    /// etcd healthy again on the renewed key.
    #[test]
    fn pki_is_all_root_owned_and_etcd_reads_its_keys_through_an_acl() {
        use std::os::unix::fs::MetadataExt;
        let (etcd_uid, _) = ensure_etcd_user();
        let mut node = Node::new("pkiacl");
        node.init_ok();
        let not_root = |node: &Node| -> Vec<String> {
            let mut bad = Vec::new();
            let mut stack = vec![node.root.path("/etc/kubernetes/pki")];
            while let Some(p) = stack.pop() {
                let m = std::fs::symlink_metadata(&p).unwrap();
                if m.uid() != 0 || m.gid() != 0 {
                    bad.push(format!("{} {}:{}", p.display(), m.uid(), m.gid()));
                }
                if m.is_dir() {
                    stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                }
            }
            bad
        };
        let acl_rows = |node: &Node| {
            let out = node.plinth(&["verify", "-o", "json"], SHORT);
            assert!(out.ok(), "{}", out.show());
            let rows = assert_no_fail_json(&out);
            let acl: Vec<Value> = rows
                .into_iter()
                .filter(|r| {
                    r["name"]
                        .as_str()
                        .is_some_and(|n| n.ends_with("(etcd read access)"))
                })
                .collect();
            assert_eq!(acl.len(), 2, "{}", out.show());
            for r in &acl {
                assert_eq!(r["status"], "pass", "{r}");
            }
        };
        let key_acl = |node: &Node, k: &str| {
            let p = node.root.path(format!("/etc/kubernetes/pki/etcd/{k}"));
            let acl = plinth::acl::get(&p)
                .unwrap()
                .unwrap_or_else(|| panic!("no ACL on {k}"));
            assert_eq!(acl.user_perm(etcd_uid), Some(plinth::acl::READ), "{k}");
            assert_eq!(acl.base_mode(), 0o600, "{k}");
        };
        assert_eq!(not_root(&node), Vec::<String>::new());
        key_acl(&node, "server.key");
        key_acl(&node, "peer.key");
        node.verify_eventually("init");
        acl_rows(&node);

        let before = node.read("/etc/kubernetes/pki/etcd/server.key");
        let out = node.plinth(&["certs", "renew", "etcd-server"], SHORT);
        assert!(out.ok(), "{}", out.show());
        assert_ne!(
            node.read("/etc/kubernetes/pki/etcd/server.key"),
            before,
            "the key was not renewed"
        );
        assert_eq!(not_root(&node), Vec::<String>::new());
        key_acl(&node, "server.key");
        // etcd loads its serving pair at every TLS handshake (no restart): it serves the
        // renewed certificate, read through the ACL from the root-owned key.
        let file_serial = node.file_serial("/etc/kubernetes/pki/etcd/server.crt");
        let mut served = String::new();
        let switched = crate::support::wait_until(LONG, Duration::from_millis(500), || {
            served = node.served_serial(2379);
            served == file_serial
        });
        assert!(
            switched,
            "etcd still serves {served}, not the renewed {file_serial}"
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = node.plinth(&["verify"], SHORT);
            if out.ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "verify still failing 120s after certs renew etcd-server:\n{}",
                out.show()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        acl_rows(&node);
        node.reset();
    }
}
