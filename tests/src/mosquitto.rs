//! mosquitto as a subprocess: started on a free loopback port with a config
//! the test writes, restarted, killed; and a password file for it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::pki::{
    KeyKind, Pki, Spec, openssl_available, openssl_max_protocol_conf, s_client_handshakes,
};
use crate::{free_port, scratch_dir, wait_for_listener};

/// mosquitto as a subprocess, killed when dropped.
pub struct Mosquitto {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its scratch directory (config, log, persistence).
    pub dir: PathBuf,
    child: Child,
    config: PathBuf,
    /// Environment variables of the broker process (e.g. `OPENSSL_CONF`).
    env: Vec<(String, String)>,
}

/// Whether tests must fail instead of skipping when mosquitto is missing.
pub fn mosquitto_required() -> bool {
    std::env::var("UMQTT_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1")
}

/// The first of the `candidates` paths that exists, or else the first
/// program called `name` in a directory of `PATH`.
pub fn find_program(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.exists())
        })
}

/// The mosquitto binary: in one of the usual places, or on `PATH`.
pub fn find_mosquitto() -> Option<PathBuf> {
    find_program(
        "mosquitto",
        &[
            "/usr/sbin/mosquitto",
            "/usr/bin/mosquitto",
            "/usr/local/sbin/mosquitto",
        ],
    )
}

/// The config of a mosquitto listening on `addr` that lets anyone in, runs
/// as root and logs to the file `log`, followed by the config lines
/// `settings` (which log types, say [`MOSQUITTO_QUIET_LOG`]).
pub fn mosquitto_config(addr: SocketAddr, log: &Path, settings: &str) -> String {
    format!(
        "listener {} {}\nallow_anonymous true\nuser root\nlog_dest file {}\n{settings}\n",
        addr.port(),
        addr.ip(),
        log.display()
    )
}

/// mosquitto config lines that log connection events (errors, warnings,
/// notices) but not the per-packet lines of `log_type all`, which run to
/// hundreds of thousands of lines, and most of the run time, in a test that
/// sends tens of thousands of messages. Every [`Mosquitto`] starts with them.
pub const MOSQUITTO_QUIET_LOG: &str =
    "log_type none\nlog_type error\nlog_type warning\nlog_type notice";

impl Mosquitto {
    /// Starts mosquitto on a free port with `extra` config lines, or returns
    /// `None` (after printing why) when it is not installed and not required.
    pub fn start(test: &str, extra: &str) -> Option<Self> {
        Self::start_with_env(test, extra, &[])
    }

    /// A TLS mosquitto for `localhost`: a P-256 CA `ca` and its leaf
    /// `server` for `localhost` (made with `openssl`), its listener on that
    /// leaf with `extra` config lines. Returns the PKI too (`pki.der("ca")`
    /// to trust; keep it, a restart reads its files again). `None` (the
    /// test skips, after saying why) without openssl or mosquitto.
    pub fn tls_for_localhost(test: &str, extra: &str) -> Option<(Self, Pki)> {
        Self::tls_for_localhost_with(test, |_| extra.to_string())
    }

    /// [`Mosquitto::tls_for_localhost`] with the extra config lines that
    /// `setup` returns, once the CA and the leaf exist (it may issue more
    /// certificates, or name the PKI's files).
    pub fn tls_for_localhost_with(
        test: &str,
        setup: impl FnOnce(&Pki) -> String,
    ) -> Option<(Self, Pki)> {
        if !openssl_available(test) {
            return None;
        }
        let pki = Pki::new(test);
        pki.ca("ca", Spec::ca("ca"))
            .issue("server", "ca", Spec::leaf("localhost"));
        let extra = setup(&pki);
        let broker = Self::start(
            test,
            &format!("{}{extra}", pki.listener("server.crt", "server")),
        )?;
        Some((broker, pki))
    }

    /// A TLS mosquitto that speaks TLS 1.2 and nothing newer (capped by an
    /// OpenSSL config, `OPENSSL_CONF`, at every start), serving an RSA chain
    /// for `localhost`: root `ca`, intermediate `inter` (pathlen 0), leaf
    /// `server`; `server-chain.pem` is leaf + intermediate. The cap is
    /// checked with `openssl s_client` (1.3 refused, 1.2 accepted), so a test
    /// on it proves what it says. `None` (the test skips) without openssl or
    /// mosquitto.
    pub fn tls12_only_rsa(test: &str) -> Option<(Self, Pki)> {
        if !openssl_available(test) {
            return None;
        }
        let pki = Pki::new(test);
        pki.ca("ca", Spec::ca("rsa root").kind(KeyKind::Rsa))
            .issue(
                "inter",
                "ca",
                Spec::ca("rsa intermediate").kind(KeyKind::Rsa).path_len(0),
            )
            .issue(
                "server",
                "inter",
                Spec::leaf("localhost").kind(KeyKind::Rsa).eku("serverAuth"),
            )
            .chain("server-chain", &["server", "inter"]);
        let conf = openssl_max_protocol_conf(pki.dir(), "TLSv1.2");
        let conf = conf.display().to_string();
        let broker = Self::start_with_env(
            test,
            &format!(
                "{}tls_version tlsv1.2\n",
                pki.listener("server-chain.pem", "server")
            ),
            &[("OPENSSL_CONF", &conf)],
        )?;
        let ca = pki.path("ca.crt");
        assert!(
            !s_client_handshakes(broker.addr, "-tls1_3", &ca),
            "the broker still speaks TLS 1.3: the test would prove nothing"
        );
        assert!(
            s_client_handshakes(broker.addr, "-tls1_2", &ca),
            "the broker does not speak TLS 1.2; log:\n{}",
            broker.log()
        );
        Some((broker, pki))
    }

    /// [`Mosquitto::start`] with these environment variables in the broker's
    /// process only (and again at each restart): `OPENSSL_CONF` to cap its
    /// TLS version, say.
    pub fn start_with_env(test: &str, extra: &str, env: &[(&str, &str)]) -> Option<Self> {
        let Some(binary) = find_mosquitto() else {
            assert!(
                !mosquitto_required(),
                "UMQTT_REQUIRE_MOSQUITTO=1 but mosquitto is not installed"
            );
            eprintln!("SKIPPED {test}: mosquitto is not installed (apt-get install mosquitto)");
            return None;
        };
        let dir = scratch_dir(test);
        let config = dir.join("mosquitto.conf");
        let log = dir.join("mosquitto.log");
        let configure = |addr| {
            let text = mosquitto_config(addr, &log, &format!("{MOSQUITTO_QUIET_LOG}\n{extra}"));
            std::fs::write(&config, text).expect("write mosquitto.conf");
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        configure(addr);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = spawn_mosquitto_env(&binary, &config, &env);
        let mut broker = Mosquitto {
            addr,
            dir,
            child,
            config: config.clone(),
            env,
        };
        // The port is free when picked but not held: a client of another
        // test can get it as its own port before mosquitto binds it, and
        // mosquitto then exits. Another port then.
        let mut attempt = 1;
        loop {
            if broker.ready() {
                return Some(broker);
            }
            assert!(
                attempt < 3,
                "mosquitto did not start on {} ({attempt} ports tried); log:\n{}",
                broker.addr,
                broker.log()
            );
            eprintln!(
                "{test}: mosquitto did not start on {}, another port; log:\n{}",
                broker.addr,
                broker.log()
            );
            broker.kill();
            broker.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            configure(broker.addr);
            broker.child = spawn_mosquitto_env(&binary, &broker.config, &broker.env);
            attempt += 1;
        }
    }

    /// Whether mosquitto listens on its address: something accepts there
    /// (within 10 s) and mosquitto is still running (one that could not
    /// bind its port has exited).
    fn ready(&mut self) -> bool {
        wait_for_listener(self.addr, Duration::from_secs(10))
            && matches!(self.child.try_wait(), Ok(None))
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Kills the broker (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the broker with SIGTERM (it saves its database first) and
    /// waits for it to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Stops the broker with SIGTERM and starts it again with the same
    /// config and port.
    pub fn restart_gracefully(&mut self) {
        self.terminate();
        self.start_again();
    }

    /// Restarts the broker with persistence in its own directory, plus the
    /// config lines `extra` (how often it saves, say).
    pub fn enable_persistence(&mut self, extra: &str) {
        self.kill();
        let mut text = std::fs::read_to_string(&self.config).expect("read mosquitto.conf");
        text.push_str(&format!(
            "persistence true\npersistence_location {}/\n{extra}\n",
            self.dir.display()
        ));
        std::fs::write(&self.config, text).expect("write mosquitto.conf");
        self.restart();
    }

    /// Starts the broker again with the same config and port.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Starts the stopped broker again with the same config, environment
    /// and port, and waits until it listens.
    fn start_again(&mut self) {
        let binary = find_mosquitto().expect("mosquitto was found before");
        self.child = spawn_mosquitto_env(&binary, &self.config, &self.env);
        assert!(
            self.ready(),
            "mosquitto did not start again on {}; log:\n{}",
            self.addr,
            self.log()
        );
    }
}

/// Writes a mosquitto password file with `user`/`password` using
/// `mosquitto_passwd -b -c`, or returns `None` (after printing why) when the
/// tool is missing and mosquitto is not required.
pub fn password_file(test: &str, user: &str, password: &str) -> Option<PathBuf> {
    let file = scratch_dir(test).join("passwd");
    let status = match Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&file)
        .arg(user)
        .arg(password)
        .status()
    {
        Ok(status) => status,
        Err(e) => {
            assert!(
                !mosquitto_required(),
                "mosquitto_passwd could not be run: {e}"
            );
            eprintln!("SKIPPED {test}: mosquitto_passwd could not be run: {e}");
            return None;
        }
    };
    assert!(status.success(), "mosquitto_passwd failed: {status}");
    assert!(
        std::fs::metadata(&file).is_ok_and(|m| m.len() > 0),
        "password file is empty"
    );
    Some(file)
}

/// mosquitto refusing anonymous clients and accepting only `user` with
/// `password` (a password file written by [`password_file`]), or `None`
/// (after printing why) when either is not installed and not required.
pub fn broker_with_password(test: &str, user: &str, password: &str) -> Option<Mosquitto> {
    let file = password_file(test, user, password)?;
    Mosquitto::start(
        test,
        &format!("allow_anonymous false\npassword_file {}", file.display()),
    )
}

/// Starts the mosquitto `binary` with the config file `config`, without
/// input and with its output discarded (it logs where its config says).
pub fn spawn_mosquitto(binary: &Path, config: &Path) -> Child {
    spawn_mosquitto_env(binary, config, &[])
}

/// [`spawn_mosquitto`] with these environment variables added.
pub fn spawn_mosquitto_env(binary: &Path, config: &Path, env: &[(String, String)]) -> Child {
    Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto")
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        // Keep the log of a failed test; clean up after a passing one.
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
