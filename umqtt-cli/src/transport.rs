//! The CLI's stack: plain TCP, or TLS over it with rustls (the default) or
//! embedded-tls (`--tls-engine embedded`), as `--cafile`, `--capath`,
//! `--cert`, `--key`, `--tls-version`, `--alpn` and `--insecure` say, behind
//! one `TcpClientStack` so the client type is the same.

use core::fmt;
use std::net::SocketAddr;
use std::path::Path;

use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind};
use rand_core::OsRng;
use umqtt_transports::Wait;
use umqtt_transports::rustls::{
    RustlsError, RustlsOptions, RustlsSocket, RustlsStack, StdRustlsStack, TlsVersions,
};
use umqtt_transports::std_tcp::{StdClock, StdNetError, StdSocket, StdTcpStack, StdWait};
use umqtt_transports::tls::{
    SystemTime, TlsBuffers, TlsOptions, TlsSocket, TlsStack, TlsStackError, pem,
};

use embedded_tls::alert::AlertDescription;

use crate::args::{Engine, Tls, TlsVersion};

/// Full-size TLS records (16 640 bytes): brokers do not all honour a max
/// fragment length.
const RECORD_BUFFER: usize = 16_640;
/// Outgoing records: large publishes go out in records of this size.
const WRITE_BUFFER: usize = 16_640;
/// The largest certificate chain the verifier keeps during the handshake.
const CERT_SIZE: usize = 16 * 1024;

/// The TLS stack of the CLI.
pub type TlsStd = TlsStack<'static, StdTcpStack, StdClock, StdWait, OsRng, SystemTime, CERT_SIZE>;

/// Plain TCP or TLS.
pub enum Stack {
    /// `-p` without TLS options.
    Plain(StdTcpStack),
    /// With TLS options and `--tls-engine embedded`.
    Tls(Box<TlsStd>),
    /// With TLS options: rustls.
    Rustls(Box<StdRustlsStack>),
}

/// A socket of [`Stack`].
#[derive(Debug)]
pub enum Socket {
    /// Plain TCP.
    Plain(StdSocket),
    /// TLS (embedded-tls).
    Tls(TlsSocket<StdSocket>),
    /// TLS (rustls; boxed: its session is about a kilobyte).
    Rustls(Box<RustlsSocket<StdSocket, StdNetError>>),
}

/// An error of [`Stack`].
#[derive(Debug)]
pub enum NetError {
    /// Plain TCP.
    Plain(StdNetError),
    /// TLS with embedded-tls (or the TCP under it).
    Tls(TlsStackError<StdNetError>),
    /// TLS with rustls (or the TCP under it).
    Rustls(RustlsError<StdNetError>),
    /// A socket of the other kind (cannot happen).
    WrongSocket,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Plain(e) => e.fmt(f),
            NetError::Tls(TlsStackError::Tcp(e)) => e.fmt(f),
            // The embedded engine's limits, named, and what speaks more.
            NetError::Tls(
                e @ (TlsStackError::Tls12Only
                | TlsStackError::Alert(AlertDescription::ProtocolVersion)),
            ) => write!(
                f,
                "{e}: --tls-engine embedded speaks what a device's umqtt speaks (TLS 1.3 only); --tls-engine rustls (the default) speaks TLS 1.2 too"
            ),
            NetError::Tls(
                e @ TlsStackError::Alert(
                    AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity,
                ),
            ) => write!(
                f,
                "{e}: the broker accepts none of what --tls-engine embedded offers (TLS 1.3, key exchange P-256 only, cipher suite TLS_AES_128_GCM_SHA256 only); --tls-engine rustls (the default) also offers X25519, P-384, ChaCha20 and TLS 1.2"
            ),
            NetError::Tls(e) => e.fmt(f),
            NetError::Rustls(RustlsError::Tcp(e) | RustlsError::Network(e)) => e.fmt(f),
            NetError::Rustls(e) => e.fmt(f),
            NetError::WrongSocket => f.write_str("internal error: socket of another stack"),
        }
    }
}

impl TcpError for NetError {
    fn kind(&self) -> TcpErrorKind {
        match self {
            NetError::Plain(e) => e.kind(),
            NetError::Tls(e) => e.kind(),
            NetError::Rustls(e) => e.kind(),
            NetError::WrongSocket => TcpErrorKind::Other,
        }
    }
}

/// Reads a PEM file's first block labelled `label` as DER.
fn read_der(option: &str, path: &Path, label: &str) -> Result<&'static [u8], String> {
    let text = std::fs::read(path).map_err(|e| format!("{option} {}: {e}", path.display()))?;
    let mut der = vec![0u8; text.len()];
    let n = pem::decode(&text, label, &mut der)
        .map_err(|e| format!("{option} {}: {e}", path.display()))?
        .len();
    der.truncate(n);
    Ok(der.leak())
}

/// Every certificate of the PEM text `text` (a bundle), as DER.
fn certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, pem::PemError> {
    let mut out = Vec::new();
    for block in pem::blocks(text, "CERTIFICATE") {
        let mut der = vec![0u8; text.len()];
        let n = block?.decode(&mut der)?.len();
        der.truncate(n);
        out.push(der);
    }
    Ok(out)
}

/// Whether `name` is one `--capath` reads: `*.pem`, `*.crt`, or a
/// `c_rehash` link (8 hex digits, a dot, a number).
fn capath_candidate(name: &str) -> bool {
    if name.ends_with(".pem") || name.ends_with(".crt") {
        return true;
    }
    let Some((hash, n)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// The CA certificates of `--cafile` (all of the file's) and `--capath`
/// (every certificate of every candidate file; files that hold none are
/// skipped), each once, as DER.
fn trust_anchors(tls: &Tls) -> Result<&'static [&'static [u8]], String> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    if let Some(path) = &tls.cafile {
        let text = std::fs::read(path).map_err(|e| format!("--cafile {}: {e}", path.display()))?;
        let found = certificates(&text).map_err(|e| format!("--cafile {}: {e}", path.display()))?;
        if found.is_empty() {
            return Err(format!(
                "--cafile {}: no PEM certificate in the file",
                path.display()
            ));
        }
        all.extend(found);
    }
    if let Some(dir) = &tls.capath {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("--capath {}: {e}", dir.display()))?;
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(capath_candidate))
            .map(|e| e.path())
            .collect();
        names.sort();
        let before = all.len();
        for path in names {
            // Unreadable files and files that are not certificates are
            // skipped, as OpenSSL's lookup does.
            let Ok(text) = std::fs::read(&path) else {
                continue;
            };
            all.extend(certificates(&text).unwrap_or_default());
        }
        if all.len() == before {
            return Err(format!(
                "--capath {}: no PEM certificate in *.pem, *.crt or hashed-link files",
                dir.display()
            ));
        }
    }
    let mut unique: Vec<&'static [u8]> = Vec::new();
    for der in all {
        if !unique.contains(&der.as_slice()) {
            unique.push(der.leak());
        }
    }
    Ok(unique.leak())
}

/// What `--insecure` prints, always (not only with `-d`).
const INSECURE_WARNING: &str = "warning: --insecure: the broker's certificate is not verified; anyone on the path can read and change this connection";

impl Stack {
    /// The stack for `tls` (`None`: plain TCP) and the broker `host` (the
    /// name the certificate must carry).
    ///
    /// The TLS buffers and certificates live as long as the program (leaked:
    /// one stack per run).
    pub fn new(tls: Option<&Tls>, host: &str) -> Result<Stack, String> {
        let Some(tls) = tls else {
            return Ok(Stack::Plain(StdTcpStack::new()));
        };
        if tls.engine == Engine::Rustls {
            return rustls_stack(tls, host).map(|s| Stack::Rustls(Box::new(s)));
        }
        let host: &'static str = host.to_string().leak();
        let mut options = TlsOptions::new(host);
        if tls.insecure {
            eprintln!("{INSECURE_WARNING}");
            options = options.dangerously_skip_verification();
        } else {
            options = options.cas(trust_anchors(tls)?);
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            options = options.client_certificate(
                read_der("--cert", cert, "CERTIFICATE")?,
                read_der("--key", key, "PRIVATE KEY")?,
            );
        }
        let alpn: Vec<&'static [u8]> = tls
            .alpn
            .iter()
            .map(|p| &*p.clone().into_bytes().leak())
            .collect();
        if !alpn.is_empty() {
            options = options.alpn(alpn.leak());
        }
        let read: &'static mut [u8] = vec![0u8; RECORD_BUFFER].leak();
        let write: &'static mut [u8] = vec![0u8; WRITE_BUFFER].leak();
        let buffers: &'static TlsBuffers<'static> =
            Box::leak(Box::new(TlsBuffers::new(read, write)));
        let stack = TlsStack::new(
            StdTcpStack::new(),
            StdWait::new(),
            StdClock::new(),
            OsRng,
            buffers,
            options,
        )
        .with_time(SystemTime)
        .with_cert_size::<CERT_SIZE>();
        Ok(Stack::Tls(Box::new(stack)))
    }
}

/// The rustls stack for `tls` and the broker `host`: the CAs of `--cafile`
/// and `--capath`, else the system store; `--insecure`; the client
/// certificate; `--tls-version`; `--alpn`.
fn rustls_stack(tls: &Tls, host: &str) -> Result<StdRustlsStack, String> {
    let mut options = RustlsOptions::new(host);
    if tls.insecure {
        eprintln!("{INSECURE_WARNING}");
        options = options.dangerously_skip_verification();
    } else if tls.cafile.is_some() || tls.capath.is_some() {
        for ca in trust_anchors(tls)? {
            options = options.ca_der(ca);
        }
    } else {
        options = options.system_roots();
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        let cert_pem =
            std::fs::read(cert).map_err(|e| format!("--cert {}: {e}", cert.display()))?;
        let key_pem = std::fs::read(key).map_err(|e| format!("--key {}: {e}", key.display()))?;
        options = options
            .client_certificate_pem(&cert_pem, &key_pem)
            .map_err(|e| match e {
                umqtt_transports::rustls::ConfigError::BadClientCertificate(why) => {
                    format!("--cert {}: {why}", cert.display())
                }
                umqtt_transports::rustls::ConfigError::BadClientKey(why) => {
                    format!("--key {}: {why}", key.display())
                }
                other => other.to_string(),
            })?;
    }
    options = options.versions(match tls.version {
        None => TlsVersions::Both,
        Some(TlsVersion::Tls12) => TlsVersions::Tls12,
        Some(TlsVersion::Tls13) => TlsVersions::Tls13,
    });
    let alpn: Vec<&[u8]> = tls.alpn.iter().map(|p| p.as_bytes()).collect();
    options = options.alpn(&alpn);
    RustlsStack::new(
        StdTcpStack::new(),
        StdWait::new(),
        StdClock::new(),
        &options,
    )
    .map_err(|e| {
        use umqtt_transports::rustls::ConfigError as C;
        match e {
            C::BadClientKey(why) => match &tls.key {
                Some(key) => format!("--key {}: {why}", key.display()),
                None => format!("client key: {why}"),
            },
            C::NoSystemRoots(_) => format!("{e} (or give --cafile or --capath)"),
            other => other.to_string(),
        }
    })
}

impl TcpClientStack for Stack {
    type TcpSocket = Socket;
    type Error = NetError;

    fn socket(&mut self) -> Result<Socket, NetError> {
        match self {
            Stack::Plain(s) => s.socket().map(Socket::Plain).map_err(NetError::Plain),
            Stack::Tls(s) => s.socket().map(Socket::Tls).map_err(NetError::Tls),
            Stack::Rustls(s) => s
                .socket()
                .map(|k| Socket::Rustls(Box::new(k)))
                .map_err(NetError::Rustls),
        }
    }

    fn connect(&mut self, socket: &mut Socket, remote: SocketAddr) -> nb::Result<(), NetError> {
        match (self, socket) {
            (Stack::Plain(s), Socket::Plain(k)) => {
                s.connect(k, remote).map_err(|e| e.map(NetError::Plain))
            }
            (Stack::Tls(s), Socket::Tls(k)) => {
                s.connect(k, remote).map_err(|e| e.map(NetError::Tls))
            }
            (Stack::Rustls(s), Socket::Rustls(k)) => {
                s.connect(k, remote).map_err(|e| e.map(NetError::Rustls))
            }
            _ => Err(nb::Error::Other(NetError::WrongSocket)),
        }
    }

    fn send(&mut self, socket: &mut Socket, buffer: &[u8]) -> nb::Result<usize, NetError> {
        match (self, socket) {
            (Stack::Plain(s), Socket::Plain(k)) => {
                s.send(k, buffer).map_err(|e| e.map(NetError::Plain))
            }
            (Stack::Tls(s), Socket::Tls(k)) => s.send(k, buffer).map_err(|e| e.map(NetError::Tls)),
            (Stack::Rustls(s), Socket::Rustls(k)) => {
                s.send(k, buffer).map_err(|e| e.map(NetError::Rustls))
            }
            _ => Err(nb::Error::Other(NetError::WrongSocket)),
        }
    }

    fn receive(&mut self, socket: &mut Socket, buffer: &mut [u8]) -> nb::Result<usize, NetError> {
        match (self, socket) {
            (Stack::Plain(s), Socket::Plain(k)) => {
                s.receive(k, buffer).map_err(|e| e.map(NetError::Plain))
            }
            (Stack::Tls(s), Socket::Tls(k)) => {
                s.receive(k, buffer).map_err(|e| e.map(NetError::Tls))
            }
            (Stack::Rustls(s), Socket::Rustls(k)) => {
                s.receive(k, buffer).map_err(|e| e.map(NetError::Rustls))
            }
            _ => Err(nb::Error::Other(NetError::WrongSocket)),
        }
    }

    fn close(&mut self, socket: Socket) -> Result<(), NetError> {
        match (self, socket) {
            (Stack::Plain(s), Socket::Plain(k)) => s.close(k).map_err(NetError::Plain),
            (Stack::Tls(s), Socket::Tls(k)) => s.close(k).map_err(NetError::Tls),
            (Stack::Rustls(s), Socket::Rustls(k)) => s.close(*k).map_err(NetError::Rustls),
            _ => Err(NetError::WrongSocket),
        }
    }
}

/// Sleeps in the kernel while waiting, plain or TLS.
#[derive(Debug, Default, Clone, Copy)]
pub struct Waiter;

impl Wait<Stack> for Waiter {
    fn wait_readable(&mut self, stack: &mut Stack, socket: &mut Socket, timeout_ms: u32) {
        match (stack, socket) {
            (Stack::Plain(s), Socket::Plain(k)) => StdWait.wait_readable(s, k, timeout_ms),
            (Stack::Tls(s), Socket::Tls(k)) => s.wait_readable(k, timeout_ms),
            (Stack::Rustls(s), Socket::Rustls(k)) => s.wait_readable(k, timeout_ms),
            _ => std::thread::sleep(std::time::Duration::from_millis(u64::from(timeout_ms))),
        }
    }

    fn idle(&mut self, stack: &mut Stack, timeout_ms: u32) {
        match stack {
            Stack::Plain(s) => StdWait.idle(s, timeout_ms),
            Stack::Tls(s) => s.idle(timeout_ms),
            Stack::Rustls(s) => s.idle(timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capath_reads_pem_crt_and_hashed_links_only() {
        for name in ["ca.pem", "ca.crt", "9d66eef0.0", "ABCDEF01.12"] {
            assert!(capath_candidate(name), "{name}");
        }
        for name in ["README", "ca.key", "9d66eef0.r0", "9d66eef.0", "9d66eef0."] {
            assert!(!capath_candidate(name), "{name}");
        }
    }
}
