//! Opening the connection: DNS and TCP connect, within the connect
//! timeout (the CONNECT request follows in `front_end::client_pump!`).

use core::net::{IpAddr, SocketAddr};

use embedded_nal::{AddrType, Dns, TcpClientStack};

use super::{Client, ClientError};
use crate::error::{Error, Waiting};
use crate::{Clock, Wait};

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Client<'_, S, C, W> {
    /// Opens a TCP connection to `addr` before `deadline`.
    pub(super) fn open(&mut self, addr: SocketAddr, deadline: u64) -> Result<(), ClientError<S>> {
        let mut socket = self.stack.socket().map_err(Error::Network)?;
        loop {
            match self.stack.connect(&mut socket, addr) {
                Ok(()) => {
                    self.socket = Some(socket);
                    return Ok(());
                }
                Err(nb::Error::WouldBlock) if self.clock.now_ms() < deadline => self.nap(),
                Err(e) => {
                    // The socket is not ours yet: close it here.
                    let _ = self.stack.close(socket);
                    return Err(match e {
                        nb::Error::WouldBlock => Error::Timeout(Waiting::Connect),
                        nb::Error::Other(e) => Error::Network(e),
                    });
                }
            }
        }
    }
}

impl<S: TcpClientStack + Dns, C: Clock, W: Wait<S>> Client<'_, S, C, W> {
    pub(super) fn resolve(&mut self, host: &str, deadline: u64) -> Result<IpAddr, ClientError<S>> {
        loop {
            match self.stack.get_host_by_name(host, AddrType::Either) {
                Ok(ip) => return Ok(ip),
                Err(nb::Error::WouldBlock) if self.clock.now_ms() < deadline => self.nap(),
                Err(nb::Error::WouldBlock) => return Err(Error::Timeout(Waiting::Dns)),
                Err(nb::Error::Other(e)) => return Err(Error::dns_failed(host, &e)),
            }
        }
    }
}
