# TEST DOUBLE — NEVER SHIPPED
#
# Unit tests of doublelib.py (run by tests/init_e2e.rs → doubles_selftest::doublelib_unit_tests,
# or directly: python3 tests/support/doubles/test_doublelib.py).

import base64
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import doublelib as d  # noqa: E402


class Yaml(unittest.TestCase):
    def test_kubeadm_style_kubeconfig(self):
        text = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: QUJD
    server: https://192.0.2.1:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: REVG
"""
        doc = d.yaml_load(text)
        self.assertEqual(doc["clusters"][0]["cluster"]["server"], "https://192.0.2.1:6443")
        self.assertEqual(doc["clusters"][0]["name"], "kubernetes")
        self.assertEqual(doc["contexts"][0]["context"]["user"], "kubernetes-admin")
        self.assertEqual(doc["preferences"], {})
        self.assertEqual(doc["users"][0]["user"]["client-certificate-data"], "REVG")

    def test_indented_sequences_quotes_comments_and_block_scalars(self):
        text = """# leading comment
---
kind: "Policy"   # trailing comment
apiVersion: 'audit.k8s.io/v1'
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps"]
  - level: None
note: |
  line one
  line # not a comment
port: 6443
flag: true
url: "http://x:1/#frag"
"""
        doc = d.yaml_load(text)
        self.assertEqual(doc["kind"], "Policy")
        self.assertEqual(doc["apiVersion"], "audit.k8s.io/v1")
        self.assertEqual(len(doc["rules"]), 2)
        self.assertEqual(doc["rules"][0]["resources"][0]["resources"], ["secrets", "configmaps"])
        self.assertEqual(doc["rules"][0]["resources"][0]["group"], "")
        self.assertEqual(doc["rules"][1], {"level": "None"})
        self.assertEqual(doc["note"], "line one\nline # not a comment\n")
        self.assertEqual(doc["port"], 6443)
        self.assertIs(doc["flag"], True)
        self.assertEqual(doc["url"], "http://x:1/#frag")

    def test_json_is_yaml(self):
        self.assertEqual(d.yaml_load('{"a": [1, 2]}'), {"a": [1, 2]})

    def test_errors(self):
        for bad in ("a: 1\na: 2\n", "a:\n\tb: 1\n", "a: 1\n  b: 2\n", "just text\nmore: x\n"):
            with self.assertRaises(d.YamlError, msg=bad):
                d.yaml_load(bad)


class GoParsing(unittest.TestCase):
    def test_ints_like_strconv_parseint_base0(self):
        self.assertEqual(d._go_parse_int("6443", 64), 6443)
        self.assertEqual(d._go_parse_int("0x10", 64), 16)
        self.assertEqual(d._go_parse_int("010", 64), 8)
        self.assertEqual(d._go_parse_int("-1_000", 64), -1000)
        for bad in ("notaport", "", "1.5", "0x", " 1"):
            with self.assertRaises(d.FlagError):
                d._go_parse_int(bad, 64)
        with self.assertRaisesRegex(d.FlagError, "value out of range"):
            d._go_parse_int("2147483648", 32)

    def test_durations_like_time_parseduration(self):
        self.assertEqual(d.go_parse_duration("1h30m"), 5400.0)
        self.assertEqual(d.go_parse_duration("1.5s"), 1.5)
        self.assertEqual(d.go_parse_duration("300ms"), 0.3)
        self.assertEqual(d.go_parse_duration("0"), 0.0)
        with self.assertRaisesRegex(d.FlagError, 'missing unit in duration "15"'):
            d.go_parse_duration("15")
        with self.assertRaisesRegex(d.FlagError, 'unknown unit "d" in duration "1d"'):
            d.go_parse_duration("1d")
        with self.assertRaisesRegex(d.FlagError, 'invalid duration "h"'):
            d.go_parse_duration("h")

    def test_bools_cidrs_and_maps(self):
        self.assertIs(d._go_parse_bool("T"), True)
        with self.assertRaises(d.FlagError):
            d._go_parse_bool("yes")
        self.assertEqual(str(d.parse_cidr("10.96.0.1/12")), "10.96.0.0/12")
        for bad in ("10.96.0.0", "10.96.0.0/33", "10.96.0/12", "x/1"):
            with self.assertRaises(d.FlagError):
                d.parse_cidr(bad)
        self.assertEqual(d._map_string_bool("A=true, B=false"), {"A": True, "B": False})
        self.assertEqual(d._csv('a,"b,c"'), ["a", "b,c"])

    def test_parse_flags_forms(self):
        specs = dict(d.common_flags())
        specs.update({"port": ("int", 1), "name": ("string", None), "on": ("bool", False),
                      "list": ("strings", None)})
        f = d.parse_flags("t", specs, ["--port", "7", "--name=x", "--on", "--list=a,b", "--list", "c", "-v=3"])
        self.assertEqual((f.get("port"), f.get("name"), f.get("on"), f.get("list"), f.get("v")),
                         (7, "x", True, ["a", "b", "c"], 3))
        self.assertTrue(f.is_set("port"))
        self.assertFalse(f.is_set("feature-gates"))


class Kubeconfig(unittest.TestCase):
    def test_file_references_and_mismatch(self):
        with tempfile.TemporaryDirectory() as tmp:
            def mk(name):
                subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                "-nodes", "-keyout", os.path.join(tmp, name + ".key"), "-out",
                                os.path.join(tmp, name + ".crt"), "-days", "1", "-subj", "/CN=" + name],
                               check=True, capture_output=True)
            mk("a")
            mk("b")
            conf = os.path.join(tmp, "k.conf")
            with open(conf, "w") as fh:
                fh.write("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
                         "    server: https://127.0.0.1:6443\n    certificate-authority: a.crt\n"
                         "users:\n- name: u\n  user:\n    client-certificate: a.crt\n    client-key: a.key\n"
                         "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n")
            kc = d.load_kubeconfig(conf, "--kubeconfig")
            self.assertEqual(kc.server, "https://127.0.0.1:6443")
            self.assertIn(b"BEGIN CERTIFICATE", kc.ca_pem)
            kc.cleanup()
            with open(conf) as fh:
                text = fh.read().replace("client-key: a.key", "client-key: b.key")
            with open(conf, "w") as fh:
                fh.write(text)
            with self.assertRaises(SystemExit):
                d.load_kubeconfig(conf, "--kubeconfig")


if __name__ == "__main__":
    unittest.main(verbosity=1)
