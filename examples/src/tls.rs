//! What the TLS examples share: PEM files read into DER, and a client over
//! `TlsStack<StdTcpStack>` that verifies the broker against `--cafile`
//! (and presents `--cert`/`--key` when given).

use rand_core::OsRng;
use umqtt_simple::{Client, Options};
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
use umqtt_transports::tls::{SystemTime, TlsBuffers, TlsOptions, TlsStack, TlsWait, pem};

use crate::Args;

/// The TLS stack of the examples: std TCP underneath, the OS random
/// generator, the system clock for certificate dates.
pub type TlsStd<'a> = TlsStack<'a, StdTcpStack, StdClock, StdWait, OsRng, SystemTime>;

/// A client over TLS.
pub type TlsClient<'a> = Client<'a, TlsStd<'a>, StdClock, TlsWait>;

/// Full TLS records: 16 640 bytes (a server may send records that large).
pub const RECORD_BUFFER: usize = 16_640;

/// The DER of the first PEM block labelled like `label` in `path`.
pub fn read_der(path: &str, label: &str) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let mut der = vec![0u8; text.len()];
    let n = pem::decode(&text, label, &mut der)
        .map_err(|e| format!("{path}: {e}"))?
        .len();
    der.truncate(n);
    Ok(der)
}

/// The certificates and key named by `--cafile`, `--cert` and `--key`, as DER.
pub struct Credentials {
    ca: Vec<u8>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl Credentials {
    /// Reads the files; `--cafile` is required, `--cert` and `--key` go
    /// together.
    pub fn read(args: &Args) -> Result<Self, String> {
        let cafile = args
            .cafile
            .as_deref()
            .ok_or("give the broker's CA with --cafile")?;
        let client = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => Some((
                read_der(cert, "CERTIFICATE")?,
                read_der(key, "PRIVATE KEY")?,
            )),
            (None, None) => None,
            _ => return Err("--cert and --key go together".into()),
        };
        Ok(Credentials {
            ca: read_der(cafile, "CERTIFICATE")?,
            client,
        })
    }

    /// The TLS options for a broker called `host` (the name its certificate
    /// must carry).
    pub fn options<'a>(&'a self, host: &'a str) -> TlsOptions<'a> {
        let options = TlsOptions::new(host).ca(&self.ca);
        match &self.client {
            Some((cert, key)) => options.client_certificate(cert, key),
            None => options,
        }
    }
}

/// A client over TLS, not connected yet: `buffers` are the TLS record
/// buffers, `tx` and `rx` the MQTT ones.
pub fn tls_client<'a>(
    buffers: &'a TlsBuffers<'a>,
    tls: TlsOptions<'a>,
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
) -> TlsClient<'a> {
    let stack = TlsStack::new(
        StdTcpStack::new(),
        StdWait::new(),
        StdClock::new(),
        OsRng,
        buffers,
        tls,
    )
    .with_time(SystemTime);
    // `TlsWait` waits for a whole record with the std waiter underneath, so
    // `wait_msg` sleeps in the kernel as it does without TLS.
    Client::new(stack, StdClock::new(), tx, rx, options).with_waiter(TlsWait)
}
