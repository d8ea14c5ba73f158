//! [`RustlsConnect`]: the rustls engine for the async clients, over any
//! embedded-nal-async `TcpConnect`.
//!
//! The same options, verification and errors as [`RustlsStack`]: the
//! configuration is built by [`RustlsOptions`], rustls's errors are named by
//! the same `classify`. Only the I/O differs: records go through the inner
//! connection's embedded-io-async `Read` and `Write`.
//!
//! [`RustlsStack`]: super::RustlsStack

use core::net::SocketAddr;
use std::io::Read as _;
use std::sync::Arc;
use std::vec::Vec;

use ::rustls::pki_types::ServerName;
use ::rustls::{ClientConfig, ClientConnection};
use embedded_io_async::{ErrorType, Read, Write};
use embedded_nal_async::TcpConnect;

use super::error::{Context, classify, named};
use super::{ConfigError, RustlsError, RustlsOptions};

/// How many TLS bytes one read of the inner connection takes at most.
const READ_CHUNK: usize = 4096;

/// TLS 1.2 and 1.3 (rustls) over any embedded-nal-async `TcpConnect`: give
/// `umqtt_simple::asynch::Client::new` a `&RustlsConnect` where it took the
/// plain stack. Its connections are [`RustlsStream`]s.
///
/// The handshake runs inside `connect`, which the async client races
/// against its connect deadline, so TCP connect, handshake and CONNACK share
/// it. A read the client drops when its deadline passes loses nothing: the
/// TLS bytes of a record are handed to rustls only once a read of the inner
/// connection completed.
///
/// ```no_run
/// # async fn demo<N: embedded_nal_async::TcpConnect, T: umqtt_simple::Timer>(
/// #     net: &N, timer: T, broker: core::net::SocketAddr,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// use umqtt_simple::Options;
/// use umqtt_simple::asynch::Client;
/// use umqtt_transports::rustls::{RustlsConnect, RustlsOptions};
///
/// let options = RustlsOptions::new("broker.example.com").system_roots();
/// let tls = RustlsConnect::new(net, &options)?;
/// let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
/// let mut client = Client::new(&tls, timer, &mut tx, &mut rx, Options::new("umqtt_async"));
/// client.connect(broker).await.map_err(|e| format!("{e:?}"))?;
/// # Ok(()) }
/// ```
pub struct RustlsConnect<'n, N> {
    inner: &'n N,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    cx: Context,
    insecure: bool,
}

impl<'n, N: TcpConnect> RustlsConnect<'n, N> {
    /// TLS over `inner`, connecting as `options` say. Reads the CAs and the
    /// client key now: an error here says what is wrong with them.
    pub fn new(inner: &'n N, options: &RustlsOptions) -> Result<Self, ConfigError> {
        let (config, server_name) = options.build()?;
        Ok(RustlsConnect {
            inner,
            config,
            server_name,
            cx: Context {
                handshaking: true,
                client_certificate: options.has_client_certificate(),
                versions: options.tls_versions(),
            },
            insecure: options.insecure(),
        })
    }
}

impl<N: TcpConnect> TcpConnect for RustlsConnect<'_, N> {
    type Error = RustlsError<N::Error>;
    type Connection<'a>
        = RustlsStream<N::Connection<'a>>
    where
        Self: 'a;

    async fn connect<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Result<Self::Connection<'a>, Self::Error> {
        let tcp = self.inner.connect(remote).await.map_err(RustlsError::Tcp)?;
        if self.insecure {
            log::warn!(
                "TLS to {remote}: the server's certificate is NOT verified (dangerously_skip_verification)"
            );
        }
        let conn = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(|e| named(classify(e, self.cx), &self.server_name))?;
        let mut stream = RustlsStream {
            tcp,
            conn,
            cx: self.cx,
            server_name: self.server_name.clone(),
        };
        stream.handshake().await?;
        log::debug!(
            "TLS to {remote}: {:?}, {:?}, ALPN {:?}",
            stream.conn.protocol_version(),
            stream.conn.negotiated_cipher_suite().map(|s| s.suite()),
            stream
                .conn
                .alpn_protocol()
                .map(std::string::String::from_utf8_lossy)
        );
        Ok(stream)
    }
}

/// A TLS session of a [`RustlsConnect`] over the inner connection `T`: an
/// embedded-io-async stream of the plaintext.
pub struct RustlsStream<T> {
    tcp: T,
    conn: ClientConnection,
    cx: Context,
    server_name: ServerName<'static>,
}

impl<T> RustlsStream<T> {
    /// The TLS version the session speaks.
    pub fn protocol_version(&self) -> Option<::rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The ALPN protocol the server chose, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    fn classify<E>(&self, e: ::rustls::Error) -> RustlsError<E> {
        let cx = Context {
            handshaking: self.conn.is_handshaking(),
            ..self.cx
        };
        named(classify(e, cx), &self.server_name)
    }
}

impl<T: Read + Write> RustlsStream<T> {
    /// The whole handshake (its deadline is the caller's: the async client
    /// races `connect` against its connect deadline).
    async fn handshake(&mut self) -> Result<(), RustlsError<T::Error>> {
        while self.conn.is_handshaking() {
            self.send_records().await?;
            if !self.conn.is_handshaking() {
                break;
            }
            self.receive_records().await?;
        }
        // The client's Finished (and certificate, for mutual TLS).
        self.send_records().await
    }

    /// Hands every record rustls has to the inner connection, and flushes it.
    async fn send_records(&mut self) -> Result<(), RustlsError<T::Error>> {
        let mut records = Vec::new();
        while self.conn.wants_write() {
            // Writing into a Vec does not fail.
            if self.conn.write_tls(&mut records).is_err() {
                break;
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut sent = 0;
        while let Some(rest) = records.get(sent..).filter(|r| !r.is_empty()) {
            match self.tcp.write(rest).await {
                Ok(0) => return Err(self.closed()),
                Ok(n) => sent += n,
                Err(e) => return Err(RustlsError::Network(e)),
            }
        }
        self.tcp.flush().await.map_err(RustlsError::Network)
    }

    /// Reads what the inner connection has (waiting for it) into rustls and
    /// processes it, answering what needs an answer.
    async fn receive_records(&mut self) -> Result<(), RustlsError<T::Error>> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self
            .tcp
            .read(&mut chunk)
            .await
            .map_err(RustlsError::Network)?;
        if n == 0 {
            return Err(self.closed());
        }
        let mut tls = chunk.get(..n).unwrap_or_default();
        while !tls.is_empty() {
            if let Err(e) = self.conn.read_tls(&mut tls) {
                return Err(RustlsError::Tls(::rustls::Error::General(std::format!(
                    "{e}"
                ))));
            }
            if let Err(e) = self.conn.process_new_packets() {
                // The alert rustls queued, if the connection takes it.
                let _ = self.send_records().await;
                return Err(self.classify(e));
            }
        }
        if self.conn.wants_write() {
            self.send_records().await?;
        }
        Ok(())
    }

    fn closed(&self) -> RustlsError<T::Error> {
        if self.conn.is_handshaking() {
            RustlsError::ClosedDuringHandshake
        } else {
            RustlsError::Closed
        }
    }
}

impl<T: ErrorType> ErrorType for RustlsStream<T> {
    type Error = RustlsError<T::Error>;
}

impl<T: Read + Write> Read for RustlsStream<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            match self.conn.reader().read(buf) {
                // 0 with room: the server ended the session (close_notify).
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // The connection closed without close_notify.
                Err(_) => return Err(RustlsError::Closed),
            }
            match self.receive_records().await {
                // The inner connection ended: so does the stream.
                Err(RustlsError::Closed) => return Ok(0),
                other => other?,
            }
        }
    }
}

impl<T: Read + Write> Write for RustlsStream<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = std::io::Write::write(&mut self.conn.writer(), buf)
            .map_err(|e| RustlsError::Tls(::rustls::Error::General(std::format!("{e}"))))?;
        self.send_records().await?;
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.send_records().await
    }
}
