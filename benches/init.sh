#!/usr/bin/env bash
# Benchmark (not a test): `plinth init` wall time from an empty root to all-healthy (exit 0)
# versus the FLOOR: the same four components started by hand, in parallel, with the command
# lines of the manifests plinth rendered (benches/init_floor.py), until their health
# endpoints answer. Target (issue 3): plinth <= floor + 0.5 s.
#
# Usage (as root, after `cargo build --release`):
#   benches/init.sh [-n RUNS] [-a ALGS] [-b PLINTH_BIN]
#     -n RUNS   pairs per algorithm (default 7)
#     -a ALGS   comma-separated encryptionAlgorithm values (default ECDSA-P256,RSA-2048)
#     -b BIN    the plinth binary (default target/release/plinth)
#     -B BIN    also time this second plinth binary (e.g. a build of main) in the same rounds,
#               A B floor A B floor ..., to compare a product change under the same load
#
# Every run gets a fresh temp root and a fresh network namespace (lo + a veth whose host side
# stays DOWN, 192.0.2.10/24 inside); plinth and floor runs alternate (A B A B ...) so drift
# hits both. The components are the strict test doubles (tests/support/doubles) for
# kube-apiserver/-controller-manager/-scheduler and real etcd (PLINTH_ETCD_BIN or `etcd` on
# PATH); set PLINTH_E2E_BIN_DIR to use real Kubernetes binaries instead.
# Prints every run, then per algorithm the medians and median(plinth - floor) over pairs.
# Cleans up: `plinth reset --force`, then SIGKILL by pid whatever is left in the namespace it
# created, then deletes the namespace and the root.
set -euo pipefail

RUNS=7
ALGS=ECDSA-P256,RSA-2048
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PLINTH=$REPO/target/release/plinth
BASE=""
while getopts "n:a:b:B:" o; do
    case $o in
    n) RUNS=$OPTARG ;;
    a) ALGS=$OPTARG ;;
    b) PLINTH=$OPTARG ;;
    B) BASE=$OPTARG ;;
    *) sed -n '2,23p' "$0"; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "init.sh: run as root (network namespaces)" >&2; exit 2; }
[ -x "$PLINTH" ] || { echo "init.sh: $PLINTH not found: cargo build --release" >&2; exit 2; }
[ -z "$BASE" ] || [ -x "$BASE" ] || { echo "init.sh: -B $BASE is not executable" >&2; exit 2; }
ETCD=${PLINTH_ETCD_BIN:-}
if [ -z "$ETCD" ] && [ -n "${PLINTH_E2E_BIN_DIR:-}" ] && [ -x "$PLINTH_E2E_BIN_DIR/etcd" ]; then
    ETCD=$PLINTH_E2E_BIN_DIR/etcd # the etcd the real binaries' version pairs with
fi
ETCD=${ETCD:-$(command -v etcd || true)}
[ -x "$ETCD" ] || { echo "init.sh: no etcd (PLINTH_ETCD_BIN or etcd on PATH)" >&2; exit 2; }

ADDR=192.0.2.10
WORK=$(mktemp -d /tmp/plinth-bench-init.XXXXXX)
chmod 755 "$WORK" # etcd runs as the etcd user (cis profile): it must reach $BIN/etcd
BIN=$WORK/bin
mkdir -p "$BIN"
for c in kube-apiserver kube-controller-manager kube-scheduler; do
    ln -s "${PLINTH_E2E_BIN_DIR:-$REPO/tests/support/doubles}/$c" "$BIN/$c"
done
ln -s "$ETCD" "$BIN/etcd"
# The version the components claim (doubles: v1.33.0; real binaries: theirs), so the config
# matches whatever runs (the skew check refuses a mismatch).
KVER=$("$BIN/kube-apiserver" --version | awk '{print $2}')
[ -n "$KVER" ] || { echo "init.sh: $BIN/kube-apiserver --version printed no version" >&2; exit 2; }

NS=""
cleanup_ns() {
    [ -n "$NS" ] || return 0
    local pid
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$NS" 2>/dev/null || true
    NS=""
}
cleanup() {
    cleanup_ns
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SEQ=0
new_ns() {
    SEQ=$((SEQ + 1))
    NS=plinth-bench-$$-$SEQ
    local host=pbh$(($$ % 100000))x$SEQ
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip link add "${host:0:15}" type veth peer name eth0 netns "$NS"
    ip -n "$NS" addr add $ADDR/24 dev eth0
    ip -n "$NS" link set eth0 up # carrier stays down: the host side is never brought up
}

config() { # $1 = encryptionAlgorithm
    cat <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $KVER
encryptionAlgorithm: $1
---
apiVersion: plinth.io/v1alpha1
kind: PlinthConfiguration
binPath: [$BIN]
EOF
}

now() { echo "$EPOCHREALTIME"; }

# One plinth run: sets P_WALL (seconds), P_WAIT (the wait phase as plinth reports it) and
# P_PROFILE (where the time went, benches/init_profile.py). PLINTH_LOG=info only adds a few
# timestamped log lines (the preflight findings) to what plinth prints.
run_plinth() { # $1 = config file, $2 = plinth binary (default $PLINTH)
    local root out t0 t1 rc bin=${2:-$PLINTH}
    new_ns
    root=$WORK/root-$SEQ
    mkdir "$root"
    t0=$(now)
    set +e
    PLINTH_LOG=info nsenter --net=/run/netns/"$NS" "$bin" init --config "$1" --root "$root" \
        --advertise-address $ADDR >"$WORK/last-init.log" 2>&1
    rc=$?
    set -e
    t1=$(now)
    P_WAIT=$(sed -n 's/.*components are healthy after \([0-9.]*\)s.*/\1/p' "$WORK/last-init.log")
    P_PROFILE=$(/usr/bin/python3 "$HERE/init_profile.py" "$t0" "$t1" "$WORK/last-init.log" \
        "$root/var/log/plinth/agent.log")
    nsenter --net=/run/netns/"$NS" "$bin" reset --force --config "$1" --root "$root" \
        --advertise-address $ADDR >"$WORK/last-reset.log" 2>&1 || true
    cleanup_ns
    rm -rf "$root"
    if [ $rc != 0 ]; then
        echo "plinth init failed (exit $rc):" >&2
        grep -v "^      |" "$WORK/last-init.log" | tail -60 >&2
        exit 1
    fi
    P_WALL=$(/usr/bin/python3 -c "print('%.3f' % ($t1 - $t0))")
}

# One floor run: render (untimed), then init_floor.py; sets F_LINE to its output line.
run_floor() { # $1 = config file
    local root out rc
    new_ns
    root=$WORK/root-$SEQ
    mkdir "$root"
    nsenter --net=/run/netns/"$NS" "$PLINTH" init --config "$1" --root "$root" \
        --advertise-address $ADDR --skip-phases agent,wait-control-plane >"$WORK/last-render.log" 2>&1 ||
        { tail -20 "$WORK/last-render.log" >&2; exit 1; }
    set +e
    out=$(nsenter --net=/run/netns/"$NS" /usr/bin/python3 "$HERE/init_floor.py" "$root" "$BIN" $ADDR)
    rc=$?
    set -e
    cleanup_ns
    rm -rf "$root"
    [ $rc = 0 ] || { echo "floor failed: $out" >&2; exit 1; }
    F_LINE=$out
}

median() { /usr/bin/python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f" % statistics.median(v))' "$@"; }

echo "plinth: $PLINTH ($("$PLINTH" --version 2>/dev/null || echo '?'))${BASE:+; baseline (-B): $BASE}"
echo "etcd: $ETCD; components: ${PLINTH_E2E_BIN_DIR:-test doubles} ($KVER); $(nproc) cores; runs per algorithm: $RUNS"
SUMMARY=""
IFS=, read -ra ALG_LIST <<<"$ALGS"
for alg in "${ALG_LIST[@]}"; do
    cfg=$WORK/config-$alg.yaml
    config "$alg" >"$cfg"
    P=() F=() D=() W=() BP=() BD=() PROF=()
    # Warm-up pair (page cache, python bytecode caches), not counted.
    run_plinth "$cfg"
    [ -z "$BASE" ] || run_plinth "$cfg" "$BASE"
    run_floor "$cfg"
    for i in $(seq 1 "$RUNS"); do
        run_plinth "$cfg"
        p=$P_WALL w=${P_WAIT:-?} prof=$P_PROFILE
        if [ -n "$BASE" ]; then
            run_plinth "$cfg" "$BASE"
            bp=$P_WALL bprof=$P_PROFILE
        fi
        run_floor "$cfg"
        fl=$F_LINE
        f=$(awk '{print $2}' <<<"$fl")
        d=$(/usr/bin/python3 -c "print('%.3f' % ($p - $f))")
        P+=("$p") F+=("$f") D+=("$d") PROF+=("$prof")
        [ "$w" != "?" ] && W+=("$w")
        printf '%-10s run %d: plinth init %ss | %s | plinth - floor %ss\n' "$alg" "$i" "$p" "$fl" "$d"
        printf '%-10s        plinth profile: %s\n' "" "$prof"
        if [ -n "$BASE" ]; then
            bd=$(/usr/bin/python3 -c "print('%.3f' % ($bp - $f))")
            BP+=("$bp") BD+=("$bd")
            printf '%-10s        baseline init %ss, baseline - floor %ss; profile: %s\n' "" "$bp" "$bd" "$bprof"
        fi
    done
    line=$(printf '%-10s median over %d: plinth init %ss, floor %ss, plinth - floor %ss (target <= 0.500 s), its wait phase %ss' \
        "$alg" "$RUNS" "$(median "${P[@]}")" "$(median "${F[@]}")" "$(median "${D[@]}")" "$(median "${W[@]:-0}")")
    line+=$'\n'$(printf '%-10s median profile: %s' "$alg" "$(/usr/bin/python3 "$HERE/init_profile.py" --median "${PROF[@]}")")
    if [ -n "$BASE" ]; then
        line+=$'\n'$(printf '%-10s baseline (-B):  plinth init %ss, baseline - floor %ss' \
            "$alg" "$(median "${BP[@]}")" "$(median "${BD[@]}")")
    fi
    echo "$line"
    SUMMARY+="$line"$'\n'
done
echo
echo "== summary =="
printf '%s' "$SUMMARY"
