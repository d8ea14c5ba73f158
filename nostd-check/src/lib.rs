//! A `#![no_std]` static library that links umqtt-simple's publish, subscribe
//! and wait_msg paths against a stack and clock supplied from C, over plain
//! TCP (feature `plain`), over the TLS stack (feature `tls`), and through the
//! async client (feature `async`); with `defmt`, its errors go through defmt
//! (all by default). If any dependency pulled in std, this crate would not build
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
    #[cfg(any(feature = "tls", feature = "tls-async"))]
    fn port_random(buf: *mut u8, len: usize);
}

/// A stack whose socket calls go to C functions (a porter's glue, in miniature).
struct CStack;

#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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
        client.connect(broker).map_err(|e| report(e, -1))?;
        client.subscribe(b"demo/#", QoS::AtLeastOnce).map_err(|e| report(e, -2))?;
        client.publish(b"demo/x", b"hello", false, QoS::AtLeastOnce).map_err(|e| report(e, -3))?;
        client.wait_msg().map_err(|e| report(e, -4))?;
        client.disconnect().map_err(|e| report(e, -5))
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

/// Reports a failed step (through defmt with feature `defmt`) and gives
/// its code.
#[cfg(feature = "plain")]
fn report(error: umqtt_simple::Error<CError>, code: i32) -> i32 {
    #[cfg(feature = "defmt")]
    defmt::warn!("umqtt demo step {} failed: {}", code, error);
    #[cfg(not(feature = "defmt"))]
    let _ = error;
    code
}

/// The device's random generator, from C.
#[cfg(any(feature = "tls", feature = "tls-async"))]
struct CRng;

#[cfg(any(feature = "tls", feature = "tls-async"))]
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

#[cfg(any(feature = "tls", feature = "tls-async"))]
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

#[cfg(feature = "async")]
mod async_demo {
    //! The session through the async client: a connection whose reads and
    //! writes go to the same C functions, a timer on the C clock, and the
    //! future polled in a loop with a no-op waker (no executor, no heap).

    use core::future::Future;
    use core::net::{Ipv4Addr, SocketAddr};
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    use umqtt_simple::asynch::Client;
    use umqtt_simple::{Message, Options, QoS};
    use umqtt_transports::{Clock, Timer};

    use super::{CClock, port_recv, port_send};

    #[derive(Debug)]
    pub struct CIoError;

    impl core::fmt::Display for CIoError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("the C port failed")
        }
    }

    impl core::error::Error for CIoError {}

    impl embedded_io_async::Error for CIoError {
        fn kind(&self) -> embedded_io_async::ErrorKind {
            embedded_io_async::ErrorKind::Other
        }
    }

    /// The C glue as an async stack: a call that would block is `Pending`
    /// (and asks to be polled again).
    pub struct CNet;
    pub struct CConnection;

    impl embedded_nal_async::TcpConnect for CNet {
        type Error = CIoError;
        type Connection<'a> = CConnection;

        async fn connect(&self, _: SocketAddr) -> Result<CConnection, CIoError> {
            Ok(CConnection)
        }
    }

    impl embedded_io_async::ErrorType for CConnection {
        type Error = CIoError;
    }

    fn io(result: isize) -> Poll<Result<usize, CIoError>> {
        match result {
            n if n > 0 => Poll::Ready(Ok(n as usize)),
            0 => Poll::Pending,
            _ => Poll::Ready(Err(CIoError)),
        }
    }

    impl embedded_io_async::Read for CConnection {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, CIoError> {
            core::future::poll_fn(|cx| {
                // SAFETY: the pointer and length come from a live slice.
                let polled = io(unsafe { port_recv(buf.as_mut_ptr(), buf.len()) });
                if polled.is_pending() {
                    cx.waker().wake_by_ref();
                }
                polled
            })
            .await
        }
    }

    impl embedded_io_async::Write for CConnection {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, CIoError> {
            core::future::poll_fn(|cx| {
                // SAFETY: the pointer and length come from a live slice.
                let polled = io(unsafe { port_send(buf.as_ptr(), buf.len()) });
                if polled.is_pending() {
                    cx.waker().wake_by_ref();
                }
                polled
            })
            .await
        }

        async fn flush(&mut self) -> Result<(), CIoError> {
            // `port_send` sends as it takes: nothing is kept back.
            Ok(())
        }
    }

    /// A timer on the C clock that asks to be polled until its deadline.
    pub struct CTimer;

    impl Clock for CTimer {
        fn now_ms(&self) -> u64 {
            CClock.now_ms()
        }
    }

    impl Timer for CTimer {
        async fn sleep_until(&mut self, deadline_ms: u64) {
            core::future::poll_fn(|cx| {
                if self.now_ms() >= deadline_ms {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await
        }
    }

    /// Polls `future` until it completes.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
    }

    /// Connects, subscribes, publishes and waits for one message through
    /// the async client, as `umqtt_demo` does through the blocking one.
    #[unsafe(no_mangle)]
    pub extern "C" fn umqtt_async_demo(count: *mut u32) -> i32 {
        let mut tx = [0u8; 512];
        let mut rx = [0u8; 512];
        let mut received = 0u32;
        let mut on_message = |_m: Message<'_>| received += 1;
        let net = CNet;
        let result = block_on(async {
            let mut client = Client::new(&net, CTimer, &mut tx, &mut rx, Options::new("nostd-async"));
            client.set_callback(&mut on_message);
            let broker = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 1883);
            client.connect(broker).await.map_err(|_| -21)?;
            client.subscribe(b"demo/#", QoS::AtLeastOnce).await.map_err(|_| -22)?;
            client.publish(b"demo/x", b"hello", false, QoS::AtLeastOnce).await.map_err(|_| -23)?;
            client.wait_msg().await.map_err(|_| -24)?;
            client.disconnect().await.map_err(|_| -25)
        });
        if !count.is_null() {
            // SAFETY: the caller passes a valid pointer or null.
            unsafe { *count = received };
        }
        match result {
            Ok(()) => 0,
            Err(code) => code,
        }
    }
}

/// The async session over TLS: `TlsConnect` over the C glue's
/// `TcpConnect`, the same 4 kB records and C random generator as
/// [`umqtt_tls_demo`], so that the `async` and `tls-async` builds differ by
/// the async TLS alone.
#[cfg(feature = "tls-async")]
#[unsafe(no_mangle)]
pub extern "C" fn umqtt_async_tls_demo(ca: *const u8, ca_len: usize, count: *mut u32) -> i32 {
    use umqtt_transports::tls::{MaxFragmentLength, TlsBuffers, TlsConnect, TlsOptions};
    if ca.is_null() {
        return -30;
    }
    // SAFETY: the caller passes a valid pointer and length.
    let ca = unsafe { core::slice::from_raw_parts(ca, ca_len) };
    let (mut read, mut write) = ([0u8; 4352], [0u8; 1024]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let options = TlsOptions::new("broker.local")
        .ca(ca)
        .max_fragment_length(MaxFragmentLength::Bits12);
    let net = async_demo::CNet;
    let tls = TlsConnect::new(&net, CRng, &buffers, options);
    let mut tx = [0u8; 512];
    let mut rx = [0u8; 512];
    let mut received = 0u32;
    let mut on_message = |_m: Message<'_>| received += 1;
    let result = async_demo::block_on(async {
        let mut client = umqtt_simple::asynch::Client::new(
            &tls,
            async_demo::CTimer,
            &mut tx,
            &mut rx,
            Options::new("nostd-async-tls"),
        );
        client.set_callback(&mut on_message);
        let broker = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 8883);
        client.connect(broker).await.map_err(|_| -31)?;
        client.subscribe(b"demo/#", QoS::AtLeastOnce).await.map_err(|_| -32)?;
        client.publish(b"demo/x", b"hello", false, QoS::AtLeastOnce).await.map_err(|_| -33)?;
        client.wait_msg().await.map_err(|_| -34)?;
        client.disconnect().await.map_err(|_| -35)
    });
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
