//! `umqtt pub/sub` over TLS against mosquitto TLS listeners with
//! certificates made by `openssl`: a round trip with `--cafile`, mutual TLS
//! with `--cert`/`--key`, and a refused handshake that exits 1 with one line
//! naming the reason. Skipped (a printed `SKIPPED` line) without mosquitto
//! or openssl, unless `UMQTT_REQUIRE_MOSQUITTO=1`. Only 127.0.0.1.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_tests::{Mosquitto, find_program, mosquitto_required, scratch_dir};

const WAIT: Duration = Duration::from_secs(20);

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 CA `name` in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &format!("{name}.key"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-sha256",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A P-256 certificate `name` for `host`, signed by the CA `issuer`.
fn leaf(dir: &Path, name: &str, issuer: &str, host: &str) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &format!("{name}.key"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n"),
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={host}"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{issuer}.crt"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A TLS mosquitto (server certificate for `localhost`) with the extra
/// config `extra`, and the directory of its certificates.
fn tls_broker(test: &str, extra: impl FnOnce(&Path) -> String) -> Option<(Mosquitto, PathBuf)> {
    if find_program("openssl", &["/usr/bin/openssl"]).is_none() {
        assert!(
            !mosquitto_required(),
            "UMQTT_REQUIRE_MOSQUITTO=1 but openssl is missing"
        );
        eprintln!("SKIPPED {test}: openssl is not installed");
        return None;
    }
    let dir = scratch_dir(test);
    ca(&dir, "ca");
    leaf(&dir, "server", "ca", "localhost");
    let config = format!(
        "certfile {}\nkeyfile {}\n{}",
        dir.join("server.crt").display(),
        dir.join("server.key").display(),
        extra(&dir)
    );
    let broker = Mosquitto::start(test, &config)?;
    Some((broker, dir))
}

fn umqtt(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_umqtt"));
    c.args(args).stdin(Stdio::null());
    c
}

fn args(sub: &str, port: u16, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = [sub, "-h", "localhost", "-p", &port.to_string(), "--cafile"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.push(dir.join("ca.crt").display().to_string());
    all.extend(extra.iter().map(|s| s.to_string()));
    all
}

/// Runs to the end, within [`WAIT`].
fn run(args: &[String]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = umqtt(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("umqtt");
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > WAIT {
            let _ = child.kill();
            panic!("umqtt {args:?} did not exit within {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().expect("output"), start.elapsed())
}

/// A `umqtt sub -d` whose stderr is collected; returned once subscribed.
struct Sub {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Sub {
    fn start(args: &[String]) -> Sub {
        let mut all = args.to_vec();
        all.push("-d".into());
        let mut child = umqtt(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("umqtt sub");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let mut pipe = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let sub = Sub { child, stderr };
        let start = Instant::now();
        while !sub.stderr().contains("subscribed to `") {
            assert!(
                start.elapsed() < WAIT,
                "sub did not subscribe; stderr:\n{}",
                sub.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
        sub
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn finish(mut self) -> String {
        let start = Instant::now();
        while self.child.try_wait().expect("try_wait").is_none() {
            assert!(
                start.elapsed() < WAIT,
                "sub did not exit; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read stdout");
        assert!(
            self.child.wait().expect("wait").success(),
            "sub failed: {}",
            self.stderr()
        );
        out
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pub_and_sub_over_tls_with_cafile() {
    let Some((broker, dir)) = tls_broker("cli-tls-round-trip", |_| String::new()) else {
        return;
    };
    let port = broker.addr.port();
    let sub = Sub::start(&args(
        "sub",
        port,
        &dir,
        &["-t", "cli/tls", "-v", "-C", "1"],
    ));
    let (out, _) = run(&args(
        "pub",
        port,
        &dir,
        &["-t", "cli/tls", "-m", "over TLS", "-q", "1"],
    ));
    assert!(
        out.status.success(),
        "pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sub.finish(), "cli/tls over TLS\n");
}

#[test]
fn mutual_tls_with_cert_and_key() {
    let Some((broker, dir)) = tls_broker("cli-tls-mutual", |dir| {
        ca(dir, "clients");
        leaf(dir, "client", "clients", "device");
        format!(
            "cafile {}\nrequire_certificate true\n",
            dir.join("clients.crt").display()
        )
    }) else {
        return;
    };
    let port = broker.addr.port();
    let cert = dir.join("client.crt").display().to_string();
    let key = dir.join("client.key").display().to_string();
    let (out, _) = run(&args(
        "pub",
        port,
        &dir,
        &["-t", "cli/mtls", "-m", "x", "--cert", &cert, "--key", &key],
    ));
    assert!(
        out.status.success(),
        "pub with a client certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = run(&args("pub", port, &dir, &["-t", "cli/mtls", "-m", "x"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("client certificate"), "{stderr}");
}

#[test]
fn refused_handshake_exits_1_with_one_line_naming_the_reason() {
    let Some((broker, dir)) = tls_broker("cli-tls-refused", |_| String::new()) else {
        return;
    };
    ca(&dir, "other");
    let port = broker.addr.port();
    let mut a = args("pub", port, &dir, &["-t", "cli/tls", "-m", "x"]);
    let cafile = a.iter().position(|s| s == "--cafile").expect("--cafile") + 1;
    a[cafile] = dir.join("other.crt").display().to_string();
    let (out, took) = run(&a);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not trusted"), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    println!("refused: {stderr}");
}
