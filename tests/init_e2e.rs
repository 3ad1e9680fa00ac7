//! Integration tests: init_e2e.
//!
//! For now only `doubles_selftest`: proves the strict test doubles (tests/support/doubles)
//! accept a correct, kubeadm-shaped invocation and reject what the real binaries reject, against
//! a real etcd inside a network namespace.

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
