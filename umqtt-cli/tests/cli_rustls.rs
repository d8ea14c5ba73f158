//! `umqtt pub` with the default TLS engine (rustls) and with
//! `--tls-engine embedded`, against mosquitto TLS listeners started here
//! (certificates made by `openssl`, `umqtt_tests::pki`) and `openssl
//! s_server`: a TLS-1.2-only broker with an RSA chain (capped through
//! `OPENSSL_CONF`, checked with `s_client -tls1_3`), an X25519-only broker,
//! `--capath` with hashed links, the OS trust store from `SSL_CERT_DIR` /
//! `SSL_CERT_FILE` set for the child only (never the machine's own store),
//! mutual TLS with RSA and EC client keys, and ALPN as the server sees it.
//! Skipped (a printed `SKIPPED` line) without mosquitto or openssl, unless
//! `UMQTT_REQUIRE_MOSQUITTO=1`. Only 127.0.0.1.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_tests::pki::{KeyKind, Pki, Spec, openssl, openssl_available, openssl_tls_conf};
use umqtt_tests::{Mosquitto, free_port, wait_for_listener};

mod umqtt_run;
use umqtt_run::{WAIT, run};

/// `pub -h localhost -p PORT -t cli/rustls -m x EXTRA...`.
fn publish(port: u16, extra: &[&str]) -> Vec<String> {
    let port = port.to_string();
    [
        "pub",
        "-h",
        "localhost",
        "-p",
        &port,
        "-t",
        "cli/rustls",
        "-m",
        "x",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn assert_published(args: &[String], env: &[(&str, &str)]) {
    let (out, _) = run(args, env);
    assert!(
        out.status.success(),
        "umqtt {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `args`, asserts exit status 1 and one line on stderr, returns it.
fn assert_fails(args: &[String], env: &[(&str, &str)]) -> String {
    let (out, _) = run(args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "umqtt {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    println!("{args:?}: {stderr}");
    stderr
}

#[test]
fn tls12_only_rsa_broker_default_engine_reaches_it_and_embedded_is_refused_naming_tls12() {
    let test = "cli-rustls-tls12";
    let Some((broker, pki)) = Mosquitto::tls12_only_rsa(test) else {
        return;
    };
    let ca = pki.path("ca.crt");
    let port = broker.addr.port();
    assert_published(&publish(port, &["--cafile", &ca, "-q", "1"]), &[]);
    assert_published(
        &publish(port, &["--cafile", &ca, "--tls-version", "tlsv1.2"]),
        &[],
    );
    let stderr = assert_fails(
        &publish(port, &["--cafile", &ca, "--tls-engine", "embedded"]),
        &[],
    );
    assert!(stderr.contains("TLS 1.2"), "{stderr}");
    assert!(stderr.contains("--tls-engine rustls"), "{stderr}");
    let stderr = assert_fails(
        &publish(port, &["--cafile", &ca, "--tls-version", "tlsv1.3"]),
        &[],
    );
    assert!(stderr.contains("no TLS version in common"), "{stderr}");
}

#[test]
fn x25519_only_broker_default_engine_reaches_it_and_embedded_refusal_names_p256() {
    let test = "cli-rustls-x25519";
    if !openssl_available(test) {
        return;
    }
    let pki = Pki::new(test);
    pki.ca("ca", Spec::ca("ca"))
        .issue("server", "ca", Spec::leaf("localhost"));
    let conf = openssl_tls_conf(pki.dir(), "x25519", "Groups = X25519");
    let conf = conf.display().to_string();
    let Some(broker) = Mosquitto::start_with_env(
        test,
        &pki.listener("server.crt", "server"),
        &[("OPENSSL_CONF", &conf)],
    ) else {
        return;
    };
    let ca = pki.path("ca.crt");
    let port = broker.addr.port();
    assert_published(&publish(port, &["--cafile", &ca]), &[]);
    let stderr = assert_fails(
        &publish(port, &["--cafile", &ca, "--tls-engine", "embedded"]),
        &[],
    );
    assert!(stderr.contains("P-256"), "{stderr}");
}

/// `openssl x509 -hash` of `cert`: the name of its hashed link.
fn subject_hash(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-hash", "-noout", "-in"])
        .arg(cert)
        .output()
        .expect("openssl x509 -hash");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `dir/<hash>.0 -> cert` (absolute), as /etc/ssl/certs holds them.
fn hashed_link(dir: &Path, cert: &Path) {
    let link = dir.join(format!("{}.0", subject_hash(cert)));
    std::os::unix::fs::symlink(cert, link).expect("symlink");
}

#[test]
fn capath_of_hashed_links_is_trusted() {
    let test = "cli-rustls-capath";
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with(test, |pki| {
        pki.ca("other", Spec::ca("other"));
        String::new()
    }) else {
        return;
    };
    let port = broker.addr.port();
    // Hashed links only, to certificates elsewhere (as /etc/ssl/certs).
    let links = pki.dir().join("links");
    std::fs::create_dir(&links).expect("mkdir");
    hashed_link(&links, &pki.dir().join("other.crt"));
    hashed_link(&links, &pki.dir().join("ca.crt"));
    let links = links.display().to_string();
    for engine in ["rustls", "embedded"] {
        assert_published(
            &publish(port, &["--capath", &links, "--tls-engine", engine]),
            &[],
        );
    }
    // What `openssl rehash` makes of a directory of PEM files.
    let rehashed = pki.dir().join("rehashed");
    std::fs::create_dir(&rehashed).expect("mkdir");
    std::fs::copy(pki.dir().join("ca.crt"), rehashed.join("ca.pem")).expect("copy");
    std::fs::copy(pki.dir().join("other.crt"), rehashed.join("other.pem")).expect("copy");
    openssl(&rehashed, &["rehash", "."]);
    let hash = subject_hash(&pki.dir().join("ca.crt"));
    assert!(
        rehashed.join(format!("{hash}.0")).exists(),
        "rehash made no link"
    );
    let rehashed = rehashed.display().to_string();
    assert_published(&publish(port, &["--capath", &rehashed]), &[]);
    // Without the CA that signed the broker: refused, said so.
    let only_other = pki.dir().join("only-other");
    std::fs::create_dir(&only_other).expect("mkdir");
    hashed_link(&only_other, &pki.dir().join("other.crt"));
    let only_other = only_other.display().to_string();
    let stderr = assert_fails(&publish(port, &["--capath", &only_other]), &[]);
    assert!(stderr.contains("not trusted"), "{stderr}");
}

#[test]
fn no_ca_option_means_the_os_trust_store_from_ssl_cert_dir_or_file() {
    let test = "cli-rustls-os-roots";
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with(test, |pki| {
        pki.ca("other", Spec::ca("other"));
        String::new()
    }) else {
        return;
    };
    let url = format!("mqtts://localhost:{}/cli/os", broker.addr.port());
    let args: Vec<String> = ["pub", "-L", &url, "-m", "x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // A test trust directory of hashed links: SSL_CERT_DIR.
    let store = pki.dir().join("trust");
    std::fs::create_dir(&store).expect("mkdir");
    hashed_link(&store, &pki.dir().join("ca.crt"));
    let store = store.display().to_string();
    assert_published(&args, &[("SSL_CERT_DIR", &store)]);
    // A test bundle: SSL_CERT_FILE.
    let ca = pki.path("ca.crt");
    assert_published(&args, &[("SSL_CERT_FILE", &ca)]);
    // A store without the broker's CA: refused, not trusted.
    let other = pki.path("other.crt");
    let stderr = assert_fails(&args, &[("SSL_CERT_FILE", &other)]);
    assert!(stderr.contains("not trusted"), "{stderr}");
    // An empty store: said so, before connecting.
    let empty = pki.dir().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let empty = empty.display().to_string();
    let stderr = assert_fails(&args, &[("SSL_CERT_DIR", &empty)]);
    assert!(stderr.contains("system trust store"), "{stderr}");
    // The embedded engine cannot read a system store: a usage error.
    let mut embedded = args.clone();
    embedded.extend(["--tls-engine".to_string(), "embedded".to_string()]);
    let (out, _) = run(&embedded, &[("SSL_CERT_FILE", &ca)]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn mutual_tls_with_rsa_and_ec_client_keys() {
    let test = "cli-rustls-mutual";
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with(test, |pki| {
        pki.ca("clients", Spec::ca("clients"))
            .issue(
                "client-rsa",
                "clients",
                Spec::leaf("device-rsa").kind(KeyKind::Rsa),
            )
            .issue("client-ec", "clients", Spec::leaf("device-ec"));
        format!(
            "cafile {}\nrequire_certificate true\n",
            pki.path("clients.crt")
        )
    }) else {
        return;
    };
    let port = broker.addr.port();
    let ca = pki.path("ca.crt");
    for client in ["client-rsa", "client-ec"] {
        let cert = pki.path(&format!("{client}.crt"));
        let key = pki.path(&format!("{client}.key"));
        for version in ["tlsv1.3", "tlsv1.2"] {
            assert_published(
                &publish(
                    port,
                    &[
                        "--cafile",
                        &ca,
                        "--cert",
                        &cert,
                        "--key",
                        &key,
                        "--tls-version",
                        version,
                    ],
                ),
                &[],
            );
        }
    }
    let stderr = assert_fails(&publish(port, &["--cafile", &ca]), &[]);
    assert!(stderr.contains("client certificate"), "{stderr}");
    // The embedded engine signs with P-256 only: an RSA key is refused.
    let stderr = assert_fails(
        &publish(
            port,
            &[
                "--cafile",
                &ca,
                "--tls-engine",
                "embedded",
                "--cert",
                &pki.path("client-rsa.crt"),
                "--key",
                &pki.path("client-rsa.key"),
            ],
        ),
        &[],
    );
    assert!(stderr.contains("P-256"), "{stderr}");
}

/// `openssl s_server` on a free port serving `server.crt`, choosing ALPN
/// among `alpn`; its output is collected.
struct SServer {
    child: std::process::Child,
    addr: SocketAddr,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl SServer {
    fn start(pki: &Pki, alpn: &str) -> SServer {
        let port = free_port();
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept"])
            .arg(port.to_string())
            .args(["-cert", &pki.path("server.crt")])
            .args(["-key", &pki.path("server.key")])
            .args(["-alpn", alpn])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&out);
        let mut pipe = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(wait_for_listener(addr, WAIT), "s_server did not start");
        SServer { child, addr, out }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alpn_is_offered_to_the_server() {
    let test = "cli-rustls-alpn";
    if !openssl_available(test) {
        return;
    }
    let pki = Pki::new(test);
    pki.ca("ca", Spec::ca("ca"))
        .issue("server", "ca", Spec::leaf("localhost"));
    let ca = pki.path("ca.crt");
    for engine in ["rustls", "embedded"] {
        let server = SServer::start(&pki, "x-amzn-mqtt-ca");
        // s_server speaks no MQTT: the client gives up after -W 2 s, after
        // the handshake that carried the ALPN extension.
        let args = publish(
            server.addr.port(),
            &[
                "--cafile",
                &ca,
                "--alpn",
                "x-amzn-mqtt-ca",
                "--tls-engine",
                engine,
                "-W",
                "2",
            ],
        );
        let _ = run(&args, &[]);
        let start = Instant::now();
        while !server
            .output()
            .contains("ALPN protocols advertised by the client")
            && start.elapsed() < WAIT
        {
            thread::sleep(Duration::from_millis(20));
        }
        let output = server.output();
        assert!(
            output.contains("ALPN protocols advertised by the client: x-amzn-mqtt-ca"),
            "{engine}: s_server saw:\n{output}"
        );
    }
}
