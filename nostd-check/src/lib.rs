//! A `#![no_std]` static library that links umqtt-simple's publish, subscribe
//! and wait_msg paths against a stack and clock supplied from C, over plain
//! TCP (feature `plain`) and over the TLS stack (feature `tls`; both by
//! default). If any dependency pulled in std, this crate would not build
//! (duplicate lang item).
#![no_std]

use core::net::{Ipv4Addr, SocketAddr};

use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind};
use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_transports::Clock;

unsafe extern "C" {
    fn port_now_ms() -> u64;
    fn port_send(buf: *const u8, len: usize) -> isize;
    fn port_recv(buf: *mut u8, len: usize) -> isize;
    fn port_random(buf: *mut u8, len: usize);
}

/// A stack whose socket calls go to C functions (a porter's glue, in miniature).
struct CStack;

#[derive(Debug)]
struct CError;

impl TcpError for CError {
    fn kind(&self) -> TcpErrorKind {
        TcpErrorKind::Other
    }
}

impl TcpClientStack for CStack {
    type TcpSocket = ();
    type Error = CError;

    fn socket(&mut self) -> Result<(), CError> {
        Ok(())
    }

    fn connect(&mut self, _: &mut (), _: SocketAddr) -> nb::Result<(), CError> {
        Ok(())
    }

    fn send(&mut self, _: &mut (), buf: &[u8]) -> nb::Result<usize, CError> {
        // SAFETY: the pointer and length come from a live slice.
        match unsafe { port_send(buf.as_ptr(), buf.len()) } {
            n if n > 0 => Ok(n as usize),
            0 => Err(nb::Error::WouldBlock),
            _ => Err(nb::Error::Other(CError)),
        }
    }

    fn receive(&mut self, _: &mut (), buf: &mut [u8]) -> nb::Result<usize, CError> {
        // SAFETY: the pointer and length come from a live slice.
        match unsafe { port_recv(buf.as_mut_ptr(), buf.len()) } {
            n if n > 0 => Ok(n as usize),
            0 => Err(nb::Error::WouldBlock),
            _ => Err(nb::Error::Other(CError)),
        }
    }

    fn close(&mut self, _: ()) -> Result<(), CError> {
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct CClock;

impl Clock for CClock {
    fn now_ms(&self) -> u64 {
        // SAFETY: a plain C function without arguments.
        unsafe { port_now_ms() }
    }
}

/// Connects, subscribes, publishes and waits for one message; returns 0 on
/// success, a negative number naming the failed step otherwise.
#[cfg(feature = "plain")]
#[unsafe(no_mangle)]
pub extern "C" fn umqtt_demo(count: *mut u32) -> i32 {
    let mut tx = [0u8; 512];
    let mut rx = [0u8; 512];
    let mut received = 0u32;
    let mut on_message = |_m: Message<'_>| received += 1;
    let mut client = Client::new(CStack, CClock, &mut tx, &mut rx, Options::new("nostd"));
    client.set_callback(&mut on_message);
    let broker = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 1883);
    let result = (|| {
        client.connect(broker).map_err(|_| -1)?;
        client.subscribe(b"demo/#", QoS::AtLeastOnce).map_err(|_| -2)?;
        client.publish(b"demo/x", b"hello", false, QoS::AtLeastOnce).map_err(|_| -3)?;
        client.wait_msg().map_err(|_| -4)?;
        client.disconnect().map_err(|_| -5)
    })();
    drop(client);
    if !count.is_null() {
        // SAFETY: the caller passes a valid pointer or null.
        unsafe { *count = received };
    }
    match result {
        Ok(()) => 0,
        Err(code) => code,
    }
}

/// The device's random generator, from C.
#[cfg(feature = "tls")]
struct CRng;

#[cfg(feature = "tls")]
impl rand_core::RngCore for CRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // SAFETY: the pointer and length come from a live slice.
        unsafe { port_random(dest.as_mut_ptr(), dest.len()) }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(feature = "tls")]
impl rand_core::CryptoRng for CRng {}

/// The same session over TLS (embedded-tls, no heap): 4 kB records by max
/// fragment length, the CA given by C as DER. Connects, subscribes,
/// publishes and waits for one message, as [`umqtt_demo`] does, so that the
/// two builds differ by the TLS stack alone.
#[cfg(feature = "tls")]
#[unsafe(no_mangle)]
pub extern "C" fn umqtt_tls_demo(ca: *const u8, ca_len: usize, count: *mut u32) -> i32 {
    use umqtt_transports::tls::{MaxFragmentLength, TlsBuffers, TlsOptions, TlsStack, TlsWait};
    if ca.is_null() {
        return -10;
    }
    // SAFETY: the caller passes a valid pointer and length.
    let ca = unsafe { core::slice::from_raw_parts(ca, ca_len) };
    let (mut read, mut write) = ([0u8; 4352], [0u8; 1024]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let options = TlsOptions::new("broker.local")
        .ca(ca)
        .max_fragment_length(MaxFragmentLength::Bits12);
    let stack = TlsStack::new(CStack, umqtt_transports::Spin, CClock, CRng, &buffers, options);
    let mut tx = [0u8; 512];
    let mut rx = [0u8; 512];
    let mut received = 0u32;
    let mut on_message = |_m: Message<'_>| received += 1;
    let mut client =
        Client::new(stack, CClock, &mut tx, &mut rx, Options::new("nostd-tls")).with_waiter(TlsWait);
    client.set_callback(&mut on_message);
    let broker = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 8883);
    let result = (|| {
        client.connect(broker).map_err(|_| -11)?;
        client.subscribe(b"demo/#", QoS::AtLeastOnce).map_err(|_| -12)?;
        client.publish(b"demo/x", b"hello", false, QoS::AtLeastOnce).map_err(|_| -13)?;
        client.wait_msg().map_err(|_| -14)?;
        client.disconnect().map_err(|_| -15)
    })();
    drop(client);
    if !count.is_null() {
        // SAFETY: the caller passes a valid pointer or null.
        unsafe { *count = received };
    }
    match result {
        Ok(()) => 0,
        Err(code) => code,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
