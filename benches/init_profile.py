#!/usr/bin/python3
"""Where one `plinth init` run of benches/init.sh spent its time, from its own logs.

Usage: init_profile.py T0 T1 INIT_LOG AGENT_LOG
  T0, T1     wall clock (epoch seconds) just before plinth started and just after it exited
  INIT_LOG   plinth init's stdout+stderr, run with PLINTH_LOG=info (timestamped tracing lines)
  AGENT_LOG  the spawned agent's log (<root>/var/log/plinth/agent.log)

   or: init_profile.py --median LINE...   (medians of each phase over lines printed before)

Prints one line of phases, in seconds:
  preflight  start -> the last `[preflight]` finding is logged (config, etcd --version, checks)
  render     -> the agent's first log line (certs, kubeconfigs, manifests, agent spawn)
  sync       -> the agent's "first sync done"
  starts     -> the agent's last "container started" (all four processes exist)
  wait       -> plinth reports all healthy (its own figure, 0.1 s resolution)
  after      the rest up to exit (admin ClusterRoleBinding, summary)
and each component's time to healthy as plinth printed it, counted from the wait's start.
"""

import datetime
import re
import sys

TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def stamp(line):
    m = TS.match(line)
    if not m:
        return None
    whole, frac = m.group(1).split(".")
    dt = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + float("0." + frac)


def medians(lines):
    import statistics
    values = {}
    for line in lines:
        for k, v in re.findall(r"(\w+)[=~]([0-9.]+)(?=\s|$)", line.split("healthy[")[0].strip()):
            values.setdefault(k, []).append(float(v))
    print(" ".join("%s=%.3f" % (k, statistics.median(v)) for k, v in values.items()))


def main():
    if sys.argv[1] == "--median":
        return medians(sys.argv[2:])
    t0, t1 = float(sys.argv[1]), float(sys.argv[2])
    init = open(sys.argv[3], errors="replace").read().splitlines()
    try:
        agent = open(sys.argv[4], errors="replace").read().splitlines()
    except OSError:
        agent = []
    pre = [stamp(l) for l in init if "[preflight]" in l and stamp(l)]
    t_pre = max(pre) if pre else None
    a = [stamp(l) for l in agent if stamp(l)]
    t_agent = min(a) if a else None
    sync = [stamp(l) for l in agent if "first sync done" in l and stamp(l)]
    starts = [stamp(l) for l in agent if "container started" in l and stamp(l)]
    wait = None
    healthy = {}
    for l in init:
        m = re.search(r"components are healthy after ([0-9.]+)s", l)
        if m:
            wait = float(m.group(1))
        m = re.search(r"\[wait-control-plane\] (\S+): healthy \(([0-9.]+)s\)", l)
        if m:
            healthy[m.group(1)] = m.group(2)
    parts = []

    def add(name, a, b):
        parts.append("%s=%s" % (name, "?" if a is None or b is None else "%.3f" % (b - a)))

    add("preflight", t0, t_pre)
    add("render", t_pre, t_agent)
    add("sync", t_agent, sync[0] if sync else None)
    add("starts", sync[0] if sync else None, max(starts) if len(starts) >= 4 else None)
    parts.append("wait=%s" % ("?" if wait is None else "%.1f" % wait))
    if t_agent is not None and wait is not None:
        parts.append("after~%.2f" % (t1 - t_agent - wait))
    parts.append("healthy[%s]" % " ".join("%s=%s" % kv for kv in sorted(healthy.items())))
    print(" ".join(parts))


if __name__ == "__main__":
    main()
