#!/usr/bin/python3
"""Benchmark (not a test): kube-apiserver /readyz downtime caused by each day-2 operation on a
live node.

One node is brought up with `plinth init` in a network namespace of its own (lo + a veth whose
host side stays DOWN, 192.0.2.10/24 inside) on a temp root. A poller GETs
https://192.0.2.10:6443/readyz every 100 ms (1 s timeout, certificate not verified, like a
load balancer's health check). For each operation the script records every poll from the
moment the operation starts until 45 s after the command returned (the agent reacts to a changed
file at its next relist, up to 20 s later), then until /readyz has answered `ok` for 3 s in a row
and `plinth verify` passes again, and reports:

  down   the longest run of failed polls (first failure .. first `ok` after it): what a client
         behind a health-checking load balancer would lose;
  total  the sum of all failed-poll intervals in the window;
  cmd    the operation's own wall time.

Operations (run in this order, each REPS times):
  renew-apiserver   plinth certs renew apiserver
  renew-all         plinth certs renew all
  regenerate        plinth manifest regenerate kube-apiserver after a flag change (--v toggled)
  broken-flag       plinth manifest regenerate kube-apiserver with secure-port: notaport
                    (refused by the config check before anything is touched: no downtime)
  broken-flag-unknown  the same with no-such-flag: "1", a flag plinth cannot check: the new
                    apiserver exits with its usage error and is rolled back on that first crash
  kill-apiserver    kill -9 of the kube-apiserver process (the agent restarts it)

Usage (as root, after `cargo build --release`):
  benches/downtime.py [-n REPS] [-b PLINTH_BIN] [--ops a,b,...]
Components: PLINTH_E2E_BIN_DIR (real kube-apiserver, -controller-manager, -scheduler, and its
etcd when it has one), else the test doubles (tests/support/doubles) and etcd on PATH
(PLINTH_ETCD_BIN overrides). Every process is ended by `plinth reset --force`, then whatever is
left in the namespace it created is SIGKILLed by pid; the namespace and the root are removed.
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ADDR = "192.0.2.10"
POLL = 0.1
OBSERVE = 45.0
CLONE_NEWNET = 0x40000000
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OPS = ["renew-apiserver", "renew-all", "regenerate", "broken-flag", "broken-flag-unknown",
       "kill-apiserver"]


def sh(*argv, check=True, **kw):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


class Node:
    """A netns + root + bin dir, the process itself moved into the netns (setns)."""

    def __init__(self, plinth):
        self.plinth = plinth
        self.work = tempfile.mkdtemp(prefix="plinth-bench-downtime.")
        os.chmod(self.work, 0o755)  # etcd runs as the etcd user: it must reach bin/etcd
        self.root = os.path.join(self.work, "root")
        os.mkdir(self.root)
        self.bin = os.path.join(self.work, "bin")
        os.mkdir(self.bin)
        comps = os.environ.get("PLINTH_E2E_BIN_DIR") or os.path.join(REPO, "tests/support/doubles")
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            os.symlink(os.path.join(comps, c), os.path.join(self.bin, c))
        etcd = os.environ.get("PLINTH_ETCD_BIN")
        if not etcd and os.environ.get("PLINTH_E2E_BIN_DIR"):
            cand = os.path.join(os.environ["PLINTH_E2E_BIN_DIR"], "etcd")
            etcd = cand if os.access(cand, os.X_OK) else None
        etcd = etcd or shutil.which("etcd")
        if not etcd:
            sys.exit("downtime.py: no etcd (PLINTH_ETCD_BIN, PLINTH_E2E_BIN_DIR/etcd or etcd on PATH)")
        os.symlink(etcd, os.path.join(self.bin, "etcd"))
        out = sh(os.path.join(self.bin, "kube-apiserver"), "--version").stdout.split()
        self.version = out[1]
        self.components = comps
        self.etcd = etcd
        self.ns = "plinth-bench-dt-%d" % os.getpid()
        host = ("pbd%d" % (os.getpid() % 100000))[:15]
        sh("ip", "netns", "add", self.ns)
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        sh("ip", "-n", self.ns, "addr", "add", ADDR + "/24", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/run/netns/" + self.ns, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            sys.exit("setns: errno %d" % ctypes.get_errno())
        os.close(fd)
        self.cfg = os.path.join(self.work, "config.yaml")
        self.write_config()

    def write_config(self, api_args=None):
        extra = ""
        if api_args:
            extra = "apiServer:\n  extraArgs:\n" + "".join(
                "  - name: %s\n    value: \"%s\"\n" % kv for kv in api_args.items())
        with open(self.cfg, "w") as f:
            f.write(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
                "localAPIEndpoint:\n  advertiseAddress: %s\nnodeRegistration:\n  name: cp1\n---\n"
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
                "kubernetesVersion: %s\nencryptionAlgorithm: ECDSA-P256\n%s---\n"
                "apiVersion: plinth.io/v1alpha1\nkind: PlinthConfiguration\nbinPath: [%s]\n"
                % (ADDR, self.version, extra, self.bin))

    def run(self, *args, timeout=300, root=True):
        t0 = time.monotonic()
        argv = [self.plinth, *args] + (["--root", self.root] if root else [])
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return p, time.monotonic() - t0

    def apiserver_pid(self):
        p, _ = self.run("ps", "-o", "json", root=False)
        for item in json.loads(p.stdout).get("items", []):
            pids = item["metadata"].get("annotations", {}).get("plinth.io/pids")
            if pids and "kube-apiserver" in json.loads(pids):
                return json.loads(pids)["kube-apiserver"]
        return None

    def close(self):
        try:
            self.run("reset", "--force", "--config", self.cfg, timeout=120)
        except Exception as e:  # noqa: BLE001 - cleanup goes on
            print("reset: %s" % e, file=sys.stderr)
        for pid in sh("ip", "netns", "pids", self.ns, check=False).stdout.split():
            if int(pid) == os.getpid():  # this script lives in the namespace too
                continue
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "delete", self.ns, check=False)
        shutil.rmtree(self.work, ignore_errors=True)


class Poller(threading.Thread):
    """GETs /readyz every POLL seconds; keeps (time, ok) samples."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.lock = threading.Lock()
        self.stop = False
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ctx))

    def ok(self):
        try:
            with self.opener.open("https://%s:6443/readyz" % ADDR, timeout=1.0) as r:
                return r.status == 200 and r.read().strip() == b"ok"
        except Exception:  # noqa: BLE001 - any failure is downtime
            return False

    def run(self):
        while not self.stop:
            t = time.monotonic()
            ok = self.ok()
            with self.lock:
                self.samples.append((t, ok))
            time.sleep(max(0.0, POLL - (time.monotonic() - t)))

    def since(self, t0):
        with self.lock:
            return [s for s in self.samples if s[0] >= t0]


def downtime(samples):
    """(longest outage, total outage) over samples [(t, ok)]: an outage runs from its first
    failed poll to the first ok poll after it."""
    longest = total = 0.0
    start = None
    for t, ok in samples:
        if not ok and start is None:
            start = t
        elif ok and start is not None:
            longest = max(longest, t - start)
            total += t - start
            start = None
    if start is not None:
        d = samples[-1][0] - start
        longest, total = max(longest, d), total + d
    return longest, total


def settle(node, poller, t_end, limit=180.0, observe=OBSERVE):
    """Waits `observe` seconds after t_end (the agent reacts to a changed file at its next
    relist, up to 20 s later, and a restart may take a grace period), then until /readyz was ok
    for 3 s in a row and verify passes."""
    time.sleep(max(0.0, t_end + observe - time.monotonic()))
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        s = poller.since(t_end)
        tail = [ok for t, ok in s if t >= time.monotonic() - 3.0]
        if len(tail) >= 25 and all(tail):
            p, _ = node.run("verify", "--config", node.cfg, timeout=60)
            if p.returncode == 0:
                return True
        time.sleep(0.5)
    return False


def operation(node, name):
    """Runs one operation; returns (command result, wall time)."""
    if name == "renew-apiserver":
        return node.run("certs", "renew", "apiserver", "--config", node.cfg)
    if name == "renew-all":
        return node.run("certs", "renew", "all", "--config", node.cfg)
    if name == "regenerate":
        node.flip = not getattr(node, "flip", False)
        node.write_config({"v": "2" if node.flip else "1"})
        return node.run("manifest", "regenerate", "kube-apiserver", "--config", node.cfg)
    if name == "broken-flag":
        node.write_config({"secure-port": "notaport"})
        r = node.run("manifest", "regenerate", "kube-apiserver", "--config", node.cfg)
        node.write_config({"v": "2" if getattr(node, "flip", False) else "1"})
        return r
    if name == "broken-flag-unknown":
        node.write_config({"no-such-flag": "1"})
        r = node.run("manifest", "regenerate", "kube-apiserver", "--config", node.cfg)
        node.write_config({"v": "2" if getattr(node, "flip", False) else "1"})
        return r
    if name == "kill-apiserver":
        pid = node.apiserver_pid()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        return None, time.monotonic() - t0
    raise SystemExit("unknown operation %s" % name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=3, help="repetitions per operation (default 3)")
    ap.add_argument("-b", default=os.path.join(REPO, "target/release/plinth"), help="plinth binary")
    ap.add_argument("--ops", default=",".join(OPS))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("downtime.py: run as root (network namespaces)")
    ops = a.ops.split(",")
    node = Node(os.path.abspath(a.b))
    try:
        print("plinth: %s; components: %s (%s); etcd: %s; reps: %d"
              % (a.b, node.components, node.version, node.etcd, a.n))
        p, t = node.run("init", "--config", node.cfg)
        if p.returncode != 0:
            print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
            sys.exit("init failed")
        print("init: %.2fs" % t)
        poller = Poller()
        poller.start()
        # A quiet window first, measured like an operation: what the node does on its own
        # right after init (it must be nothing: no restart without a cause).
        t0 = time.monotonic()
        if not settle(node, poller, t0):
            sys.exit("node did not settle after init")
        longest, total = downtime(poller.since(t0))
        print("%-16s       : down %.2fs total %.2fs (the %ds after init, no operation)"
              % ("idle", longest, total, OBSERVE))
        results = {o: [] for o in ops}
        for op in ops:
            for i in range(a.n):
                t0 = time.monotonic()
                r, wall = operation(node, op)
                t_end = time.monotonic()
                ok = settle(node, poller, t_end)
                longest, total = downtime(poller.since(t0))
                rc = "-" if r is None else r.returncode
                results[op].append((longest, total, wall))
                print("%-16s run %d: down %.2fs total %.2fs cmd %.2fs exit %s%s"
                      % (op, i + 1, longest, total, wall, rc, "" if ok else " NOT-SETTLED"))
                if r is not None and not op.startswith("broken-flag") and r.returncode != 0:
                    print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
                if not ok:
                    sys.exit("node did not settle after %s" % op)
        poller.stop = True
        print("\n== summary (medians over %d) ==" % a.n)
        for op in ops:
            d = [x[0] for x in results[op]]
            tt = [x[1] for x in results[op]]
            w = [x[2] for x in results[op]]
            print("%-16s down %.2fs (min %.2f max %.2f)  total %.2fs  cmd %.2fs"
                  % (op, statistics.median(d), min(d), max(d), statistics.median(tt),
                     statistics.median(w)))
    finally:
        node.close()


if __name__ == "__main__":
    main()
