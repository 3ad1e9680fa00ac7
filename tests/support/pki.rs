//! A small test PKI made with the openssl CLI (independent of plinth's own `pki` module, so
//! tests never check plinth's certificates with plinth's code), plus kubeconfig and
//! service-account key helpers.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;

use super::tools::openssl;

static SERIAL: AtomicU64 = AtomicU64::new(1);

/// What a leaf certificate may be used for (extendedKeyUsage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// serverAuth
    Server,
    /// clientAuth
    Client,
    /// serverAuth and clientAuth
    Both,
}

/// A certificate and its private key on disk (PEM; EC P-256 keys in PKCS#8).
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The certificate file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
}

/// A self-signed test CA.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate file.
    pub cert: PathBuf,
    /// The CA private key file.
    pub key: PathBuf,
    cfg: PathBuf,
}

const CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
";

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl TestCa {
    /// Creates `<dir>/<name>.crt` and `.key`: a CA with common name `cn`, valid for 2 days.
    pub fn new(dir: &Path, name: &str, cn: &str) -> io::Result<TestCa> {
        std::fs::create_dir_all(dir)?;
        let cfg = dir.join(format!(".{name}-openssl.cnf"));
        std::fs::write(&cfg, CONFIG)?;
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        openssl(&[
            "req",
            "-x509",
            "-config",
            &s(&cfg),
            "-extensions",
            "ca_ext",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &s(&key),
            "-out",
            &s(&cert),
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
        ])?;
        Ok(TestCa { cert, key, cfg })
    }

    /// Issues `<dir>/<name>.crt|.key` for `cn` with organizations `orgs` (the Kubernetes
    /// groups), subjectAltNames `sans` (`IP:…`, `DNS:…`) and `usage`.
    pub fn issue(
        &self,
        dir: &Path,
        name: &str,
        cn: &str,
        orgs: &[&str],
        sans: &[String],
        usage: Usage,
    ) -> io::Result<KeyPair> {
        std::fs::create_dir_all(dir)?;
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let csr = dir.join(format!(".{name}.csr"));
        let ext = dir.join(format!(".{name}.ext"));
        let eku = match usage {
            Usage::Server => "serverAuth",
            Usage::Client => "clientAuth",
            Usage::Both => "serverAuth,clientAuth",
        };
        let mut ext_text = format!(
            "[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = {eku}\nauthorityKeyIdentifier = keyid\n"
        );
        if !sans.is_empty() {
            ext_text.push_str(&format!("subjectAltName = {}\n", sans.join(",")));
        }
        std::fs::write(&ext, ext_text)?;
        let mut subj = String::new();
        for o in orgs {
            subj.push_str(&format!("/O={o}"));
        }
        subj.push_str(&format!("/CN={cn}"));
        openssl(&[
            "req",
            "-new",
            "-config",
            &s(&self.cfg),
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &s(&key),
            "-out",
            &s(&csr),
            "-subj",
            &subj,
        ])?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let serial = format!(
            "0x{:x}{:04x}",
            nanos,
            SERIAL.fetch_add(1, Ordering::SeqCst) & 0xffff
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &s(&csr),
            "-CA",
            &s(&self.cert),
            "-CAkey",
            &s(&self.key),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            &s(&ext),
            "-extensions",
            "leaf",
            "-out",
            &s(&cert),
        ])?;
        let _ = std::fs::remove_file(&csr);
        let _ = std::fs::remove_file(&ext);
        Ok(KeyPair { cert, key })
    }
}

/// An RSA 2048 service-account key pair: (`<dir>/<name>.key`, `<dir>/<name>.pub`).
pub fn rsa_key_pair(dir: &Path, name: &str) -> io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &s(&key),
    ])?;
    openssl(&["pkey", "-in", &s(&key), "-pubout", "-out", &s(&public)])?;
    Ok((key, public))
}

/// Writes a kubeconfig (kubeadm's layout, certs embedded as base64) for `user` at `server`.
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_cert: &Path,
    client: &KeyPair,
    user: &str,
) -> io::Result<()> {
    let b64 = |p: &Path| -> io::Result<String> {
        Ok(base64::engine::general_purpose::STANDARD.encode(std::fs::read(p)?))
    };
    let text = format!(
        "apiVersion: v1\n\
         clusters:\n\
         - cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: kubernetes\n\
         contexts:\n\
         - context:\n    cluster: kubernetes\n    user: {user}\n  name: {user}@kubernetes\n\
         current-context: {user}@kubernetes\n\
         kind: Config\n\
         preferences: {{}}\n\
         users:\n\
         - name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca_cert)?,
        cert = b64(&client.cert)?,
        key = b64(&client.key)?,
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certs_chain_to_the_ca_with_subject_and_sans() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "ca", "test-ca").unwrap();
        let kp = ca
            .issue(
                dir.path(),
                "admin",
                "kubernetes-admin",
                &["system:masters"],
                &["IP:192.0.2.9".into(), "DNS:localhost".into()],
                Usage::Both,
            )
            .unwrap();
        let v = openssl(&["verify", "-CAfile", &s(&ca.cert), &s(&kp.cert)]).unwrap();
        assert!(String::from_utf8_lossy(&v).contains("OK"));
        let text = String::from_utf8_lossy(
            &openssl(&["x509", "-in", &s(&kp.cert), "-noout", "-text"]).unwrap(),
        )
        .into_owned();
        assert!(
            text.contains("O = system:masters, CN = kubernetes-admin"),
            "{text}"
        );
        assert!(
            text.contains("IP Address:192.0.2.9") && text.contains("DNS:localhost"),
            "{text}"
        );
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
        let other = TestCa::new(dir.path(), "other", "other-ca").unwrap();
        assert!(openssl(&["verify", "-CAfile", &s(&other.cert), &s(&kp.cert)]).is_err());
    }

    #[test]
    fn kubeconfig_embeds_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "ca", "ca").unwrap();
        let kp = ca
            .issue(dir.path(), "u", "u", &[], &[], Usage::Client)
            .unwrap();
        let path = dir.path().join("u.conf");
        write_kubeconfig(&path, "https://192.0.2.1:6443", &ca.cert, &kp, "u").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let ca_b64 =
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(&ca.cert).unwrap());
        assert!(text.contains(&format!("certificate-authority-data: {ca_b64}")));
        assert!(text.contains("current-context: u@kubernetes"));
    }
}
