//! What embedded-tls asks the client for during a handshake: randomness,
//! the verifier, and the client certificate and key, which go only to a
//! server that already proved who it is.

use embedded_tls::SignatureScheme;
use embedded_tls::blocking::{Certificate, CryptoProvider, TlsError, TlsVerifier};
use rand_core::CryptoRngCore;

use super::Suite;
use super::handshake::Ordered;

/// What embedded-tls asks for during a handshake.
pub(super) struct Provider<'p, R, V> {
    pub(super) rng: &'p mut R,
    /// `None` with `dangerously_skip_verification`.
    pub(super) verifier: Option<&'p mut Ordered<V>>,
    pub(super) cert: Option<&'p [u8]>,
    pub(super) key: Option<p256::SecretKey>,
}

impl<R: CryptoRngCore, V: TlsVerifier<Suite>> Provider<'_, R, V> {
    /// Whether the client's certificate may go to this server: only once it
    /// proved who it is (embedded-tls sends the client's Certificate and
    /// CertificateVerify before this crate checks the order at the end), or
    /// when verification is off by the user's choice.
    fn server_authenticated(&self) -> bool {
        let authenticated = self.verifier.as_ref().is_none_or(|v| v.authenticated());
        if !authenticated {
            log::warn!(
                "TLS: the server asked for a client certificate before it proved who it is: none sent"
            );
        }
        authenticated
    }
}

impl<R: CryptoRngCore, V: TlsVerifier<Suite>> CryptoProvider for Provider<'_, R, V> {
    type CipherSuite = Suite;
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut *self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Suite>, TlsError> {
        self.verifier.as_deref_mut().ok_or(TlsError::Unimplemented)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<Self::Signature>, SignatureScheme), TlsError> {
        if !self.server_authenticated() {
            return Err(TlsError::InvalidCertificate);
        }
        let key = self.key.as_ref().ok_or(TlsError::InvalidPrivateKey)?;
        Ok((
            p256::ecdsa::SigningKey::from(key),
            SignatureScheme::EcdsaSecp256r1Sha256,
        ))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        if !self.server_authenticated() {
            return None;
        }
        self.cert.map(Certificate::X509)
    }
}
