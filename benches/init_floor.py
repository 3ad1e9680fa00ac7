#!/usr/bin/python3
"""The FLOOR for benches/init.sh: start the four control-plane components by hand, in
parallel, with exactly the command lines of the static pod manifests `plinth init` rendered
under ROOT, and time them until every health endpoint answers OK.

Usage (inside the network namespace, as root):
    init_floor.py ROOT BIN_DIR ADVERTISE_ADDRESS

Paths: each container's volumeMounts map mountPath -> ROOT + hostPath (what the agent does
with a bind mount in a private mount namespace); here the arguments are rewritten instead.
command[0] is resolved in BIN_DIR. runAsUser/runAsGroup are honoured.

Prints one line: `floor <seconds> etcd=<s> kube-apiserver=<s> ...` (per-component time to
healthy, from the moment the first process is spawned). Exit 0 when all became healthy
within 120 s, 1 otherwise. Every process it started is SIGKILLed (by pid) before it exits.
"""

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import yaml

POLL = 0.01  # seconds between health checks of one component: the floor must not be coarse
TIMEOUT = 120.0

COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]


def health_url(pod, addr):
    """The component's health URL, read from its manifest exactly as plinth's wait does
    (src/health.rs): the readiness probe, else startup, else liveness; host defaults to the
    node address; named ports resolve through the container's ports. The paths differ by
    version (kube-scheduler: /healthz before v1.32, /readyz after), so nothing is hard-coded."""
    container = pod["spec"]["containers"][0]
    for kind in ("readinessProbe", "startupProbe", "livenessProbe"):
        get = (container.get(kind) or {}).get("httpGet")
        if not get:
            continue
        port = get["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in container.get("ports", []) if p.get("name") == port)
        host = get.get("host") or addr
        if ":" in host:
            host = "[%s]" % host
        scheme = get.get("scheme", "HTTP").lower()
        return "%s://%s:%d%s" % (scheme, host, int(port), get.get("path", "/"))
    raise SystemExit("manifest %s: no httpGet probe" % pod["metadata"]["name"])


def rewrite(value, mounts):
    """Rewrites every comma-separated part of a flag value that lies under a mountPath."""
    parts = []
    for part in value.split(","):
        for mount_path, host_path in mounts:
            if part == mount_path or part.startswith(mount_path.rstrip("/") + "/"):
                part = host_path + part[len(mount_path):]
                break
        parts.append(part)
    return ",".join(parts)


def command_line(root, bin_dir, pod):
    """argv, uid, gid of the pod's single container, host paths rewritten under ROOT."""
    spec = pod["spec"]
    volumes = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v}
    container = spec["containers"][0]
    mounts = []
    for m in container.get("volumeMounts", []):
        mounts.append((m["mountPath"], root + volumes[m["name"]]))
    mounts.sort(key=lambda m: len(m[0]), reverse=True)  # longest prefix first
    argv = list(container.get("command", [])) + list(container.get("args", []))
    out = [os.path.join(bin_dir, argv[0])]
    for a in argv[1:]:
        if a.startswith("--") and "=" in a:
            name, value = a.split("=", 1)
            out.append(name + "=" + rewrite(value, mounts))
        else:
            out.append(rewrite(a, mounts))
    sc = dict(spec.get("securityContext") or {})
    sc.update(container.get("securityContext") or {})
    return out, sc.get("runAsUser"), sc.get("runAsGroup")


def healthy(url, ctx):
    try:
        with urllib.request.urlopen(url, timeout=1.0, context=ctx) as r:
            return 200 <= r.status < 400
    except Exception:  # noqa: BLE001 - any failure is "not yet"
        return False


def main():
    root, bin_dir, addr = sys.argv[1], sys.argv[2], sys.argv[3]
    manifests = os.path.join(root, "etc/kubernetes/manifests")
    plans = []
    urls = {}
    for comp in COMPONENTS:
        with open(os.path.join(manifests, comp + ".yaml")) as f:
            pod = yaml.safe_load(f)
        plans.append((comp, *command_line(root, bin_dir, pod)))
        urls[comp] = health_url(pod, addr)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # No proxies: the endpoints are local.
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({})))
    logdir = os.path.join(root, "floor-logs")
    os.makedirs(logdir, exist_ok=True)
    logs = {c: open(os.path.join(logdir, c + ".log"), "wb") for c, *_ in plans}

    done = {}
    procs = []
    start = time.monotonic()
    for comp, argv, uid, gid in plans:
        procs.append(subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=logs[comp], stderr=subprocess.STDOUT,
            user=uid, group=gid, start_new_session=True))

    def poll(comp):
        url = urls[comp]
        while time.monotonic() - start < TIMEOUT:
            if healthy(url, ctx):
                done[comp] = time.monotonic() - start
                return
            time.sleep(POLL)

    threads = [threading.Thread(target=poll, args=(c,)) for c in COMPONENTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = max(done.values()) if done else time.monotonic() - start
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    ok = len(done) == len(COMPONENTS)
    per = " ".join("%s=%.3f" % (c, done.get(c, float("nan"))) for c in COMPONENTS)
    print("floor %.3f %s%s" % (total, per, "" if ok else " NOT-HEALTHY"))
    if not ok:
        for comp in COMPONENTS:
            if comp not in done:
                with open(os.path.join(logdir, comp + ".log"), "rb") as f:
                    tail = f.read().decode("utf-8", "replace").splitlines()[-10:]
                print("--- %s (not healthy), last log lines:\n%s" % (comp, "\n".join(tail)), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
