//! `umqtt pub/sub` over TLS against mosquitto TLS listeners with
//! certificates made by `openssl` (`umqtt_tests::pki`): a round trip with
//! `--cafile`, a `--cafile` bundle, `--capath`, `-h 127.0.0.1` against IP
//! and DNS SANs, mutual TLS with `--cert`/`--key`, `--insecure` (warns;
//! not with `--cafile`), a refused handshake that exits 1 with one line
//! naming the reason, and a server that closes right after the handshake.
//! Skipped (a printed `SKIPPED` line) without mosquitto or openssl, unless
//! `UMQTT_REQUIRE_MOSQUITTO=1`. Only 127.0.0.1.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_tests::Mosquitto;

mod umqtt_run;
use umqtt_run::{WAIT, run, umqtt};
use umqtt_tests::pki::Spec;

/// `umqtt SUB -h localhost -p PORT --cafile DIR/ca.crt EXTRA...`.
fn args(sub: &str, port: u16, dir: &Path, extra: &[&str]) -> Vec<String> {
    let cafile = dir.join("ca.crt").display().to_string();
    let mut all = vec!["--cafile", &cafile];
    all.extend_from_slice(extra);
    bare_args(sub, "localhost", port, &all)
}

/// `umqtt SUB -h HOST -p PORT EXTRA...`.
fn bare_args(sub: &str, host: &str, port: u16, extra: &[&str]) -> Vec<String> {
    let port = port.to_string();
    [sub, "-h", host, "-p", &port]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

/// Publishes one message with `args` and asserts it went through.
fn assert_published(args: &[String]) {
    let (out, _) = run(args, &[]);
    assert!(
        out.status.success(),
        "umqtt {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `args`, asserts exit status 1, returns stderr.
fn assert_fails(args: &[String]) -> String {
    let (out, _) = run(args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "umqtt {args:?}: {stderr}");
    stderr
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
        let mut child = umqtt(&all, &[])
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
    let Some((broker, pki)) = Mosquitto::tls_for_localhost("cli-tls-round-trip", "") else {
        return;
    };
    let dir = pki.dir();
    let port = broker.addr.port();
    let sub = Sub::start(&args("sub", port, dir, &["-t", "cli/tls", "-v", "-C", "1"]));
    let (out, _) = run(
        &args(
            "pub",
            port,
            dir,
            &["-t", "cli/tls", "-m", "over TLS", "-q", "1"],
        ),
        &[],
    );
    assert!(
        out.status.success(),
        "pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sub.finish(), "cli/tls over TLS\n");
}

#[test]
fn mutual_tls_with_cert_and_key() {
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with("cli-tls-mutual", |pki| {
        pki.ca("clients", Spec::ca("clients"))
            .issue("client", "clients", Spec::leaf("device"));
        format!(
            "cafile {}\nrequire_certificate true\n",
            pki.path("clients.crt")
        )
    }) else {
        return;
    };
    let dir = pki.dir();
    let port = broker.addr.port();
    let cert = dir.join("client.crt").display().to_string();
    let key = dir.join("client.key").display().to_string();
    let (out, _) = run(
        &args(
            "pub",
            port,
            dir,
            &["-t", "cli/mtls", "-m", "x", "--cert", &cert, "--key", &key],
        ),
        &[],
    );
    assert!(
        out.status.success(),
        "pub with a client certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = run(&args("pub", port, dir, &["-t", "cli/mtls", "-m", "x"]), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("client certificate"), "{stderr}");
}

#[test]
fn refused_handshake_exits_1_with_one_line_naming_the_reason() {
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with("cli-tls-refused", |pki| {
        pki.ca("other", Spec::ca("other"));
        String::new()
    }) else {
        return;
    };
    let dir = pki.dir();
    let port = broker.addr.port();
    let mut a = args("pub", port, dir, &["-t", "cli/tls", "-m", "x"]);
    let cafile = a.iter().position(|s| s == "--cafile").expect("--cafile") + 1;
    a[cafile] = dir.join("other.crt").display().to_string();
    let (out, took) = run(&a, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not trusted"), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    println!("refused: {stderr}");
}

#[test]
fn cafile_bundle_whose_second_ca_signed_the_broker_is_trusted() {
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with("cli-tls-bundle", |pki| {
        pki.ca("other", Spec::ca("other"))
            .chain("bundle", &["other", "ca"]);
        String::new()
    }) else {
        return;
    };
    let bundle = pki.path("bundle.pem");
    let port = broker.addr.port();
    assert_published(&bare_args(
        "pub",
        "localhost",
        port,
        &["--cafile", &bundle, "-t", "cli/bundle", "-m", "x"],
    ));
}

#[test]
fn capath_directory_of_cas_is_trusted() {
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with("cli-tls-capath", |pki| {
        pki.ca("other", Spec::ca("other"));
        String::new()
    }) else {
        return;
    };
    let dir = pki.dir().join("capath");
    std::fs::create_dir(&dir).expect("capath dir");
    std::fs::copy(pki.dir().join("other.crt"), dir.join("other.pem")).expect("copy");
    // c_rehash's name for a CA: <subject hash>.0.
    std::fs::copy(pki.dir().join("ca.crt"), dir.join("0badc0de.0")).expect("copy");
    std::fs::write(dir.join("README"), "not a certificate").expect("readme");
    let port = broker.addr.port();
    let capath = dir.display().to_string();
    assert_published(&bare_args(
        "pub",
        "localhost",
        port,
        &["--capath", &capath, "-t", "cli/capath", "-m", "x"],
    ));
    // The same directory without the signing CA is not enough.
    std::fs::remove_file(dir.join("0badc0de.0")).expect("rm");
    let stderr = assert_fails(&bare_args(
        "pub",
        "localhost",
        port,
        &["--capath", &capath, "-t", "cli/capath", "-m", "x"],
    ));
    assert!(stderr.contains("not trusted"), "{stderr}");
}

#[test]
fn an_ip_host_needs_an_ip_san_and_a_dns_san_spelling_it_is_refused() {
    let test = "cli-tls-ip-host";
    let Some((broker, pki)) = Mosquitto::tls_for_localhost_with(test, |pki| {
        pki.issue("server", "ca", Spec::leaf("127.0.0.1")).issue(
            "spelled",
            "ca",
            Spec::leaf("127.0.0.1").sans(&["DNS:127.0.0.1"]),
        );
        String::new()
    }) else {
        return;
    };
    let ca = pki.path("ca.crt");
    let publish = |port: u16| {
        bare_args(
            "pub",
            "127.0.0.1",
            port,
            &["--cafile", &ca, "-t", "cli/ip", "-m", "x"],
        )
    };
    assert_published(&publish(broker.addr.port()));
    drop(broker);
    let config = pki.listener("spelled.crt", "spelled");
    let Some(spelled) = Mosquitto::start(test, &config) else {
        return;
    };
    let stderr = assert_fails(&publish(spelled.addr.port()));
    assert!(stderr.contains("not valid for the server name"), "{stderr}");
}

#[test]
fn insecure_warns_on_stderr_without_debug() {
    let Some((broker, _pki)) = Mosquitto::tls_for_localhost("cli-tls-insecure", "") else {
        return;
    };
    let (out, _) = run(
        &bare_args(
            "pub",
            "localhost",
            broker.addr.port(),
            &["--insecure", "-t", "cli/insecure", "-m", "x"],
        ),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: --insecure: the broker's certificate is not verified"),
        "{stderr}"
    );
}

#[test]
fn insecure_with_cafile_or_capath_is_a_usage_error() {
    for ca in [["--cafile", "ca.crt"], ["--capath", "/etc/ssl/certs"]] {
        let args = bare_args(
            "pub",
            "localhost",
            1,
            &["--insecure", ca[0], ca[1], "-t", "t", "-m", "x"],
        );
        let (out, _) = run(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(
                "--insecure turns verification off, so it cannot be used with --cafile or --capath"
            ),
            "{stderr}"
        );
    }
}

#[test]
fn a_broker_closing_in_order_after_connect_is_reported_as_closing_not_as_a_certificate_problem() {
    // mosquitto refuses a user name with a control character as a protocol
    // error: no CONNACK, the session ends with close_notify.
    let Some((broker, pki)) = Mosquitto::tls_for_localhost("cli-tls-close-notify", "") else {
        return;
    };
    let stderr = assert_fails(&args(
        "pub",
        broker.addr.port(),
        pki.dir(),
        &["-t", "t", "-m", "x", "-u", "a\u{1}b"],
    ));
    assert!(stderr.contains("closed the TLS connection"), "{stderr}");
    assert!(!stderr.contains("client certificate"), "{stderr}");
    assert!(broker.log().contains("protocol error"), "{}", broker.log());
}
