#!/usr/bin/env bash
# plinth quick start: install what plinth needs from the package registries, build it, and run
# `plinth init` on examples/single-node.yaml in a safe place — a temp --root and a private
# network namespace (its own ports and a TEST-NET advertise address), so nothing on this host
# changes. Where kube-apiserver / kube-controller-manager / kube-scheduler are not installed it
# still does everything it can (PKI, kubeconfigs, manifests, agent, real etcd) and ends by
# naming what is missing and how to point plinth at it.
#
#   bash scripts/quickstart.sh            # run, show the result, clean up
#   KEEP=1 bash scripts/quickstart.sh     # leave the node running to explore
#   PLINTH_BIN_PATH=/opt/k8s/bin bash scripts/quickstart.sh   # where your kube binaries are
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
    echo "  nsenter --net=/run/netns/$NS $PLINTH verify --root $ROOT --config examples/single-node.yaml --advertise-address $ADDR"
    echo "Clean up with: nsenter --net=/run/netns/$NS $PLINTH reset --force --root $ROOT --config examples/single-node.yaml --advertise-address $ADDR; ip netns delete $NS"
    return
  fi
  nsenter --net="/run/netns/$NS" "$PLINTH" reset --force --root "$ROOT" --config examples/single-node.yaml \
    --advertise-address "$ADDR" >/dev/null 2>&1 || true
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  ip link delete "${VETH}h" 2>/dev/null || true
  ip netns delete "$NS" 2>/dev/null || true
  rm -rf "$ROOT"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip link add "${VETH}h" type veth peer name "${VETH}n"
ip link set "${VETH}n" netns "$NS"
ip -n "$NS" addr add "$ADDR/24" dev "${VETH}n"
ip -n "$NS" link set "${VETH}n" up   # the host-side peer stays down: nothing leaves

in_ns() { nsenter --net="/run/netns/$NS" "$@"; }

missing=()
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  found=""
  IFS=: read -ra dirs <<<"${PLINTH_BIN_PATH:-$PATH}"
  for d in "${dirs[@]}"; do [ -x "$d/$b" ] && found=1; done
  [ -n "$found" ] || missing+=("$b")
done

args=(init --config examples/single-node.yaml --root "$ROOT" --advertise-address "$ADDR")
[ -n "${PLINTH_BIN_PATH:-}" ] && export PATH="$PLINTH_BIN_PATH:$PATH"

if [ ${#missing[@]} -eq 0 ]; then
  in_ns "$PLINTH" "${args[@]}"
  in_ns "$PLINTH" verify --root "$ROOT" --config examples/single-node.yaml --advertise-address "$ADDR"
  in_ns kubectl --kubeconfig "$ROOT/etc/kubernetes/admin.conf" get --raw /readyz; echo
else
  ignore=$(printf 'FileExisting-%s,' "${missing[@]}")
  in_ns "$PLINTH" "${args[@]}" --ignore-preflight-errors "${ignore%,}" --skip-phases wait-control-plane
  echo
  echo "Waiting for etcd (the one control-plane binary the registries offer)..."
  for _ in $(seq 1 60); do
    in_ns "$PLINTH" ps 2>/dev/null | grep -q 'etcd.*true' && break
    sleep 1
  done
  in_ns "$PLINTH" ps || true
  echo
  echo "plinth rendered the full PKI, kubeconfigs and manifests under $ROOT and runs real etcd."
  echo "Missing on this host: ${missing[*]}."
  echo "Install them (e.g. from the Kubernetes release binaries) and point plinth at them with"
  echo "PLINTH_BIN_PATH=/dir/with/binaries bash scripts/quickstart.sh (or binPath in the PlinthConfiguration)."
fi
