#!/usr/bin/env bash
# plinth quick start: install what plinth needs from the package registries, build it, and run
# `plinth init` on examples/single-node.yaml in a safe place — a temp --root and a private
# network namespace (its own ports and a TEST-NET advertise address), so nothing on this host
# changes. Where kube-apiserver / kube-controller-manager / kube-scheduler are not installed,
# `plinth binaries pull` downloads them first (from the official release location, or from
# the mirror you name), verifies their sha256 and caches them under the root, then the full
# init runs. When they cannot be downloaded it says exactly why and how to use a mirror, and
# still does everything it can (PKI, kubeconfigs, manifests, agent, real etcd).
#
#   bash scripts/quickstart.sh            # run, show the result, clean up
#   KEEP=1 bash scripts/quickstart.sh     # leave the node running to explore
#   PLINTH_BIN_PATH=/opt/k8s/bin bash scripts/quickstart.sh   # where your kube binaries are
#   PLINTH_BINARY_REPOSITORY=https://mirror.example.com/k8s/release \
#     [PLINTH_ETCD_BINARY_REPOSITORY=...] [PLINTH_BINARY_CA_BUNDLE=/path/ca.pem] \
#     bash scripts/quickstart.sh          # download from a mirror (file:///dir works too)
#   PLINTH_OFFLINE=1 bash scripts/quickstart.sh   # never download
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --release --locked --quiet
PLINTH="$PWD/target/release/plinth"

ROOT="$(mktemp -d /tmp/plinth-quickstart.XXXXXX)"
NS="plinth-qs-$$"
VETH="pqs$$"
ADDR="192.0.2.10"

cleanup() {
  if [ "${KEEP:-}" = 1 ]; then
    echo
    echo "KEEP=1: the node keeps running in network namespace $NS with root $ROOT."
    echo "  nsenter --net=/run/netns/$NS $PLINTH ps"
    echo "  nsenter --net=/run/netns/$NS $PLINTH verify --root $ROOT --config ${CFG:-examples/single-node.yaml} --advertise-address $ADDR"
    echo "Clean up with: nsenter --net=/run/netns/$NS $PLINTH reset --force --root $ROOT --config ${CFG:-examples/single-node.yaml} --advertise-address $ADDR; ip netns delete $NS"
    return
  fi
  nsenter --net="/run/netns/$NS" "$PLINTH" reset --force --root "$ROOT" --config "${CFG:-examples/single-node.yaml}" \
    --advertise-address "$ADDR" >/dev/null 2>&1 || true
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  ip link delete "${VETH}h" 2>/dev/null || true
  ip netns delete "$NS" 2>/dev/null || true
  rm -rf "$ROOT" "$ROOT.cluster.yaml"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip link add "${VETH}h" type veth peer name "${VETH}n"
ip link set "${VETH}n" netns "$NS"
ip -n "$NS" addr add "$ADDR/24" dev "${VETH}n"
ip -n "$NS" link set "${VETH}n" up   # the host-side peer stays down: nothing leaves

in_ns() { nsenter --net="/run/netns/$NS" "$@"; }

# The configuration: the example, plus the mirror settings given in the environment.
CFG=examples/single-node.yaml
if [ -n "${PLINTH_BINARY_REPOSITORY:-}${PLINTH_ETCD_BINARY_REPOSITORY:-}${PLINTH_BINARY_CA_BUNDLE:-}" ]; then
  CFG="$ROOT.cluster.yaml"
  cp examples/single-node.yaml "$CFG"   # its last document is the PlinthConfiguration
  if [ -n "${PLINTH_BINARY_REPOSITORY:-}" ]; then
    echo "binaryRepository: $PLINTH_BINARY_REPOSITORY" >>"$CFG"
  fi
  if [ -n "${PLINTH_ETCD_BINARY_REPOSITORY:-}" ]; then
    echo "etcdBinaryRepository: $PLINTH_ETCD_BINARY_REPOSITORY" >>"$CFG"
  fi
  if [ -n "${PLINTH_BINARY_CA_BUNDLE:-}" ]; then
    echo "binaryRepositoryCABundle: $PLINTH_BINARY_CA_BUNDLE" >>"$CFG"
  fi
fi

args=(init --config "$CFG" --root "$ROOT" --advertise-address "$ADDR")
[ -n "${PLINTH_BIN_PATH:-}" ] && export PATH="$PLINTH_BIN_PATH:$PATH"

# The control-plane binaries: those on $PATH in the configured version, else downloaded (on
# the host: the node's netns has no way out), sha256-verified and cached in the root's
# /var/lib/plinth/bin, where the node's init and agent find them.
chmod 755 "$ROOT"   # like /: components running as their own user reach the cache
pull=(binaries pull --no-kubectl --root "$ROOT" --config "$CFG" --advertise-address 127.0.0.1)
[ "${PLINTH_OFFLINE:-}" = 1 ] && pull+=(--offline)
echo "Providing kube-apiserver, kube-controller-manager, kube-scheduler and etcd (plinth binaries pull)..."
why=""
if "$PLINTH" "${pull[@]}" 2>"$ROOT.pull.err"; then
  have_binaries=1
else
  have_binaries=0
  why="$(grep -A12 '^error:' "$ROOT.pull.err" || tail -n 12 "$ROOT.pull.err")"
fi
rm -f "$ROOT.pull.err"

if [ "$have_binaries" = 1 ]; then
  in_ns "$PLINTH" "${args[@]}"
  in_ns "$PLINTH" verify --root "$ROOT" --config "$CFG" --advertise-address "$ADDR"
  in_ns kubectl --kubeconfig "$ROOT/etc/kubernetes/admin.conf" get --raw /readyz; echo
else
  ignore=""
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    ignore+="FileExisting-$b,KubernetesVersion-$b,"
  done
  in_ns "$PLINTH" "${args[@]}" --ignore-preflight-errors "${ignore%,}" --skip-phases binaries,wait-control-plane
  echo
  echo "Waiting for etcd (the one control-plane binary the registries offer)..."
  for _ in $(seq 1 60); do
    in_ns "$PLINTH" ps 2>/dev/null | grep -q 'etcd.*true' && break
    sleep 1
  done
  in_ns "$PLINTH" ps || true
  echo
  echo "plinth rendered the full PKI, kubeconfigs and manifests under $ROOT and runs real etcd."
  echo "The Kubernetes control-plane binaries of the configured version are not on this host"
  echo "and could not be downloaded:"
  echo "$why" | sed 's/^/  | /'
  echo
  echo "Ways on:"
  echo "  - Behind a proxy: export HTTPS_PROXY=http://proxy:3128 (and NO_PROXY) and run again."
  echo "  - A mirror laid out like the official release location"
  echo "    (<repo>/<version>/bin/linux/<arch>/<name> with <name>.sha256 beside it; etcd as"
  echo "    <repo>/<version>/etcd-<version>-linux-<arch>.tar.gz with SHA256SUMS):"
  echo "      PLINTH_BINARY_REPOSITORY=https://mirror.example.com/k8s/release \\"
  echo "      PLINTH_BINARY_CA_BUNDLE=/etc/ssl/mirror-ca.pem bash scripts/quickstart.sh"
  echo "    (https, http on loopback, or file:///dir; binaryRepository, etcdBinaryRepository and"
  echo "    binaryRepositoryCABundle in the PlinthConfiguration do the same for plinth init)."
  echo "  - Offline: put the binaries in a directory and"
  echo "      PLINTH_BIN_PATH=/dir/with/binaries bash scripts/quickstart.sh"
  echo "    (on a node: copy them to /var/lib/plinth/bin/<component>/<version>/ or binPath and"
  echo "    run plinth init --offline, which never downloads)."
fi
