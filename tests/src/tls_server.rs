//! A scripted TLS 1.3 server on loopback, for hostile-server tests of the
//! TLS client (and for recording real handshakes as fuzz seeds).
//!
//! It does a real TLS 1.3 handshake (P-256 ECDHE, TLS_AES_128_GCM_SHA256,
//! the RFC 8446 key schedule, a P-256 certificate made by `openssl` and a
//! real CertificateVerify and Finished), but its encrypted flight is a
//! [`Script`]: each server handshake message can be left out, reordered,
//! corrupted, repeated or added, records can be cut anywhere, and
//! post-handshake messages (KeyUpdate, CertificateRequest,
//! NewSessionTicket, empty or zero-length records) follow the client's
//! Finished. It decrypts everything the client sends and reports it
//! ([`Seen`]), and speaks just enough MQTT to let a client connect, publish
//! and receive its message back: CONNECT → CONNACK, PUBLISH (QoS 0) echoed,
//! PINGREQ → PINGRESP.
//!
//! Test code: it panics on what a test would get wrong (its own crypto), and
//! stops at the first thing from the client it cannot read.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use sha2::{Digest, Sha256};

use crate::pki::openssl;
use crate::scratch_dir;

/// How long the server waits for the client before giving up.
const CLIENT_SILENCE: Duration = Duration::from_secs(10);

const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const CHANGE_CIPHER_SPEC: u8 = 20;

/// The server's certificate and key, and the CA that signed it (DER).
#[derive(Clone)]
pub struct TlsIdentity {
    /// The CA certificate to give the client.
    pub ca: Vec<u8>,
    /// The server's certificate, for `localhost`.
    pub cert: Vec<u8>,
    /// The server's P-256 key.
    pub key: p256::SecretKey,
    /// The same key, SEC1 DER (for a client that presents this
    /// certificate as its own).
    pub key_der: Vec<u8>,
}

impl TlsIdentity {
    /// A P-256 CA and a P-256 certificate for `localhost` it signed, made
    /// with `openssl` in a scratch directory.
    pub fn generate(tag: &str) -> Self {
        let dir = scratch_dir(&format!("tls-server-{tag}"));
        let run = |args: &[&str]| openssl(&dir, args);
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ]);
        run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha256",
            "-days",
            "30",
            "-subj",
            "/CN=umqtt test CA",
            "-out",
            "ca.crt",
        ]);
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "server.key",
        ]);
        run(&[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "server.ext",
            "-outform",
            "DER",
            "-out",
            "server.der",
        ]);
        run(&["x509", "-in", "ca.crt", "-outform", "DER", "-out", "ca.der"]);
        run(&[
            "ec",
            "-in",
            "server.key",
            "-outform",
            "DER",
            "-out",
            "server.key.der",
        ]);
        let read = |name: &str| std::fs::read(dir.join(name)).expect("read openssl output");
        let identity = TlsIdentity {
            ca: read("ca.der"),
            cert: read("server.der"),
            key: p256::SecretKey::from_sec1_der(&read("server.key.der")).expect("P-256 key"),
            key_der: read("server.key.der"),
        };
        let _ = std::fs::remove_dir_all(&dir);
        identity
    }
}

/// One server handshake message of the encrypted flight.
#[derive(Clone, Debug)]
pub enum Msg {
    /// EncryptedExtensions, empty.
    EncryptedExtensions,
    /// The server's certificate (no chain).
    Certificate,
    /// A CertificateVerify signed with the server's key
    /// (ecdsa_secp256r1_sha256) over the transcript so far.
    CertificateVerify,
    /// A CertificateVerify whose signature is over the wrong bytes.
    ForgedCertificateVerify,
    /// A CertificateVerify naming signature scheme `scheme` with the bytes
    /// of a real P-256 signature (e.g. RSA-PSS 0x0804 over the EC key).
    CertificateVerifyWithScheme(u16),
    /// The server's Finished over the transcript so far.
    Finished,
    /// A CertificateRequest (empty context, signature_algorithms).
    CertificateRequest,
    /// Raw handshake message bytes (type, length, body).
    Raw(Vec<u8>),
}

/// One encrypted record of the server's flight.
#[derive(Clone, Debug)]
pub enum Rec {
    /// These handshake messages, coalesced in one record.
    Handshake(Vec<Msg>),
    /// A record whose inner plaintext (content, content type, padding) is
    /// exactly these bytes: `[]` has no content type at all, `[22]` is a
    /// zero-length handshake record.
    Inner(Vec<u8>),
    /// These bytes as they are, unencrypted (a whole record: header and
    /// body), not in the transcript.
    Plain(Vec<u8>),
    /// The unencrypted record `record` sent again and again for `ms`
    /// milliseconds (or until the client stops reading).
    Flood {
        /// The whole record, header and body.
        record: Vec<u8>,
        /// How long the flood lasts.
        ms: u64,
    },
}

/// A message the server sends after the client's Finished.
#[derive(Clone, Debug)]
pub enum Post {
    /// KeyUpdate; the server switches to its next keys after it.
    KeyUpdate {
        /// Whether the client is asked to update its keys too.
        requested: bool,
    },
    /// A post-handshake CertificateRequest.
    CertificateRequest,
    /// A NewSessionTicket.
    NewSessionTicket,
    /// A record with exactly this inner plaintext (see [`Rec::Inner`]).
    Inner(Vec<u8>),
    /// These bytes as they are, unencrypted (see [`Rec::Plain`]).
    Plain(Vec<u8>),
    /// The record with this inner plaintext, encrypted anew again and again
    /// for `ms` milliseconds (or until the client stops reading).
    Flood {
        /// The inner plaintext of each record.
        inner: Vec<u8>,
        /// How long the flood lasts.
        ms: u64,
    },
}

/// What the server sends.
#[derive(Clone, Debug)]
pub struct Script {
    /// The encrypted flight after ServerHello.
    pub flight: Vec<Rec>,
    /// After the client's Finished.
    pub after: Vec<Post>,
    /// Send each MQTT reply record in pieces (see [`Trickle`]).
    pub trickle: Option<Trickle>,
}

/// How the server sends each of its MQTT reply records: cut at these byte
/// offsets of the record (header included), with a pause after each piece,
/// so that a client waiting with short deadlines gives up in the middle of
/// a record.
#[derive(Clone, Debug)]
pub struct Trickle {
    /// Where the record is cut (increasing offsets).
    pub cuts: Vec<usize>,
    /// The pause after each piece but the last.
    pub pause_ms: u64,
}

impl Script {
    /// The honest flight: EncryptedExtensions, Certificate,
    /// CertificateVerify, Finished, in one record.
    pub fn honest() -> Self {
        Script::coalesced(vec![
            Msg::EncryptedExtensions,
            Msg::Certificate,
            Msg::CertificateVerify,
            Msg::Finished,
        ])
    }

    /// `msgs` coalesced in one record.
    pub fn coalesced(msgs: Vec<Msg>) -> Self {
        Script {
            flight: vec![Rec::Handshake(msgs)],
            after: Vec::new(),
            trickle: None,
        }
    }

    /// `msgs`, each in a record of its own.
    pub fn one_per_record(msgs: Vec<Msg>) -> Self {
        Script {
            flight: msgs.into_iter().map(|m| Rec::Handshake(vec![m])).collect(),
            after: Vec::new(),
            trickle: None,
        }
    }

    /// The same, with every MQTT reply record sent in pieces.
    pub fn trickled(mut self, trickle: Trickle) -> Self {
        self.trickle = Some(trickle);
        self
    }

    /// The same, followed by `after` once the client finished.
    pub fn then(mut self, after: Vec<Post>) -> Self {
        self.after = after;
        self
    }
}

/// What the server saw of the client.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// A ClientHello arrived.
    pub client_hello: bool,
    /// The client's Finished arrived (it accepted the server's flight).
    pub client_finished: bool,
    /// The descriptions of the alerts the client sent.
    pub alerts: Vec<u8>,
    /// All application data the client sent, decrypted.
    pub application_data: Vec<u8>,
    /// The MQTT packet types (first byte >> 4) in it.
    pub mqtt_packets: Vec<u8>,
    /// The client's KeyUpdate messages, by `update_requested`.
    pub client_key_updates: Vec<bool>,
    /// The length of the certificate_list of each Certificate message the
    /// client sent in its flight (0: an empty one, no certificate).
    pub client_certificates: Vec<usize>,
    /// Records that did not decrypt.
    pub undecryptable: usize,
    /// Every byte the server sent, in order (a fuzz seed).
    pub sent: Vec<u8>,
    /// Every byte the client sent, in order.
    pub received: Vec<u8>,
}

impl Seen {
    /// Whether the client sent any application data (MQTT) at all.
    pub fn sent_application_data(&self) -> bool {
        !self.application_data.is_empty()
    }
}

/// A running scripted server.
pub struct TlsServer {
    addr: SocketAddr,
    thread: Option<JoinHandle<Seen>>,
}

impl TlsServer {
    /// Listens on a free loopback port and serves one client with `script`.
    pub fn start(identity: &TlsIdentity, script: Script) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let identity = identity.clone();
        let thread = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            stream
                .set_read_timeout(Some(CLIENT_SILENCE))
                .expect("read timeout");
            let mut conn = Conn {
                stream,
                seen: Seen::default(),
                transcript: Sha256::new(),
            };
            conn.serve(&identity, &script);
            conn.seen
        });
        TlsServer {
            addr,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the server to end (the client closed, or was silent for
    /// 10 s) and returns what it saw.
    pub fn seen(mut self) -> Seen {
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(seen) => seen,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

// ---------------------------------------------------------------------------
// Key schedule (RFC 8446 §7.1), SHA-256
// ---------------------------------------------------------------------------

fn expand_label(secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
    let hk = Hkdf::<Sha256>::from_prk(secret).expect("PRK length");
    let full = format!("tls13 {label}");
    let mut info = Vec::new();
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let mut out = vec![0; len];
    hk.expand(&info, &mut out).expect("expand length");
    out
}

fn extract(salt: &[u8], ikm: &[u8]) -> Vec<u8> {
    Hkdf::<Sha256>::extract(Some(salt), ikm).0.to_vec()
}

fn empty_hash() -> Vec<u8> {
    Sha256::digest([]).to_vec()
}

/// The keys of one direction.
struct Keys {
    secret: Vec<u8>,
    cipher: Aes128Gcm,
    iv: Vec<u8>,
    seq: u64,
}

impl Keys {
    fn new(secret: Vec<u8>) -> Self {
        let key = expand_label(&secret, "key", &[], 16);
        let iv = expand_label(&secret, "iv", &[], 12);
        Keys {
            cipher: Aes128Gcm::new_from_slice(&key).expect("key length"),
            secret,
            iv,
            seq: 0,
        }
    }

    /// The next keys after a KeyUpdate.
    fn update(&mut self) {
        *self = Keys::new(expand_label(&self.secret, "traffic upd", &[], 32));
    }

    fn nonce(&self) -> Vec<u8> {
        let mut nonce = self.iv.clone();
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// A whole record carrying `inner` (already with its content type).
    fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        let len = (inner.len() + 16) as u16;
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        let mut body = inner.to_vec();
        self.cipher
            .encrypt_in_place(Nonce::from_slice(&self.nonce()), &header, &mut body)
            .expect("encrypt");
        self.seq += 1;
        let mut record = header.to_vec();
        record.extend_from_slice(&body);
        record
    }

    /// The inner plaintext of a record, or `None` if it does not decrypt.
    fn open(&mut self, header: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        let mut plain = body.to_vec();
        self.cipher
            .decrypt_in_place(Nonce::from_slice(&self.nonce()), header, &mut plain)
            .ok()?;
        self.seq += 1;
        Some(plain)
    }
}

/// A handshake message: type, 24-bit length, body.
fn handshake_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// The inner plaintext with its content type and no padding.
fn inner(content: &[u8], kind: u8) -> Vec<u8> {
    let mut v = content.to_vec();
    v.push(kind);
    v
}

/// The handshake messages (type, body) coalesced in `content`; stops at
/// one cut short.
fn handshake_messages(mut content: &[u8]) -> Vec<(u8, &[u8])> {
    let mut messages = Vec::new();
    while let [kind, a, b, c, rest @ ..] = content {
        let len = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
        let Some(body) = rest.get(..len) else {
            break;
        };
        messages.push((*kind, body));
        content = &rest[len..];
    }
    messages
}

/// Splits an inner plaintext into content and content type.
fn split_inner(mut plain: Vec<u8>) -> Option<(u8, Vec<u8>)> {
    while plain.last() == Some(&0) {
        plain.pop();
    }
    let kind = plain.pop()?;
    Some((kind, plain))
}

struct Conn {
    stream: TcpStream,
    seen: Seen,
    transcript: Sha256,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.seen.sent.extend_from_slice(bytes);
        self.stream.write_all(bytes).is_ok()
    }

    /// Sends `bytes` in the pieces `trickle` says (all at once without).
    fn send_trickled(&mut self, bytes: &[u8], trickle: Option<&Trickle>) -> bool {
        let Some(trickle) = trickle else {
            return self.send(bytes);
        };
        let mut from = 0;
        for &cut in &trickle.cuts {
            let cut = cut.clamp(from, bytes.len());
            if !self.send(&bytes[from..cut]) {
                return false;
            }
            let _ = self.stream.flush();
            std::thread::sleep(Duration::from_millis(trickle.pause_ms));
            from = cut;
        }
        self.send(&bytes[from..])
    }

    /// Sends what `next` makes, again and again, for `ms` milliseconds;
    /// false once the client stopped reading (the connection is gone).
    fn flood(&mut self, ms: u64, mut next: impl FnMut() -> Vec<u8>) -> bool {
        let end = std::time::Instant::now() + Duration::from_millis(ms);
        while std::time::Instant::now() < end {
            // Not kept in `seen.sent`: a flood is no fuzz seed.
            let batch: Vec<u8> = (0..64).flat_map(|_| next()).collect();
            if self.stream.write_all(&batch).is_err() {
                return false;
            }
        }
        true
    }

    /// The next record (header, body), or `None` at EOF or silence.
    fn record(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut header = vec![0; 5];
        self.stream.read_exact(&mut header).ok()?;
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).ok()?;
        self.seen.received.extend_from_slice(&header);
        self.seen.received.extend_from_slice(&body);
        Some((header, body))
    }

    fn hash(&self) -> Vec<u8> {
        self.transcript.clone().finalize().to_vec()
    }

    fn serve(&mut self, identity: &TlsIdentity, script: &Script) {
        // ClientHello.
        let Some((header, hello)) = self.record() else {
            return;
        };
        if header[0] != HANDSHAKE {
            return;
        }
        self.seen.client_hello = true;
        let Some((session_id, client_share)) = parse_client_hello(&hello) else {
            panic!("the scripted server could not read the ClientHello");
        };
        self.transcript.update(&hello);

        // ServerHello.
        let secret = p256::ecdh::EphemeralSecret::random(&mut rand_core::OsRng);
        let public = p256::EncodedPoint::from(secret.public_key());
        let client_key =
            p256::PublicKey::from_sec1_bytes(&client_share).expect("client P-256 key share");
        let shared = secret.diffie_hellman(&client_key);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x5a; 32]);
        body.push(session_id.len() as u8);
        body.extend_from_slice(&session_id);
        body.extend_from_slice(&[0x13, 0x01, 0]);
        let mut ext = vec![0, 0x2b, 0, 2, 3, 4, 0, 0x33, 0, 69, 0, 0x17, 0, 65];
        ext.extend_from_slice(public.as_bytes());
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let server_hello = handshake_message(2, &body);
        self.transcript.update(&server_hello);
        let mut record = vec![HANDSHAKE, 3, 3];
        record.extend_from_slice(&(server_hello.len() as u16).to_be_bytes());
        record.extend_from_slice(&server_hello);
        if !self.send(&record) {
            return;
        }

        // Handshake keys.
        let early = extract(&[0; 32], &[0; 32]);
        let derived = expand_label(&early, "derived", &empty_hash(), 32);
        let handshake_secret = extract(&derived, shared.raw_secret_bytes());
        let hash = self.hash();
        let client_hs = expand_label(&handshake_secret, "c hs traffic", &hash, 32);
        let server_hs = expand_label(&handshake_secret, "s hs traffic", &hash, 32);
        let mut write = Keys::new(server_hs.clone());
        let mut read = Keys::new(client_hs);

        // The scripted flight.
        let signing = SigningKey::from(&identity.key);
        for rec in &script.flight {
            let content = match rec {
                Rec::Plain(record) => {
                    if !self.send(record) {
                        return;
                    }
                    continue;
                }
                Rec::Flood { record, ms } => {
                    if !self.flood(*ms, || record.clone()) {
                        return;
                    }
                    continue;
                }
                Rec::Inner(bytes) => bytes.clone(),
                Rec::Handshake(msgs) => {
                    let mut content = Vec::new();
                    for msg in msgs {
                        let m = self.message(msg, identity, &signing, &server_hs);
                        self.transcript.update(&m);
                        content.extend_from_slice(&m);
                    }
                    inner(&content, HANDSHAKE)
                }
            };
            let record = write.seal(&content);
            if !self.send(&record) {
                return;
            }
        }

        // Application keys (transcript up to the server's Finished).
        let master_derived = expand_label(&handshake_secret, "derived", &empty_hash(), 32);
        let master = extract(&master_derived, &[0; 32]);
        let hash = self.hash();
        let client_ap = expand_label(&master, "c ap traffic", &hash, 32);
        let server_ap = expand_label(&master, "s ap traffic", &hash, 32);

        // The client's answer: its Finished, or an alert.
        loop {
            let Some((header, body)) = self.record() else {
                return;
            };
            match header[0] {
                ALERT => {
                    self.seen.alerts.extend(body.get(1).copied());
                    return;
                }
                CHANGE_CIPHER_SPEC => continue,
                APPLICATION_DATA => {}
                _ => return,
            }
            let Some((kind, content)) = read.open(&header, &body).and_then(split_inner) else {
                self.seen.undecryptable += 1;
                return;
            };
            match (kind, content.first()) {
                (ALERT, _) => {
                    self.seen.alerts.extend(content.get(1).copied());
                    return;
                }
                (HANDSHAKE, Some(_)) => {
                    let mut finished = false;
                    for (kind, body) in handshake_messages(&content) {
                        match kind {
                            // Certificate: context length, context, then the
                            // 24-bit length of the certificate_list.
                            11 => {
                                let context = usize::from(body.first().copied().unwrap_or(0));
                                let list = body.get(1 + context..4 + context).map_or(0, |l| {
                                    usize::from(l[0]) << 16
                                        | usize::from(l[1]) << 8
                                        | usize::from(l[2])
                                });
                                self.seen.client_certificates.push(list);
                            }
                            20 => finished = true,
                            _ => {}
                        }
                    }
                    if finished {
                        self.seen.client_finished = true;
                        break;
                    }
                }
                // Anything else before the client's Finished: record it.
                (APPLICATION_DATA, _) => self.seen.application_data.extend_from_slice(&content),
                _ => {}
            }
        }
        let mut write = Keys::new(server_ap);
        let mut read = Keys::new(client_ap);

        for post in &script.after {
            let content = match post {
                Post::KeyUpdate { requested } => {
                    inner(&handshake_message(24, &[u8::from(*requested)]), HANDSHAKE)
                }
                Post::CertificateRequest => inner(&certificate_request(), HANDSHAKE),
                Post::NewSessionTicket => {
                    // lifetime, age_add, nonce (1 byte), ticket (4 bytes), no extensions.
                    let body = [0, 0, 0x0e, 0x10, 1, 2, 3, 4, 1, 9, 0, 4, 1, 2, 3, 4, 0, 0];
                    inner(&handshake_message(4, &body), HANDSHAKE)
                }
                Post::Inner(bytes) => bytes.clone(),
                Post::Plain(record) => {
                    if !self.send(record) {
                        return;
                    }
                    continue;
                }
                Post::Flood { inner, ms } => {
                    if !self.flood(*ms, || write.seal(inner)) {
                        return;
                    }
                    continue;
                }
            };
            let record = write.seal(&content);
            if !self.send(&record) {
                return;
            }
            if let Post::KeyUpdate { .. } = post {
                write.update();
            }
        }

        // MQTT, until the client closes.
        let mut pending = Vec::new();
        loop {
            let Some((header, body)) = self.record() else {
                return;
            };
            if header[0] == ALERT {
                self.seen.alerts.extend(body.get(1).copied());
                return;
            }
            let Some((kind, content)) = read.open(&header, &body).and_then(split_inner) else {
                self.seen.undecryptable += 1;
                return;
            };
            match kind {
                ALERT => {
                    self.seen.alerts.extend(content.get(1).copied());
                    return;
                }
                HANDSHAKE if content.first() == Some(&24) => {
                    self.seen
                        .client_key_updates
                        .push(content.get(4) == Some(&1));
                    read.update();
                }
                APPLICATION_DATA => {
                    self.seen.application_data.extend_from_slice(&content);
                    pending.extend_from_slice(&content);
                    while let Some((packet, rest)) = mqtt_packet(&pending) {
                        let reply = self.mqtt(&packet);
                        pending = rest;
                        if let Some(reply) = reply {
                            let record = write.seal(&inner(&reply, APPLICATION_DATA));
                            if !self.send_trickled(&record, script.trickle.as_ref()) {
                                return;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The bytes of `msg`.
    fn message(
        &self,
        msg: &Msg,
        identity: &TlsIdentity,
        signing: &SigningKey,
        server_hs: &[u8],
    ) -> Vec<u8> {
        let signed_content = |hash: &[u8]| {
            let mut m = vec![0x20; 64];
            m.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
            m.extend_from_slice(hash);
            m
        };
        let verify = |scheme: u16, signature: &[u8]| {
            let mut body = scheme.to_be_bytes().to_vec();
            body.extend_from_slice(&(signature.len() as u16).to_be_bytes());
            body.extend_from_slice(signature);
            handshake_message(15, &body)
        };
        match msg {
            Msg::EncryptedExtensions => handshake_message(8, &[0, 0]),
            Msg::Certificate => {
                let cert = &identity.cert;
                let mut entry = (cert.len() as u32).to_be_bytes()[1..].to_vec();
                entry.extend_from_slice(cert);
                entry.extend_from_slice(&[0, 0]);
                let mut body = vec![0];
                body.extend_from_slice(&(entry.len() as u32).to_be_bytes()[1..]);
                body.extend_from_slice(&entry);
                handshake_message(11, &body)
            }
            Msg::CertificateVerify => {
                let signature: DerSignature = signing.sign(&signed_content(&self.hash()));
                verify(0x0403, signature.as_bytes())
            }
            Msg::ForgedCertificateVerify => {
                let signature: DerSignature = signing.sign(&signed_content(&[0xee; 32]));
                verify(0x0403, signature.as_bytes())
            }
            Msg::CertificateVerifyWithScheme(scheme) => {
                let signature: DerSignature = signing.sign(&signed_content(&self.hash()));
                verify(*scheme, signature.as_bytes())
            }
            Msg::Finished => {
                let key = expand_label(server_hs, "finished", &[], 32);
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC key");
                mac.update(&self.hash());
                handshake_message(20, &mac.finalize().into_bytes())
            }
            Msg::CertificateRequest => certificate_request(),
            Msg::Raw(bytes) => bytes.clone(),
        }
    }

    /// The answer to one MQTT packet.
    fn mqtt(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let kind = packet.first()? >> 4;
        self.seen.mqtt_packets.push(kind);
        match kind {
            1 => Some(vec![0x20, 2, 0, 0]),
            3 => Some(packet.to_vec()),
            12 => Some(vec![0xd0, 0]),
            _ => None,
        }
    }
}

/// A CertificateRequest: empty context, signature_algorithms
/// (ecdsa_secp256r1_sha256).
fn certificate_request() -> Vec<u8> {
    handshake_message(13, &[0, 0, 8, 0, 0x0d, 0, 4, 0, 2, 4, 3])
}

/// The first whole MQTT packet of `bytes` and the rest.
fn mqtt_packet(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut len = 0usize;
    let mut at = 1;
    for shift in 0..4 {
        let b = *bytes.get(at)?;
        at += 1;
        len |= usize::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            let end = at + len;
            if bytes.len() < end {
                return None;
            }
            return Some((bytes[..end].to_vec(), bytes[end..].to_vec()));
        }
    }
    None
}

/// The legacy session id and the P-256 key share of a ClientHello message.
fn parse_client_hello(msg: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut at = 4 + 2 + 32;
    let sid_len = usize::from(*msg.get(at)?);
    let session_id = msg.get(at + 1..at + 1 + sid_len)?.to_vec();
    at += 1 + sid_len;
    let suites = usize::from(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    at += 2 + suites;
    let compression = usize::from(*msg.get(at)?);
    at += 1 + compression;
    let ext_len = usize::from(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    at += 2;
    let mut exts = msg.get(at..at + ext_len)?;
    while exts.len() >= 4 {
        let kind = u16::from_be_bytes([exts[0], exts[1]]);
        let len = usize::from(u16::from_be_bytes([exts[2], exts[3]]));
        let data = exts.get(4..4 + len)?;
        if kind == 0x33 {
            let mut shares = data.get(2..)?;
            while shares.len() >= 4 {
                let group = u16::from_be_bytes([shares[0], shares[1]]);
                let klen = usize::from(u16::from_be_bytes([shares[2], shares[3]]));
                let key = shares.get(4..4 + klen)?;
                if group == 0x17 {
                    return Some((session_id, key.to_vec()));
                }
                shares = &shares[4 + klen..];
            }
        }
        exts = &exts[4 + len..];
    }
    None
}

/// The alert a client sends for a message out of order.
pub const UNEXPECTED_MESSAGE: u8 = 10;
/// The alert a client sends for a field it cannot accept.
pub const ILLEGAL_PARAMETER: u8 = 47;
/// The alert a client sends when a signature or Finished does not verify.
pub const DECRYPT_ERROR: u8 = 51;

/// What became of one MQTT session over TLS with the scripted server: the
/// blocking and the async client (`tls_hostile.rs`, each case for both)
/// are judged alike; `E` is the TLS stack's error.
#[derive(Debug)]
pub struct Outcome<E> {
    /// How the client's connect (TLS handshake, CONNECT, CONNACK) ended.
    pub connect: Result<(), umqtt_simple::Error<E>>,
    /// The payloads of the PUBLISH packets that came back.
    pub echoed: Vec<Vec<u8>>,
    /// What the server saw.
    pub seen: Seen,
}

/// The connect was refused with `expected` (compared as `Debug`: the two
/// stacks' errors differ in their I/O error type only), the client sent no
/// application data, and (if given) the alert `alert`.
pub fn assert_refused<E: std::fmt::Debug>(
    outcome: &Outcome<umqtt_transports::tls::TlsStackError<E>>,
    expected: umqtt_transports::tls::TlsStackError<E>,
    alert: Option<u8>,
) {
    match &outcome.connect {
        Err(umqtt_simple::Error::Network(e)) => assert_eq!(
            format!("{e:?}"),
            format!("{expected:?}"),
            "refused for another reason: {e}"
        ),
        other => panic!("expected a refusal with {expected:?}, got {other:?}"),
    }
    assert!(
        !outcome.seen.sent_application_data(),
        "the client sent {} bytes of application data to an unauthenticated server",
        outcome.seen.application_data.len()
    );
    if let Some(alert) = alert {
        assert_eq!(outcome.seen.alerts, [alert], "the client's alert");
    }
}

/// The session went on: the PUBLISH came back, nothing failed to decrypt.
pub fn assert_session_goes_on<E: std::fmt::Debug>(outcome: &Outcome<E>) {
    assert!(
        outcome.connect.is_ok(),
        "connect failed: {:?}",
        outcome.connect
    );
    assert_eq!(outcome.echoed, [b"still here".to_vec()], "the echo");
    assert_eq!(
        outcome.seen.undecryptable, 0,
        "records the server could not decrypt"
    );
    assert_eq!(
        outcome.seen.mqtt_packets,
        [1, 3, 14],
        "CONNECT, PUBLISH, DISCONNECT"
    );
}
