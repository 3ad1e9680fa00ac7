# TEST DOUBLE — NEVER SHIPPED
#
# Shared code of plinth's strict test doubles for kube-apiserver, kube-controller-manager and
# kube-scheduler (see DEVELOPERS.md). Python 3 standard library only, plus the openssl CLI.
#
# What lives here: pflag-compatible flag parsing with typed values and the same error texts,
# klog-style logging, file / key-pair / CA checks, a minimal YAML reader for kubeconfigs and
# small config files, a threaded HTTPS server that does the TLS handshake per connection, and
# an mTLS HTTPS client.

import base64
import datetime
import http.client
import http.server
import inspect
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

DEFAULT_VERSION = "v1.33.0"


def version():
    """The Kubernetes version this double claims to be (env PLINTH_DOUBLE_VERSION overrides)."""
    v = os.environ.get("PLINTH_DOUBLE_VERSION", DEFAULT_VERSION).strip()
    if not v.startswith("v"):
        v = "v" + v
    return v


def version_info():
    """The /version JSON body, as the real binaries serve it."""
    v = version()
    m = re.match(r"v(\d+)\.(\d+)", v)
    major, minor = (m.group(1), m.group(2)) if m else ("1", "33")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": v,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def connect_timeout():
    """Seconds a double keeps retrying its upstream (etcd / apiserver); real binaries ~20 s."""
    try:
        return float(os.environ.get("PLINTH_DOUBLE_CONNECT_TIMEOUT", "20"))
    except ValueError:
        return 20.0


# ----------------------------------------------------------------------------------------------
# klog-style logging

_log_lock = threading.Lock()


def klog(level, msg, depth=1):
    """Writes one klog-formatted line (`E1123 21:03:04.123456   12345 file.py:42] msg`)."""
    now = datetime.datetime.now()
    frame = inspect.stack()[depth]
    fname = os.path.basename(frame.filename)
    line = "%s%02d%02d %02d:%02d:%02d.%06d %7d %s:%d] %s\n" % (
        level, now.month, now.day, now.hour, now.minute, now.second, now.microsecond,
        os.getpid(), fname, frame.lineno, msg)
    with _log_lock:
        sys.stderr.write(line)
        sys.stderr.flush()


def info(msg):
    klog("I", msg, depth=2)


def warn(msg):
    klog("W", msg, depth=2)


def error(msg):
    klog("E", msg, depth=2)


def goq(s):
    """Go's %q for a plain string."""
    out = ['"']
    for ch in str(s):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def fail(msg):
    """Runtime failure the way component-base's cli.Run reports it: klog line, exit 1."""
    klog("E", '"command failed" err=%s' % goq(msg), depth=2)
    sys.exit(1)


def cobra_error(msg, usage=None):
    """Flag / argument / validation failure as cobra prints it: `Error: msg`, usage, exit 1."""
    # The real components set cobra's SilenceUsage: only the error line is printed (which keeps
    # it as the last line of a log tail).
    sys.stderr.write("Error: %s\n" % msg)
    sys.stderr.flush()
    sys.exit(1)


# ----------------------------------------------------------------------------------------------
# pflag-compatible parsing


class FlagError(Exception):
    pass


def _go_parse_int(s, bits):
    m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|0[bB][01](?:_?[01])*|"
                     r"0[oO]?[0-7](?:_?[0-7])*|[1-9](?:_?[0-9])*|0)", s)
    if not m:
        raise FlagError("strconv.ParseInt: parsing %s: invalid syntax" % goq(s))
    body = m.group(2).replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] in "xX":
        v = int(body[2:], 16)
    elif len(body) > 1 and body[0] == "0" and body[1] in "bB":
        v = int(body[2:], 2)
    elif len(body) > 1 and body[0] == "0" and body[1] in "oO":
        v = int(body[2:], 8)
    elif len(body) > 1 and body[0] == "0":
        v = int(body[1:], 8)
    else:
        v = int(body)
    if m.group(1) == "-":
        v = -v
    if v < -(1 << (bits - 1)) or v > (1 << (bits - 1)) - 1:
        raise FlagError("strconv.ParseInt: parsing %s: value out of range" % goq(s))
    return v


def _go_parse_bool(s):
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise FlagError("strconv.ParseBool: parsing %s: invalid syntax" % goq(s))


def _go_parse_float(s):
    if not re.fullmatch(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI]nf(?:inity)?|NaN|nan)", s):
        raise FlagError("strconv.ParseFloat: parsing %s: invalid syntax" % goq(s))
    return float(s)


_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
              "m": 60.0, "h": 3600.0}


def go_parse_duration(s):
    """Go's time.ParseDuration, returning seconds."""
    orig = s
    if s in ("0", "+0", "-0"):
        return 0.0
    if not s:
        raise FlagError("time: invalid duration %s" % goq(orig))
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    total = 0.0
    if not s:
        raise FlagError("time: invalid duration %s" % goq(orig))
    while s:
        m = re.match(r"(\d*)(\.\d*)?", s)
        num = m.group(0)
        if num in ("", ".") or not re.search(r"\d", num):
            raise FlagError("time: invalid duration %s" % goq(orig))
        s = s[len(num):]
        u = re.match(r"[^\d.]*", s).group(0)
        if not u:
            raise FlagError("time: missing unit in duration %s" % goq(orig))
        if u not in _DUR_UNITS:
            raise FlagError("time: unknown unit %s in duration %s" % (goq(u), goq(orig)))
        s = s[len(u):]
        total += float(num) * _DUR_UNITS[u]
    return sign * total


def _parse_ip(s):
    try:
        return ipaddress.ip_address(s.strip())
    except ValueError:
        raise FlagError("failed to parse IP: %s" % goq(s))


def parse_cidr(s):
    """Go's net.ParseCIDR (host bits allowed); returns an ip_network or raises FlagError."""
    if "/" not in s:
        raise FlagError("invalid CIDR address: %s" % s)
    addr, _, bits = s.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
        if not re.fullmatch(r"\d{1,3}", bits) or int(bits) > ip.max_prefixlen:
            raise ValueError
        return ipaddress.ip_network("%s/%s" % (addr, bits), strict=False)
    except ValueError:
        raise FlagError("invalid CIDR address: %s" % s)


def _csv(s):
    # pflag's stringSlice reads the value as one CSV record.
    if s == "":
        return []
    import csv
    try:
        return next(csv.reader([s]))
    except Exception as e:  # noqa: BLE001 - csv errors are reported like pflag's
        raise FlagError(str(e))


def _map_string_bool(s):
    out = {}
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise FlagError("missing bool value for %s" % part)
        k, _, v = part.partition("=")
        try:
            out[k.strip()] = _go_parse_bool(v.strip())
        except FlagError as e:
            raise FlagError("invalid value of %s=%s, err: %s" % (k, v, e))
    return out


def _map_string_string(s):
    out = {}
    for part in s.split(","):
        if not part:
            continue
        if "=" not in part:
            raise FlagError("%s must be formatted as key=value" % part)
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip()
    return out


def _configuration_map(s):
    # --runtime-config: "key" alone means key=true
    out = {}
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        k, eq, v = part.partition("=")
        out[k.strip()] = v.strip() if eq else "true"
    return out


def _port_range(s):
    m = re.fullmatch(r"\s*(\d+)\s*([-+])\s*(\d+)\s*", s)
    if not m:
        raise FlagError("unable to parse port range: %s" % s)
    a = int(m.group(1))
    b = int(m.group(3)) if m.group(2) == "-" else a + int(m.group(3))
    if a > b or b > 65535:
        raise FlagError("unable to parse port range: %s" % s)
    return (a, b)


def _vmodule(s):
    for part in s.split(","):
        if not part:
            continue
        if not re.fullmatch(r"[^=]+=\d+", part):
            raise FlagError("syntax error: expect comma-separated list of filename=N")
    return s


def _version_flag(s):
    if s in ("raw",):
        return "raw"
    if s.startswith("="):
        s = s[1:]
    try:
        return "true" if _go_parse_bool(s) else "false"
    except FlagError:
        raise FlagError("unrecognized version: %s" % s)


# type name -> (converter, NoOptDefVal or None)
TYPES = {
    "string": (lambda s: s, None),
    "bool": (_go_parse_bool, "true"),
    "int": (lambda s: _go_parse_int(s, 64), None),
    "int32": (lambda s: _go_parse_int(s, 32), None),
    "int64": (lambda s: _go_parse_int(s, 64), None),
    "level": (lambda s: _go_parse_int_base10(s, 32), None),
    "float": (_go_parse_float, None),
    "float32": (_go_parse_float, None),
    "duration": (go_parse_duration, None),
    "ip": (_parse_ip, None),
    "strings": (_csv, None),
    "stringArray": (lambda s: [s], None),
    "mapStringBool": (_map_string_bool, None),
    "mapStringString": (_map_string_string, None),
    "configurationMap": (_configuration_map, None),
    "portRange": (_port_range, None),
    "vmodule": (_vmodule, None),
    "version": (_version_flag, "true"),
}


def _go_parse_int_base10(s, bits):
    if not re.fullmatch(r"[+-]?\d+", s):
        raise FlagError("strconv.ParseInt: parsing %s: invalid syntax" % goq(s))
    v = int(s)
    if v < -(1 << (bits - 1)) or v > (1 << (bits - 1)) - 1:
        raise FlagError("strconv.ParseInt: parsing %s: value out of range" % goq(s))
    return v


# Types whose repeated use appends (pflag slices), rather than replaces.
_APPENDING = {"strings", "stringArray", "mapStringBool", "mapStringString", "configurationMap"}


class Flags:
    """Parsed flags: `flags.get(name)` returns the typed value (or the default)."""

    def __init__(self, specs):
        self.specs = specs
        self.values = {}
        self.set_flags = set()

    def get(self, name):
        if name not in self.specs:
            raise KeyError("double bug: flag --%s not declared" % name)
        if name in self.values:
            return self.values[name]
        typ, default = self.specs[name]
        if default is None:
            return [] if typ in ("strings", "stringArray") else ({} if typ.startswith("map") or typ == "configurationMap" else None)
        return default

    def is_set(self, name):
        return name in self.set_flags


def common_flags():
    """Flags every component-base binary has (logs, features, metrics, version, help)."""
    return {
        "v": ("level", 0),
        "vmodule": ("vmodule", None),
        "log-flush-frequency": ("duration", 5.0),
        "logging-format": ("string", "text"),
        "log-text-info-buffer-size": ("string", None),
        "log-text-split-stream": ("bool", False),
        "log-json-info-buffer-size": ("string", None),
        "log-json-split-stream": ("bool", False),
        "feature-gates": ("mapStringBool", None),
        "version": ("version", "false"),
        "help": ("bool", False),
        "allow-metric-labels": ("mapStringString", None),
        "allow-metric-labels-manifest": ("string", None),
        "disabled-metrics": ("strings", None),
        "show-hidden-metrics-for-version": ("string", None),
    }


def serving_flags(default_port, default_bind):
    """SecureServingOptions, as in k8s.io/apiserver/pkg/server/options."""
    return {
        "bind-address": ("ip", default_bind),
        "secure-port": ("int", default_port),
        "cert-dir": ("string", None),
        "tls-cert-file": ("string", None),
        "tls-private-key-file": ("string", None),
        "tls-cipher-suites": ("strings", None),
        "tls-min-version": ("string", None),
        "tls-sni-cert-key": ("stringArray", None),
        "http2-max-streams-per-connection": ("int", 0),
        "permit-port-sharing": ("bool", False),
        "permit-address-sharing": ("bool", False),
        "disable-http2-serving": ("bool", False),
    }


def delegating_auth_flags():
    """DelegatingAuthenticationOptions + DelegatingAuthorizationOptions (controller-manager, scheduler)."""
    return {
        "authentication-kubeconfig": ("string", None),
        "authentication-skip-lookup": ("bool", False),
        "authentication-token-webhook-cache-ttl": ("duration", 10.0),
        "authentication-tolerate-lookup-failure": ("bool", False),
        "client-ca-file": ("string", None),
        "requestheader-allowed-names": ("strings", None),
        "requestheader-client-ca-file": ("string", None),
        "requestheader-extra-headers-prefix": ("strings", None),
        "requestheader-group-headers": ("strings", None),
        "requestheader-username-headers": ("strings", None),
        "requestheader-uid-headers": ("strings", None),
        "authorization-kubeconfig": ("string", None),
        "authorization-always-allow-paths": ("strings", None),
        "authorization-webhook-cache-authorized-ttl": ("duration", 10.0),
        "authorization-webhook-cache-unauthorized-ttl": ("duration", 10.0),
    }


def leader_election_flags():
    return {
        "leader-elect": ("bool", True),
        "leader-elect-lease-duration": ("duration", 15.0),
        "leader-elect-renew-deadline": ("duration", 10.0),
        "leader-elect-retry-period": ("duration", 2.0),
        "leader-elect-resource-lock": ("string", "leases"),
        "leader-elect-resource-name": ("string", None),
        "leader-elect-resource-namespace": ("string", "kube-system"),
    }


def _flag_display(name, specs):
    if name == "v":
        return "-v, --v"
    if name == "help":
        return "-h, --help"
    return "--" + name


def usage_text(prog, specs):
    lines = ["Usage:", "  %s [flags]" % prog, "", "Flags:"]
    for name in sorted(specs):
        typ = specs[name][0]
        lines.append("      %s %s" % (_flag_display(name, specs), "" if typ == "bool" else typ))
    return "\n".join(lines) + "\n\n"


def parse_flags(prog, specs, argv):
    """Parses argv like cobra + pflag; on error prints `Error: ...` and exits 1.

    Handles `--version` (prints `Kubernetes vX.Y.Z`, exit 0) and `-h/--help` (usage, exit 0).
    """
    flags = Flags(specs)
    positional = []
    usage = usage_text(prog, specs)

    def setv(name, raw):
        typ, _ = specs[name]
        conv = TYPES[typ][0]
        try:
            val = conv(raw)
        except FlagError as e:
            cobra_error("invalid argument %s for %s flag: %s" % (goq(raw), goq(_flag_display(name, specs)), e), usage)
        if typ in _APPENDING and name in flags.values:
            prev = flags.values[name]
            if isinstance(prev, list):
                val = prev + val
            else:
                merged = dict(prev)
                merged.update(val)
                val = merged
        flags.values[name] = val
        flags.set_flags.add(name)

    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            positional.extend(argv[i:])
            break
        if a.startswith("--") and len(a) > 2:
            body = a[2:]
            if body.startswith("-") or body.startswith("="):
                cobra_error("bad flag syntax: %s" % a, usage)
            name, eq, val = body.partition("=")
            if name not in specs:
                cobra_error("unknown flag: --%s" % name, usage)
            typ = specs[name][0]
            if not eq:
                noopt = TYPES[typ][1]
                if noopt is not None:
                    val = noopt
                elif i < len(argv):
                    val = argv[i]
                    i += 1
                else:
                    cobra_error("flag needs an argument: --%s" % name, usage)
            setv(name, val)
        elif a.startswith("-") and len(a) > 1 and a != "-":
            shorts = a[1:]
            c = shorts[0]
            if c == "h":
                flags.values["help"] = True
                flags.set_flags.add("help")
                continue
            if c != "v":
                cobra_error("unknown shorthand flag: %s in %s" % ("'" + c + "'", a), usage)
            rest = shorts[1:]
            if rest.startswith("="):
                rest = rest[1:]
            elif rest == "":
                if i < len(argv):
                    rest = argv[i]
                    i += 1
                else:
                    cobra_error("flag needs an argument: 'v' in -v", usage)
            setv("v", rest)
        else:
            positional.append(a)

    if flags.get("help"):
        sys.stdout.write(usage)
        sys.exit(0)
    ver = flags.get("version")
    if ver == "true":
        sys.stdout.write("Kubernetes %s\n" % version())
        sys.exit(0)
    if ver == "raw":
        sys.stdout.write(json.dumps(version_info(), indent=2) + "\n")
        sys.exit(0)
    if positional:
        cobra_error("%s does not take any arguments, got %s" % (
            goq(prog), "[" + " ".join(goq(p) for p in positional) + "]"), usage)
    return flags


def check_validation(errors):
    """Aggregated validation errors, reported like the real binaries (`Error: [a, b]`)."""
    if not errors:
        return
    if len(errors) == 1:
        cobra_error(errors[0])
    cobra_error("[" + ", ".join(errors) + "]")


# ----------------------------------------------------------------------------------------------
# Files, certificates and keys


def read_file(path, what):
    """Reads a file the real binary would open; failure is fatal with Go's wording."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        fail("%s: open %s: no such file or directory" % (what, path))
    except PermissionError:
        fail("%s: open %s: permission denied" % (what, path))
    except IsADirectoryError:
        fail("%s: read %s: is a directory" % (what, path))
    except OSError as e:
        fail("%s: open %s: %s" % (what, path, e.strerror))


def _pem_blocks(data, kinds):
    text = data.decode("ascii", "replace")
    out = []
    for m in re.finditer(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", text, re.S):
        if m.group(1) in kinds:
            out.append(m.group(0))
    return out


def openssl(args, input_bytes=None):
    """Runs the openssl CLI; returns (returncode, stdout bytes, stderr text)."""
    try:
        p = subprocess.run(["openssl"] + args, input=input_bytes, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except FileNotFoundError:
        fail("the openssl CLI is required by this test double and was not found on PATH")
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def check_ca_file(path, flag):
    """The file must exist, be readable and hold at least one parseable certificate."""
    data = read_file(path, "%s %s" % (flag, path))
    blocks = _pem_blocks(data, ("CERTIFICATE",))
    if not blocks:
        fail("error reading %s: data does not contain any valid RSA or ECDSA certificates" % path)
    for b in blocks:
        rc, _, err = openssl(["x509", "-noout"], b.encode())
        if rc != 0:
            fail("error reading %s: x509: malformed certificate (%s)" % (path, err.strip().splitlines()[0] if err.strip() else "unparseable"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cafile=path)
    except ssl.SSLError as e:
        fail("error reading %s: %s" % (path, e))
    return blocks


def check_key_pair(cert_path, key_path, cert_flag, key_flag):
    """Both files readable, the certificate parses and the key matches it."""
    if bool(cert_path) != bool(key_path):
        fail("%s and %s must be specified together (got %s=%s, %s=%s)" % (
            cert_flag, key_flag, cert_flag, cert_path or '""', key_flag, key_path or '""'))
    if not cert_path:
        return
    cdata = read_file(cert_path, "%s" % cert_flag)
    read_file(key_path, "%s" % key_flag)
    if not _pem_blocks(cdata, ("CERTIFICATE",)):
        fail("failed to load %s %s: tls: failed to find any PEM data in certificate input" % (cert_flag, cert_path))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
            fail("tls: private key does not match public key: %s=%s does not match %s=%s" % (
                key_flag, key_path, cert_flag, cert_path))
        fail("failed to load key pair %s=%s %s=%s: %s" % (cert_flag, cert_path, key_flag, key_path, e))


def _public_der(data, is_private, what):
    args = ["pkey", "-outform", "DER", "-pubout"]
    if not is_private:
        args.insert(1, "-pubin")
    rc, out, err = openssl(args, data)
    if rc != 0:
        fail("%s: failed to parse key: %s" % (what, (err.strip().splitlines() or ["?"])[0]))
    return out


def public_keys_of_file(path, flag):
    """DER public keys of every PEM key (private or public) or certificate in a file."""
    data = read_file(path, "%s %s" % (flag, path))
    keys = []
    for b in _pem_blocks(data, ("PUBLIC KEY", "RSA PUBLIC KEY")):
        if b.startswith("-----BEGIN RSA PUBLIC KEY"):
            rc, out, err = openssl(["rsa", "-RSAPublicKey_in", "-pubout", "-outform", "DER"], b.encode())
            if rc != 0:
                fail("%s %s: failed to parse RSA public key" % (flag, path))
            keys.append(out)
        else:
            keys.append(_public_der(b.encode(), False, "%s %s" % (flag, path)))
    for b in _pem_blocks(data, ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")):
        keys.append(_public_der(b.encode(), True, "%s %s" % (flag, path)))
    for b in _pem_blocks(data, ("CERTIFICATE",)):
        rc, out, err = openssl(["x509", "-noout", "-pubkey"], b.encode())
        if rc == 0:
            keys.append(_public_der(out, False, "%s %s" % (flag, path)))
    if not keys:
        fail("failed to parse key file %s %s: data does not contain any valid RSA or ECDSA keys" % (flag, path))
    return keys


def private_key_public_der(path, flag):
    data = read_file(path, "%s %s" % (flag, path))
    blocks = _pem_blocks(data, ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"))
    if not blocks:
        fail("failed to parse %s %s: data does not contain a valid RSA or ECDSA private key" % (flag, path))
    return _public_der(blocks[0].encode(), True, "%s %s" % (flag, path))


def check_dir_creatable(path, flag):
    d = os.path.dirname(os.path.abspath(path)) or "/"
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
    except OSError as e:
        fail("%s=%s: mkdir %s: %s" % (flag, path, d, e.strerror))
    if not os.access(d, os.W_OK):
        fail("%s=%s: open %s: permission denied" % (flag, path, path))


def self_signed(cn_prefix, hosts):
    """A self-signed serving cert made with the openssl CLI in a private temp dir, loaded into an
    SSL context; the files are deleted right after (the real binaries keep them in memory)."""
    d = tempfile.mkdtemp(prefix="plinth-double-")
    try:
        os.chmod(d, 0o700)
        cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        sans = []
        for h in hosts:
            try:
                ipaddress.ip_address(h)
                sans.append("IP:" + h)
            except ValueError:
                sans.append("DNS:" + h)
        rc, _, err = openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                              "-nodes", "-keyout", key, "-out", cert, "-days", "365",
                              "-subj", "/CN=%s@%d" % (cn_prefix, int(time.time())),
                              "-addext", "subjectAltName=" + ",".join(sans)])
        if rc != 0:
            fail("unable to generate self signed cert: %s" % err.strip())
        return cert, key, d
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise


def peer_identity(peercert):
    """(CN, [O...]) of a verified peer certificate dict from ssl.getpeercert()."""
    if not peercert:
        return None, []
    cn, orgs = None, []
    for rdn in peercert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    return cn, orgs


# ----------------------------------------------------------------------------------------------
# Minimal YAML (the subset kubeconfigs and small config files use)


class YamlError(Exception):
    pass


def _strip_comment(line):
    out, q = [], None
    for i, ch in enumerate(line):
        if q:
            out.append(ch)
            if ch == q:
                q = None
            continue
        if ch in "\"'" and (i == 0 or line[i - 1] in " :-[{,"):
            q = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _scalar(s, lineno):
    s = s.strip()
    if s == "" or s in ("~", "null", "Null", "NULL"):
        return None
    if s[0] == '"':
        try:
            return json.loads(s)
        except ValueError:
            raise YamlError("line %d: bad double-quoted scalar %s" % (lineno, s))
    if s[0] == "'":
        if not s.endswith("'") or len(s) < 2:
            raise YamlError("line %d: bad single-quoted scalar %s" % (lineno, s))
        return s[1:-1].replace("''", "'")
    if s[0] in "{[":
        try:
            return json.loads(s)
        except ValueError:
            inner = s[1:-1].strip()
            if s[0] == "[":
                return [_scalar(x, lineno) for x in inner.split(",")] if inner else []
            out = {}
            for part in inner.split(","):
                if part.strip():
                    k, _, v = part.partition(":")
                    out[_scalar(k, lineno)] = _scalar(v, lineno)
            return out
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?\d+", s):
        return int(s)
    return s


def _split_key(text, lineno):
    """'key: value' -> (key, value-text) or None when not a mapping entry."""
    if text.startswith('"') or text.startswith("'"):
        q = text[0]
        end = text.find(q, 1)
        while q == "'" and end != -1 and end + 1 < len(text) and text[end + 1] == "'":
            end = text.find(q, end + 2)
        if end == -1:
            raise YamlError("line %d: unterminated quoted key" % lineno)
        rest = text[end + 1:]
        if rest.startswith(":") and (len(rest) == 1 or rest[1] == " "):
            return _scalar(text[:end + 1], lineno), rest[1:]
        return None
    m = re.match(r"([^\s:#][^:#]*?|[^\s:#]*?):(\s|$)", text)
    if not m:
        return None
    return m.group(1).strip(), text[m.end(1) + 1:]


def yaml_load(text):
    """Loads the first YAML document (block maps / sequences, plain and quoted scalars, `|`)."""
    t = text.lstrip()
    if t.startswith("{"):
        try:
            return json.loads(t)
        except ValueError as e:
            raise YamlError(str(e))
    raw = []
    started = False
    for n, line in enumerate(text.splitlines(), 1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise YamlError("line %d: found a tab character where an indentation space is expected" % n)
        if line.strip() == "---":
            if started:
                break
            continue
        if line.strip() == "...":
            break
        raw.append((n, line))
        if _strip_comment(line).strip():
            started = True
    lines = []  # (lineno, indent, text, rawline)
    for n, line in raw:
        stripped = _strip_comment(line)
        if stripped.strip() == "":
            lines.append((n, None, "", line))
            continue
        ind = len(stripped) - len(stripped.lstrip(" "))
        lines.append((n, ind, stripped.strip(), line))
    pos = [0]

    def skip_blank():
        while pos[0] < len(lines) and lines[pos[0]][1] is None:
            pos[0] += 1

    def block_scalar(indicator, parent_indent):
        keep = indicator.startswith("|")
        out = []
        ind = None
        while pos[0] < len(lines):
            n, i, t, rawl = lines[pos[0]]
            if i is None:
                out.append("")
                pos[0] += 1
                continue
            if i <= parent_indent:
                break
            if ind is None:
                ind = i
            out.append(rawl[ind:])
            pos[0] += 1
        while out and out[-1] == "":
            out.pop()
        body = "\n".join(out) if keep else " ".join(out)
        return body if indicator.endswith("-") else body + "\n"

    def parse_value(rest, indent, n):
        rest = rest.strip()
        if rest in ("|", "|-", ">", ">-", "|+", ">+"):
            pos[0] += 1
            return block_scalar(rest, indent)
        if rest == "":
            pos[0] += 1
            skip_blank()
            if pos[0] < len(lines):
                _, i2, t2, _ = lines[pos[0]]
                if i2 > indent or (i2 == indent and (t2 == "-" or t2.startswith("- "))):
                    return parse_block(i2)
            return None
        pos[0] += 1
        return _scalar(rest, n)

    def parse_block(indent):
        skip_blank()
        n, i, t, _ = lines[pos[0]]
        if t == "-" or t.startswith("- "):
            seq = []
            while pos[0] < len(lines):
                skip_blank()
                if pos[0] >= len(lines):
                    break
                n, i, t, rawl = lines[pos[0]]
                if i != indent or not (t == "-" or t.startswith("- ")):
                    if i > indent:
                        raise YamlError("line %d: bad indentation of a sequence entry" % n)
                    break
                content = t[1:].lstrip(" ")
                if content == "":
                    seq.append(parse_value("", indent, n))
                    continue
                col = indent + (len(t) - len(content))
                kv = _split_key(content, n)
                if kv is not None and not content.startswith(("{", "[")):
                    # an inline mapping: rewrite the line so the mapping starts at `col`
                    lines[pos[0]] = (n, col, content, rawl)
                    seq.append(parse_map(col))
                else:
                    seq.append(parse_value(content, indent, n))
            return seq
        return parse_map(indent)

    def parse_map(indent):
        m = {}
        while pos[0] < len(lines):
            skip_blank()
            if pos[0] >= len(lines):
                break
            n, i, t, _ = lines[pos[0]]
            if i < indent:
                break
            if i > indent:
                raise YamlError("line %d: mapping values are not allowed in this context" % n)
            if t == "-" or t.startswith("- "):
                break
            kv = _split_key(t, n)
            if kv is None:
                raise YamlError("line %d: could not find expected ':' in %s" % (n, goq(t)))
            k, rest = kv
            if k in m:
                raise YamlError("line %d: mapping key %s already defined" % (n, goq(k)))
            m[k] = parse_value(rest, indent, n)
        return m

    skip_blank()
    if pos[0] >= len(lines):
        return None
    first = lines[pos[0]]
    if first[1] == 0 and _split_key(first[2], first[0]) is None and not first[2].startswith("-"):
        v = _scalar(first[2], first[0])
        pos[0] += 1
        skip_blank()
        if pos[0] < len(lines):
            raise YamlError("line %d: unexpected content after a scalar document" % lines[pos[0]][0])
        return v
    result = parse_block(first[1])
    skip_blank()
    if pos[0] < len(lines):
        raise YamlError("line %d: unexpected content %s" % (lines[pos[0]][0], goq(lines[pos[0]][2])))
    return result


# ----------------------------------------------------------------------------------------------
# kubeconfig


class Kubeconfig:
    """A loaded kubeconfig's current context: server URL, CA PEM, client cert/key PEM."""

    def __init__(self, path, server, ca_pem, cert_pem, key_pem, user_name, cluster_name):
        self.path = path
        self.server = server
        self.ca_pem = ca_pem
        self.cert_pem = cert_pem
        self.key_pem = key_pem
        self.user_name = user_name
        self.cluster_name = cluster_name
        self._dir = None

    def materialize(self):
        """Writes the PEMs to a private temp dir (removed by cleanup()); returns (ca, cert, key)."""
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="plinth-double-kc-")
            os.chmod(self._dir, 0o700)
            for name, data in (("ca.crt", self.ca_pem), ("client.crt", self.cert_pem), ("client.key", self.key_pem)):
                if data is not None:
                    with open(os.path.join(self._dir, name), "wb") as f:
                        f.write(data)
        p = lambda n, d: os.path.join(self._dir, n) if d is not None else None  # noqa: E731
        return p("ca.crt", self.ca_pem), p("client.crt", self.cert_pem), p("client.key", self.key_pem)

    def cleanup(self):
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _named(items, kind, path):
    out = {}
    if items is None:
        return out
    if not isinstance(items, list):
        fail("error loading config file %s: %s must be a list" % (goq(path), kind))
    for it in items:
        if not isinstance(it, dict) or "name" not in it:
            fail("error loading config file %s: every entry of %s needs a name" % (goq(path), kind))
        out[it["name"]] = it
    return out


def _data_or_file(obj, data_key, file_key, path, what):
    if obj.get(data_key):
        try:
            return base64.b64decode(str(obj[data_key]), validate=True)
        except Exception:  # noqa: BLE001
            fail("error loading config file %s: %s is not valid base64" % (goq(path), data_key))
    if obj.get(file_key):
        f = obj[file_key]
        if not os.path.isabs(f):
            f = os.path.join(os.path.dirname(path), f)
        return read_file(f, "%s %s (from %s)" % (what, f, path))
    return None


def load_kubeconfig(path, flag):
    """Loads and validates a kubeconfig like client-go: current context, cluster, user, PEMs."""
    text = read_file(path, "%s %s" % (flag, path)).decode("utf-8", "replace")
    try:
        doc = yaml_load(text)
    except YamlError as e:
        fail("error loading config file %s: yaml: %s" % (goq(path), e))
    if not isinstance(doc, dict):
        fail("error loading config file %s: not a kubeconfig mapping" % goq(path))
    if doc.get("kind") not in (None, "Config") or doc.get("apiVersion") not in (None, "v1"):
        fail("error loading config file %s: no kind %s is registered for version %s" % (
            goq(path), goq(doc.get("kind")), goq(doc.get("apiVersion"))))
    clusters = _named(doc.get("clusters"), "clusters", path)
    users = _named(doc.get("users"), "users", path)
    contexts = _named(doc.get("contexts"), "contexts", path)
    cur = doc.get("current-context")
    if not cur:
        fail("invalid configuration: no configuration has been provided (%s has no current-context)" % path)
    if cur not in contexts:
        fail("invalid configuration: [context was not found for specified context: %s] (%s)" % (cur, path))
    ctx = contexts[cur].get("context") or {}
    cname, uname = ctx.get("cluster"), ctx.get("user")
    if cname not in clusters:
        fail("invalid configuration: [cluster %s was not found for context %s] (%s)" % (goq(cname), goq(cur), path))
    cluster = clusters[cname].get("cluster") or {}
    server = cluster.get("server")
    if not server:
        fail("invalid configuration: no server found for cluster %s (%s)" % (goq(cname), path))
    u = urllib.parse.urlparse(server)
    if u.scheme not in ("https", "http") or not u.hostname:
        fail("invalid configuration: server %s of cluster %s is not a URL (%s)" % (goq(server), goq(cname), path))
    ca = _data_or_file(cluster, "certificate-authority-data", "certificate-authority", path, "certificate-authority")
    if u.scheme == "https" and ca is None and not cluster.get("insecure-skip-tls-verify"):
        warn("kubeconfig %s: no certificate-authority for cluster %s: the system roots would be used" % (path, cname))
    if ca is not None and not _pem_blocks(ca, ("CERTIFICATE",)):
        fail("invalid configuration: unable to read certificate-authority data for cluster %s in %s" % (goq(cname), path))
    user = {}
    if uname is not None:
        if uname not in users:
            fail("invalid configuration: [user %s was not found for context %s] (%s)" % (goq(uname), goq(cur), path))
        user = users[uname].get("user") or {}
    cert = _data_or_file(user, "client-certificate-data", "client-certificate", path, "client-certificate")
    key = _data_or_file(user, "client-key-data", "client-key", path, "client-key")
    if (cert is None) != (key is None):
        fail("invalid configuration: client-cert-data and client-key-data must be specified together for user %s in %s" % (goq(uname), path))
    kc = Kubeconfig(path, server, ca, cert, key, uname, cname)
    if cert is not None:
        ca_p, cert_p, key_p = kc.materialize()
        if not _pem_blocks(cert, ("CERTIFICATE",)):
            kc.cleanup()
            fail("unable to load client certificate of user %s in %s: tls: failed to find any PEM data in certificate input" % (goq(uname), path))
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            c.load_cert_chain(cert_p, key_p)
        except ssl.SSLError as e:
            kc.cleanup()
            if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
                fail("tls: private key does not match public key (user %s in %s: the client key does not match the client certificate)" % (goq(uname), path))
            fail("unable to load client key pair of user %s in %s: %s" % (goq(uname), path, e))
    return kc


# ----------------------------------------------------------------------------------------------
# HTTPS client with mTLS


def client_context(ca_file, cert_file, key_file):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file) if ca_file else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def https_request(url, ctx, method="GET", path=None, body=None, headers=None, timeout=5.0):
    """One request to url (+path); returns (status, body bytes). Raises OSError / ssl errors."""
    u = urllib.parse.urlparse(url)
    host = u.hostname
    port = u.port or (443 if u.scheme == "https" else 80)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"User-Agent": "plinth-test-double"}
        if headers:
            hdrs.update(headers)
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        full = (u.path.rstrip("/") + path) if path else (u.path or "/")
        conn.request(method, full, body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def describe_error(e):
    if isinstance(e, ssl.SSLCertVerificationError):
        # Go's wording first (what the real binaries print), OpenSSL's detail after it.
        vm = e.verify_message or str(e)
        if e.verify_code in (2, 18, 19, 20, 21):  # issuer unknown / self-signed in chain
            go = "x509: certificate signed by unknown authority"
        elif e.verify_code == 62 or "hostname" in vm.lower() or "IP address mismatch" in vm:
            go = "x509: certificate is not valid for the requested host"
        elif e.verify_code == 10:
            go = "x509: certificate has expired or is not yet valid"
        else:
            go = "x509: certificate verification failed"
        return "tls: failed to verify certificate: %s (%s)" % (go, vm)
    if isinstance(e, ssl.SSLError):
        return "tls: %s" % (e.reason or e)
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(e, socket.timeout):
        return "i/o timeout"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or e.__class__.__name__


# ----------------------------------------------------------------------------------------------
# HTTPS server


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded HTTP server; the TLS handshake happens in each connection's own thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, ctx):
        host = addr[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.ssl_ctx = ctx
        super().__init__(addr, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            try:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            ctx = self.ssl_ctx.current() if hasattr(self.ssl_ctx, "current") else self.ssl_ctx
            conn = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            info("http: TLS handshake error from %s:%d: %s" % (client_address[0], client_address[1], describe_error(e)))
            return
        conn.settimeout(60)
        self.RequestHandlerClass(conn, client_address, self)

    def handle_error(self, request, client_address):
        pass


def server_context(cert_file, key_file, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    try:
        ctx.set_alpn_protocols(["http/1.1"])
    except NotImplementedError:
        pass
    return ctx


class DynamicServerContext:
    """Like k8s.io/apiserver's dynamic certificate providers (DynamicServingContentFromFiles,
    DynamicCAContentFromFile): the serving cert/key and the client CA are files the real
    components watch and reload without a restart. Here every new connection stats them; when
    one changed (inode, size, mtime) and the new set loads, it is used from then on and a klog
    line says so; a set that does not load is logged and the old one kept."""

    def __init__(self, cert_file, key_file, client_ca=None):
        self.files = [p for p in (cert_file, key_file, client_ca) if p]
        self.args = (cert_file, key_file, client_ca)
        self.lock = threading.Lock()
        self.stamp = self._stamp()
        self.ctx = server_context(*self.args)

    def _stamp(self):
        out = []
        for p in self.files:
            try:
                st = os.stat(p)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
        return out

    def current(self):
        with self.lock:
            stamp = self._stamp()
            if stamp != self.stamp:
                self.stamp = stamp
                try:
                    self.ctx = server_context(*self.args)
                    info('"Loaded a new cert/key pair" name="serving-cert::%s::%s"' % self.args[:2])
                except (ssl.SSLError, OSError) as e:
                    error('"Failed to reload the serving certificate, keeping the old one" err="%s"' % describe_error(e))
            return self.ctx


def listen(bind, port, handler, ctx):
    """Binds the server; a taken port fails like the real binaries."""
    host = str(bind)
    try:
        return TLSServer((host, port), handler, ctx)
    except OSError as e:
        hp = ("[%s]:%d" % (host, port)) if ":" in host else ("%s:%d" % (host, port))
        fail("failed to create listener: failed to listen on %s: listen tcp %s: bind: %s" % (
            hp, hp, (e.strerror or str(e)).lower()))


class BaseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "plinth-test-double"

    def log_message(self, fmt, *args):  # silence the stdlib access log
        pass

    def identity(self):
        try:
            pc = self.connection.getpeercert()
        except (ValueError, AttributeError):
            pc = None
        return peer_identity(pc)

    def send_body(self, code, body, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = (json.dumps(body) + "\n").encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return code

    def read_body(self, limit=3 * 1024 * 1024):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            # kubectl streams `-f` bodies (create --raw) chunked, without a Content-Length.
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > limit:
                    return None
        n = int(self.headers.get("Content-Length") or 0)
        if n > limit:
            return None
        return self.rfile.read(n) if n else b""


def install_sigterm(name):
    """SIGTERM / SIGINT → log and exit 0 promptly, like the real binaries' graceful shutdown."""

    def handler(signum, _frame):
        klog("I", "Received signal %d, shutting down %s" % (signum, name))
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def serve_forever(server):
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    while t.is_alive():
        t.join(1.0)


def health_response(handler, checks, path, verbose):
    """Renders /healthz-style output: `ok`, or the failing checks with 500."""
    failed = [(n, why) for n, ok, why in checks if not ok]
    if not failed and not verbose:
        return handler.send_body(200, "ok", "text/plain; charset=utf-8")
    lines = []
    for n, ok, why in checks:
        lines.append("[+]%s ok" % n if ok else "[-]%s failed: %s" % (n, why))
    if failed:
        lines.append("%s check failed" % path.strip("/"))
        return handler.send_body(500, "\n".join(lines) + "\n", "text/plain; charset=utf-8")
    lines.append("%s check passed" % path.strip("/"))
    return handler.send_body(200, "\n".join(lines) + "\n", "text/plain; charset=utf-8")


# ----------------------------------------------------------------------------------------------
# controller-manager / scheduler: a client of the apiserver that serves its own health


def check_secure_port(f):
    port = f.get("secure-port")
    if port < 0 or port > 65535:
        return ["--secure-port %d must be between 0 and 65535, inclusive. 0 for turning off secure port" % port]
    return []


class Upstream:
    """State of the connection to the apiserver, shown by /healthz."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connected = False
        self.lease_ok = None  # None = not checked, True, or error text
        self.error = "waiting for the apiserver"

    def checks(self):
        with self.lock:
            out = [("apiserver-connection", self.connected, self.error if not self.connected else "")]
            if self.lease_ok is not None:
                out.append(("leaderElection", self.lease_ok is True, "" if self.lease_ok is True else self.lease_ok))
            return out


def _watch_apiserver(prog, kc, ctx, lease_name, up):
    deadline = time.monotonic() + connect_timeout()
    attempt = 0
    last = None
    while True:
        attempt += 1
        try:
            st, body = https_request(kc.server, ctx, path="/healthz", timeout=5.0)
            if st == 200:
                break
            last = "apiserver %s/healthz returned HTTP %d: %s" % (kc.server, st, body[:200].decode("utf-8", "replace").strip())
        except Exception as e:  # noqa: BLE001
            last = "Get %s: %s" % (goq(kc.server.rstrip("/") + "/healthz"), describe_error(e))
        with up.lock:
            up.error = last
        if time.monotonic() >= deadline:
            klog("E", '"command failed" err=%s' % goq(
                "failed to wait for apiserver being healthy (kubeconfig %s, user %s): %s" % (kc.path, kc.user_name, last)))
            sys.stderr.flush()
            os._exit(1)
        if attempt == 1 or attempt % 5 == 0:
            klog("W", "waiting for the apiserver at %s: %s" % (kc.server, last))
        time.sleep(0.5)
    klog("I", "apiserver %s is healthy (server cert verified with the kubeconfig CA, client cert of user %s)" % (kc.server, kc.user_name))
    with up.lock:
        up.connected = True
        up.error = ""
    if lease_name is None:
        return
    # leader election needs get/update on its Lease: checks the kubeconfig's identity is authorized
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/%s" % lease_name
    while True:
        try:
            st, body = https_request(kc.server, ctx, path=lease_path, timeout=5.0)
            if st in (200, 404):
                with up.lock:
                    up.lease_ok = True
                klog("I", "attempting to acquire leader lease kube-system/%s... (authorized)" % lease_name)
                return
            msg = body[:300].decode("utf-8", "replace")
            try:
                msg = json.loads(body).get("message", msg)
            except ValueError:
                pass
            err = "error retrieving resource lock kube-system/%s: %s" % (lease_name, msg)
        except Exception as e:  # noqa: BLE001
            err = "error retrieving resource lock kube-system/%s: %s" % (lease_name, describe_error(e))
        with up.lock:
            up.lease_ok = err
        klog("E", err)
        time.sleep(2.0)


def run_client_component(prog, f, kubeconfig_flag, kubeconfig_path, lease_name, health_paths, default_lease_check=True):
    """Loads and checks the kubeconfigs, serves health over TLS, verifies the apiserver link."""
    if not kubeconfig_path:
        fail("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")
    kc = load_kubeconfig(kubeconfig_path, kubeconfig_flag)
    for flag in ("authentication-kubeconfig", "authorization-kubeconfig"):
        p = f.get(flag)
        if p:
            load_kubeconfig(p, "--" + flag).cleanup()
        else:
            warn("No --%s provided: the secure port is served without delegated %s" % (
                flag, "authentication" if flag.startswith("authentication") else "authorization"))
    for flag in ("client-ca-file", "requestheader-client-ca-file"):
        if f.get(flag):
            check_ca_file(f.get(flag), "--" + flag)
    check_key_pair(f.get("tls-cert-file"), f.get("tls-private-key-file"), "--tls-cert-file", "--tls-private-key-file")

    ca_p, cert_p, key_p = kc.materialize()
    try:
        cctx = client_context(ca_p, cert_p, key_p)
        if kc.ca_pem is None and urllib.parse.urlparse(kc.server).scheme == "https":
            cctx = client_context(None, cert_p, key_p)
    finally:
        kc.cleanup()

    port = f.get("secure-port")
    install_sigterm(prog)
    up = Upstream()
    server = None
    if port != 0:
        bind = f.get("bind-address")
        tmp = None
        if f.get("tls-cert-file"):
            cert, key = f.get("tls-cert-file"), f.get("tls-private-key-file")
        else:
            hosts = ["localhost", "127.0.0.1"]
            if str(bind) not in ("0.0.0.0", "::"):
                hosts.append(str(bind))
            cert, key, tmp = self_signed(prog, hosts)
        try:
            if tmp:
                sctx = server_context(cert, key, f.get("client-ca-file"))
            else:
                sctx = DynamicServerContext(cert, key, f.get("client-ca-file"))
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)

        class Handler(BaseHandler):
            def do_GET(self):
                path = urllib.parse.urlparse(self.path).path
                cn, orgs = self.identity()
                top = path.split("/")[1] if path.startswith("/") else path
                if "/" + top in health_paths:
                    code = health_response(self, up.checks(), top, "verbose" in self.path)
                elif cn is None:
                    code = self.send_body(403, 'forbidden: User "system:anonymous" cannot get path "%s"\n' % path, "text/plain")
                else:
                    code = self.send_body(404, "404 page not found\n", "text/plain")
                info('"HTTP" verb="GET" URI=%s resp=%d user=%s' % (goq(self.path), code, goq(cn or "system:anonymous")))

            do_HEAD = do_GET

        server = listen(bind, port, Handler, sctx)
        info("Serving securely on %s:%d" % (bind, port))
    leader = lease_name if (f.get("leader-elect") and default_lease_check) else None
    t = threading.Thread(target=_watch_apiserver, args=(prog, kc, cctx, leader, up), daemon=True)
    t.start()
    if server is not None:
        serve_forever(server)
    else:
        while True:
            time.sleep(3600)
