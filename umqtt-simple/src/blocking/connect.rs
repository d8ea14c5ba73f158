//! Opening the connection: DNS, TCP connect, then the CONNECT request, all
//! within the connect timeout.

use core::net::{IpAddr, SocketAddr};

use embedded_nal::{AddrType, Dns, TcpClientStack};

use super::{Client, ClientError};
use crate::error::{Error, Waiting};
use crate::{Clock, Wait};

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Client<'_, S, C, W> {
    /// When a connect begun now must be done.
    pub(super) fn connect_by(
        &mut self,
        addr: SocketAddr,
        deadline: u64,
    ) -> Result<bool, ClientError<S>> {
        // Everything is checked (and encoded) before the network is touched.
        let mut request = self
            .engine
            .connect(addr, deadline)
            .map_err(Error::on_stack)?;
        self.close_socket();
        self.socket = Some(self.open(addr, deadline)?);
        self.pump(&mut request)
    }

    /// Opens a TCP connection to `addr` before `deadline`.
    fn open(&mut self, addr: SocketAddr, deadline: u64) -> Result<S::TcpSocket, ClientError<S>> {
        let mut socket = self.stack.socket().map_err(Error::Network)?;
        loop {
            match self.stack.connect(&mut socket, addr) {
                Ok(()) => return Ok(socket),
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
                Err(nb::Error::Other(e)) => {
                    log::warn!("DNS lookup of {host} failed: {e:?}");
                    return Err(Error::Dns);
                }
            }
        }
    }
}
