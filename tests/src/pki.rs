//! Certificates for TLS tests, made with the `openssl` command in a scratch
//! directory: CAs, intermediates and leaves with the SANs, keyUsage,
//! extendedKeyUsage and pathLenConstraint a test asks for, chains and
//! bundles, and the mosquitto listener lines that serve them.
//!
//! ```no_run
//! use umqtt_tests::pki::{Pki, Spec};
//!
//! let pki = Pki::new("my-test");
//! pki.ca("ca", Spec::ca("ca"))
//!     .issue("inter", "ca", Spec::ca("inter").path_len(0))
//!     .issue("server", "inter", Spec::leaf("localhost").eku("serverAuth"))
//!     .chain("server-chain", &["server", "inter"]);
//! let ca_der = pki.der("ca");
//! # let _ = ca_der;
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use umqtt_transports::tls::pem;

use crate::{find_program, mosquitto_required, scratch_dir};

/// Runs `openssl` in `dir`, failing the test on error.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `openssl` is installed; without it a test prints `SKIPPED` and
/// returns, unless `UMQTT_REQUIRE_MOSQUITTO=1`, where it fails.
pub fn openssl_available(test: &str) -> bool {
    if find_program("openssl", &["/usr/bin/openssl"]).is_none() {
        assert!(
            !mosquitto_required(),
            "UMQTT_REQUIRE_MOSQUITTO=1 but openssl is missing"
        );
        eprintln!("SKIPPED {test}: openssl is not installed");
        return false;
    }
    true
}

/// The key type of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 (prime256v1), signed with SHA-256.
    P256,
    /// RSA 2048.
    Rsa,
}

/// What a certificate says: its CN, SANs, basicConstraints, key usages and
/// lifetime. Built with [`Spec::ca`] or [`Spec::leaf`], then adjusted.
#[derive(Debug, Clone)]
pub struct Spec {
    kind: KeyKind,
    cn: String,
    sans: Vec<String>,
    /// `None`: `CA:FALSE`; `Some(None)`: `CA:TRUE`; `Some(Some(n))`: with
    /// `pathlen:n`.
    ca: Option<Option<u32>>,
    key_usage: Option<String>,
    ext_key_usage: Option<String>,
    days: i32,
}

impl Spec {
    /// A CA called `cn` (`CA:TRUE`, no path length limit), P-256, 30 days.
    pub fn ca(cn: &str) -> Self {
        Spec {
            kind: KeyKind::P256,
            cn: cn.to_string(),
            sans: Vec::new(),
            ca: Some(None),
            key_usage: None,
            ext_key_usage: None,
            days: 30,
        }
    }

    /// A server certificate for `host` (CN and one SAN: `IP:` for an
    /// address, else `DNS:`), `CA:FALSE`, P-256, 30 days.
    pub fn leaf(host: &str) -> Self {
        let san = if host.parse::<std::net::IpAddr>().is_ok() {
            format!("IP:{host}")
        } else {
            format!("DNS:{host}")
        };
        Spec {
            sans: vec![san],
            ca: None,
            ..Spec::ca(host)
        }
    }

    /// The key type.
    pub fn kind(mut self, kind: KeyKind) -> Self {
        self.kind = kind;
        self
    }

    /// The CN (the subject is `/CN=cn`).
    pub fn cn(mut self, cn: &str) -> Self {
        self.cn = cn.to_string();
        self
    }

    /// The SANs instead of the default, in openssl's spelling
    /// (`DNS:a.example`, `IP:127.0.0.1`), in this order.
    pub fn sans(mut self, sans: &[&str]) -> Self {
        self.sans = sans.iter().map(|s| s.to_string()).collect();
        self
    }

    /// A CA with `pathlen:n`.
    pub fn path_len(mut self, n: u32) -> Self {
        self.ca = Some(Some(n));
        self
    }

    /// A critical keyUsage, in openssl's spelling (`digitalSignature`,
    /// `keyEncipherment`, `keyCertSign, cRLSign`).
    pub fn key_usage(mut self, usage: &str) -> Self {
        self.key_usage = Some(usage.to_string());
        self
    }

    /// An extendedKeyUsage, in openssl's spelling (`serverAuth`,
    /// `clientAuth`).
    pub fn eku(mut self, usage: &str) -> Self {
        self.ext_key_usage = Some(usage.to_string());
        self
    }

    /// Valid for `days` from now (negative: expired).
    pub fn days(mut self, days: i32) -> Self {
        self.days = days;
        self
    }

    /// The openssl extension file's lines.
    fn extensions(&self) -> String {
        let mut ext = match self.ca {
            None => "basicConstraints=critical,CA:FALSE\n".to_string(),
            Some(None) => "basicConstraints=critical,CA:TRUE\n".to_string(),
            Some(Some(n)) => format!("basicConstraints=critical,CA:TRUE,pathlen:{n}\n"),
        };
        if !self.sans.is_empty() {
            ext.push_str(&format!("subjectAltName={}\n", self.sans.join(",")));
        }
        if let Some(ku) = &self.key_usage {
            ext.push_str(&format!("keyUsage=critical,{ku}\n"));
        }
        if let Some(eku) = &self.ext_key_usage {
            ext.push_str(&format!("extendedKeyUsage={eku}\n"));
        }
        ext.push_str("subjectKeyIdentifier=hash\n");
        ext
    }
}

/// A scratch directory of keys and certificates made with `openssl`
/// (removed on drop unless the test failed). `name` below is a file stem:
/// `name.key`, `name.crt`.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A fresh directory for the test `tag`.
    pub fn new(tag: &str) -> Self {
        Pki {
            dir: scratch_dir(&format!("tls-{tag}")),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the file `name` in the directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn key(&self, name: &str, kind: KeyKind) {
        let key = format!("{name}.key");
        match kind {
            KeyKind::P256 => openssl(
                &self.dir,
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    &key,
                ],
            ),
            KeyKind::Rsa => openssl(
                &self.dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    &key,
                ],
            ),
        }
    }

    /// A self-signed certificate `name` as `spec` says (a root CA, or with
    /// `CA:FALSE` a self-signed server certificate).
    pub fn ca(&self, name: &str, spec: Spec) -> &Self {
        self.make(name, None, &spec)
    }

    /// A certificate `name` as `spec` says, signed by `issuer` (a CA of this
    /// directory).
    pub fn issue(&self, name: &str, issuer: &str, spec: Spec) -> &Self {
        self.make(name, Some(issuer), &spec)
    }

    fn make(&self, name: &str, issuer: Option<&str>, spec: &Spec) -> &Self {
        self.key(name, spec.kind);
        let ext = format!("{name}.ext");
        std::fs::write(self.dir.join(&ext), spec.extensions()).expect("write ext");
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subj = format!("/CN={}", spec.cn);
        openssl(
            &self.dir,
            &["req", "-new", "-key", &key, "-subj", &subj, "-out", &csr],
        );
        let days = spec.days.to_string();
        let mut args = vec![
            "x509", "-req", "-in", &csr, "-days", &days, "-sha256", "-extfile", &ext, "-out", &crt,
        ];
        let (ca_crt, ca_key);
        match issuer {
            Some(issuer) => {
                ca_crt = format!("{issuer}.crt");
                ca_key = format!("{issuer}.key");
                args.extend(["-CA", &ca_crt, "-CAkey", &ca_key, "-CAcreateserial"]);
            }
            None => args.extend(["-signkey", &key]),
        }
        openssl(&self.dir, &args);
        self
    }

    /// Writes `name.pem`: the certificates `names` one after the other (a
    /// server's chain, or a bundle of CAs).
    pub fn chain(&self, name: &str, names: &[&str]) -> &Self {
        let mut text = String::new();
        for n in names {
            text.push_str(
                &std::fs::read_to_string(self.dir.join(format!("{n}.crt"))).expect("crt"),
            );
        }
        std::fs::write(self.dir.join(format!("{name}.pem")), text).expect("write chain");
        self
    }

    /// The DER of `name.crt`.
    pub fn der(&self, name: &str) -> Vec<u8> {
        pem_der(&self.dir.join(format!("{name}.crt")), "CERTIFICATE")
    }

    /// The DER of `name.key`.
    pub fn key_der(&self, name: &str) -> Vec<u8> {
        pem_der(&self.dir.join(format!("{name}.key")), "PRIVATE KEY")
    }

    /// mosquitto config lines making its listener TLS with `cert` (a `.crt`
    /// or a chain `.pem` file name) and the key `key` (a stem).
    pub fn listener(&self, cert: &str, key: &str) -> String {
        format!(
            "certfile {}\nkeyfile {}\n",
            self.path(cert),
            self.path(&format!("{key}.key"))
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The DER of the first PEM block labelled `label` in the file `path`.
pub fn pem_der(path: &Path, label: &str) -> Vec<u8> {
    let text = std::fs::read(path).expect("read pem");
    let mut out = vec![0u8; text.len()];
    let n = pem::decode(&text, label, &mut out).expect("pem").len();
    out.truncate(n);
    out
}

/// Writes `openssl-max-<max>.cnf` in `dir`: an OpenSSL config whose
/// `system_default` section caps every TLS context of the process that reads
/// it (`OPENSSL_CONF=path`) at the protocol `max` (`TLSv1.2`). mosquitto's
/// `tls_version` is only a minimum; this is how a test makes a broker that
/// really cannot speak TLS 1.3. Returns the path.
pub fn openssl_max_protocol_conf(dir: &Path, max: &str) -> PathBuf {
    openssl_tls_conf(dir, &format!("max-{max}"), &format!("MaxProtocol = {max}"))
}

/// Writes `openssl-<tag>.cnf` in `dir`: an OpenSSL config whose
/// `system_default` section applies `settings` (lines such as
/// `Groups = X25519`) to every TLS context of the process that reads it
/// (`OPENSSL_CONF=path`). Returns the path.
pub fn openssl_tls_conf(dir: &Path, tag: &str, settings: &str) -> PathBuf {
    let path = dir.join(format!("openssl-{tag}.cnf"));
    let text = format!(
        "openssl_conf = umqtt_conf\n\n[umqtt_conf]\nssl_conf = umqtt_ssl\n\n[umqtt_ssl]\nsystem_default = umqtt_tls\n\n[umqtt_tls]\n{settings}\n"
    );
    std::fs::write(&path, text).expect("write openssl config");
    path
}

/// Whether `openssl s_client` completes a handshake with `addr` using the
/// version flag `version` (`-tls1_2`, `-tls1_3`), trusting `cafile`.
pub fn s_client_handshakes(addr: std::net::SocketAddr, version: &str, cafile: &str) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
            version,
            "-CAfile",
            cafile,
            "-verify_return_error",
            "-brief",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success() && text.contains("CONNECTION ESTABLISHED")
}

/// Runs `openssl rehash` on `dir` (the hashed links `--capath` and
/// `SSL_CERT_DIR` read).
pub fn rehash(dir: &Path) {
    openssl(dir, &["rehash", "."]);
}
