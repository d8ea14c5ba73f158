//! A `#![no_std]` static library that links umqtt-simple's publish, subscribe
//! and wait_msg paths against a stack and clock supplied from C. If any
//! dependency pulled in std, this crate would not build (duplicate lang item).
#![no_std]

use core::net::{Ipv4Addr, SocketAddr};

use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind};
use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_transports::Clock;

unsafe extern "C" {
    fn port_now_ms() -> u64;
    fn port_send(buf: *const u8, len: usize) -> isize;
    fn port_recv(buf: *mut u8, len: usize) -> isize;
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

struct CClock;

impl Clock for CClock {
    fn now_ms(&self) -> u64 {
        // SAFETY: a plain C function without arguments.
        unsafe { port_now_ms() }
    }
}

/// Connects, subscribes, publishes and waits for one message; returns 0 on
/// success, a negative number naming the failed step otherwise.
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

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
