#!/usr/bin/python3
"""Benchmark (not a test): the agent in the API (issue 11) — how soon the Node and the mirror
pods appear, and what the API client costs the idle agent.

One node is brought up with `plinth init` in a network namespace (as benches/downtime.py, whose
Node it reuses: 192.0.2.10, temp root, real components with PLINTH_E2E_BIN_DIR). While init
runs, a poller (every 25 ms) GETs /readyz and, with admin.conf's client certificate, the Node
and the pods bound to it, and reports:

  node     apiserver ready (first /readyz `ok`) → Node cp1 visible
  mirrors  apiserver ready → all 4 mirror pods visible (target ≤ 0.5 s; the kubelet: 10.1 s
           from manifest write to all 4, Node at 4.8 s)

Then, on the running node:

  manifest written → its mirror pod visible (a new `sleep` pod renamed into the manifest dir,
           N times; each removed again)
  idle     the agent's CPU (share of one core) and RSS over a 60 s window, with the API sync
           running (targets ≤ 0.5 %, ≤ 20 MiB)

Usage (as root, after `cargo build --release`; real binaries needed for anything to appear):
  PLINTH_E2E_BIN_DIR=/opt/kube-bin benches/apisync.py [-n N] [-b PLINTH_BIN] [--idle SECS]
"""

import argparse
import base64
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import downtime  # noqa: E402  (the shared Node: netns, root, bin dir, init, reset)

ADDR = downtime.ADDR
NODE = "cp1"
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]


class Api:
    """HTTPS GETs with admin.conf's identity (None until admin.conf exists)."""

    def __init__(self, root):
        self.root = root
        self.opener = None
        self.tmp = tempfile.mkdtemp(prefix="plinth-bench-apisync.")
        self.anon = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self._ctx()))

    @staticmethod
    def _ctx():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def ready(self):
        if self.opener is not None:
            return True
        path = os.path.join(self.root, "etc/kubernetes/admin.conf")
        try:
            text = open(path).read()
        except OSError:
            return False
        fields = {}
        for line in text.splitlines():
            line = line.strip()
            for k in ("client-certificate-data:", "client-key-data:"):
                if line.startswith(k):
                    fields[k] = base64.b64decode(line.split(":", 1)[1].strip())
        if len(fields) < 2:
            return False
        cert, key = os.path.join(self.tmp, "c.pem"), os.path.join(self.tmp, "k.pem")
        open(cert, "wb").write(fields["client-certificate-data:"])
        open(key, "wb").write(fields["client-key-data:"])
        ctx = self._ctx()
        ctx.load_cert_chain(cert, key)
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
        return True

    def get(self, path):
        if not self.ready():
            return None
        try:
            with self.opener.open("https://%s:6443%s" % (ADDR, path), timeout=1.0) as r:
                return json.loads(r.read()) if r.status == 200 else None
        except Exception:  # noqa: BLE001 - not there (yet)
            return None

    def readyz(self):
        try:
            with self.anon.open("https://%s:6443/readyz" % ADDR, timeout=1.0) as r:
                return r.status == 200 and r.read().strip() == b"ok"
        except Exception:  # noqa: BLE001
            return False

    def mirror_names(self):
        v = self.get("/api/v1/namespaces/kube-system/pods?fieldSelector=spec.nodeName%3D" + NODE)
        if not v:
            return set()
        return {p["metadata"]["name"] for p in v.get("items", [])
                if "kubernetes.io/config.mirror" in p["metadata"].get("annotations", {})}


def first_times(api, stop):
    """Polls until all three are seen: first readyz ok, Node visible, all 4 mirror pods."""
    seen = {}
    want = {"%s-%s" % (c, NODE) for c in COMPONENTS}
    while not stop.is_set() and len(seen) < 3:
        t = time.monotonic()
        if "ready" not in seen and api.readyz():
            seen["ready"] = t
        if "node" not in seen and api.get("/api/v1/nodes/" + NODE):
            seen["node"] = t
        if "mirrors" not in seen and want <= api.mirror_names():
            seen["mirrors"] = t
        time.sleep(max(0.0, 0.025 - (time.monotonic() - t)))
    return seen


def sleep_pod(name):
    return ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: kube-system\n"
            "spec:\n  hostNetwork: true\n  containers:\n  - name: main\n    image: busybox\n"
            "    command: [/bin/sleep, \"3600\"]\n" % name)


def manifest_to_mirror(node, api, n):
    mdir = os.path.join(node.root, "etc/kubernetes/manifests")
    out = []
    for i in range(n):
        name = "bench%d" % i
        tmp = os.path.join(node.root, "etc/kubernetes/.%s.yaml" % name)
        with open(tmp, "w") as f:
            f.write(sleep_pod(name))
        t0 = time.monotonic()
        os.rename(tmp, os.path.join(mdir, name + ".yaml"))
        path = "/api/v1/namespaces/kube-system/pods/%s-%s" % (name, NODE)
        while api.get(path) is None:
            if time.monotonic() - t0 > 30:
                sys.exit("mirror pod %s never appeared" % name)
            time.sleep(0.005)
        out.append(time.monotonic() - t0)
        os.remove(os.path.join(mdir, name + ".yaml"))
        while api.get(path) is not None and time.monotonic() - t0 < 30:
            time.sleep(0.05)
    return out


def agent_usage(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return ticks, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=5, help="manifest → mirror pod repetitions")
    ap.add_argument("-b", default=os.path.join(downtime.REPO, "target/release/plinth"))
    ap.add_argument("--idle", type=int, default=60, help="idle window, seconds")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("apisync.py: run as root (network namespaces)")
    node = downtime.Node(os.path.abspath(a.b))
    api = Api(node.root)
    try:
        print("plinth: %s; components: %s (%s)" % (a.b, node.components, node.version))
        stop = threading.Event()
        res = {}
        poller = threading.Thread(target=lambda: res.update(first_times(api, stop)), daemon=True)
        poller.start()
        p, t = node.run("init", "--config", node.cfg)
        if p.returncode != 0:
            print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
            sys.exit("init failed")
        poller.join(timeout=30)
        stop.set()
        print("init: %.2fs" % t)
        if "ready" in res:
            for k in ("node", "mirrors"):
                if k in res:
                    print("apiserver ready → %-8s %+.3f s" % (k, res[k] - res["ready"]))
                else:
                    print("apiserver ready → %-8s never (within 30 s of init's end)" % k)
        else:
            print("apiserver never answered /readyz ok")
        times = manifest_to_mirror(node, api, a.n)
        ms = sorted(x * 1000 for x in times)
        print("manifest renamed in → mirror pod visible: median %.1f ms (min %.1f, max %.1f, n=%d)"
              % (statistics.median(ms), ms[0], ms[-1], len(ms)))
        pid = int(open(os.path.join(node.root, "var/lib/plinth/agent.pid")).read())
        time.sleep(5)
        t0, _ = agent_usage(pid)
        w0 = time.monotonic()
        time.sleep(a.idle)
        t1, rss = agent_usage(pid)
        cpu = (t1 - t0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - w0) * 100
        print("agent idle with the API sync (4 pods, %d s): CPU %.2f %% of a core, RSS %.1f MiB"
              % (a.idle, cpu, rss / 1024))
        out = subprocess.run([node.plinth, "ps"], capture_output=True, text=True)
        print(out.stdout)
    finally:
        node.close()


if __name__ == "__main__":
    main()
