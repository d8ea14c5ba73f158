//! The order of the server's authentication messages: a connection is usable
//! only after a Certificate that passed verification, then a
//! CertificateVerify over it that passed, then the server's Finished
//! (RFC 8446 §4.4).
//!
//! embedded-tls 0.19 accepts the server's encrypted handshake messages in any
//! order and subset, and calls the verifier only for the messages that
//! arrive: a server that sends no Certificate, or a real public chain and no
//! CertificateVerify, would complete the handshake without proving anything.
//! [`Ordered`] wraps the verifier and feeds [`Order`], a state machine that
//! takes exactly the message allowed next; [`Order::finished`], called once
//! embedded-tls says the handshake completed, refuses unless both steps
//! passed. (The vendored embedded-tls itself refuses anything after the
//! server's Finished in its flight.)

use core::fmt;

use embedded_tls::alert::{AlertDescription, AlertLevel};
use embedded_tls::blocking::{
    CertificateRef, CertificateVerifyRef, TlsCipherSuite, TlsError, TlsVerifier,
};

/// Why the server's handshake was refused though its certificate (if any)
/// was fine: a message missing, out of order, repeated, or a signature that
/// does not prove the server holds the certificate's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server finished its handshake without sending a Certificate.
    NoCertificate,
    /// The server finished its handshake without a CertificateVerify after
    /// its Certificate (it did not prove it holds the certificate's key).
    NoCertificateVerify,
    /// A CertificateVerify came before a Certificate (that passed).
    CertificateVerifyBeforeCertificate,
    /// A second Certificate came.
    SecondCertificate,
    /// A second CertificateVerify came.
    SecondCertificateVerify,
    /// The CertificateVerify's signature scheme does not fit the key of the
    /// server's certificate (e.g. RSA-PSS over an EC key), or is not
    /// supported (RSA without feature `tls-rsa`).
    SchemeMismatch,
    /// The CertificateVerify's signature does not verify with the key of the
    /// server's certificate.
    BadSignature,
    /// The server's Finished does not match the handshake (corrupted or
    /// forged).
    BadFinished,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::NoCertificate => "the server finished its handshake without a certificate",
            HandshakeError::NoCertificateVerify => {
                "the server finished its handshake without proving it holds its certificate's key (no CertificateVerify)"
            }
            HandshakeError::CertificateVerifyBeforeCertificate => {
                "the server sent a CertificateVerify before its Certificate"
            }
            HandshakeError::SecondCertificate => "the server sent a second Certificate",
            HandshakeError::SecondCertificateVerify => {
                "the server sent a second CertificateVerify"
            }
            HandshakeError::SchemeMismatch => {
                "the server's CertificateVerify uses a signature scheme that does not fit its certificate's key (or is not supported)"
            }
            HandshakeError::BadFinished => {
                "the server's Finished does not match the handshake (corrupted or forged)"
            }
            HandshakeError::BadSignature => {
                "the server's CertificateVerify signature does not verify with its certificate's key"
            }
        })
    }
}

impl core::error::Error for HandshakeError {}

/// Where the server's authentication stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing yet: a Certificate is the one message allowed.
    ExpectCertificate,
    /// A Certificate arrived and is being verified.
    CheckingCertificate,
    /// The Certificate passed: a CertificateVerify is the one message allowed.
    ExpectCertificateVerify,
    /// A CertificateVerify arrived and is being checked.
    CheckingSignature,
    /// Both passed: only the server's Finished may follow.
    Authenticated,
    /// Refused (for good).
    Refused(HandshakeError),
    /// Refused by the certificate verifier (it says why).
    CertificateRefused,
}

/// The state machine of the server's authentication messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Order {
    step: Step,
}

impl Order {
    /// Nothing received yet.
    pub(crate) const fn new() -> Self {
        Order {
            step: Step::ExpectCertificate,
        }
    }

    /// Whether the server authenticated itself (a Certificate that passed,
    /// then a CertificateVerify over it that passed).
    pub(crate) fn authenticated(&self) -> bool {
        self.step == Step::Authenticated
    }

    /// Why the handshake was refused here, if it was.
    pub(crate) fn failure(&self) -> Option<HandshakeError> {
        match self.step {
            Step::Refused(e) => Some(e),
            _ => None,
        }
    }

    fn refuse(&mut self, e: HandshakeError) -> HandshakeError {
        if self.failure().is_none() {
            self.step = Step::Refused(e);
        }
        e
    }

    /// A Certificate arrived: allowed only first.
    pub(crate) fn certificate(&mut self) -> Result<(), HandshakeError> {
        match self.step {
            Step::ExpectCertificate => {
                self.step = Step::CheckingCertificate;
                Ok(())
            }
            Step::Refused(e) => Err(e),
            Step::CheckingCertificate
            | Step::ExpectCertificateVerify
            | Step::CheckingSignature
            | Step::Authenticated
            | Step::CertificateRefused => Err(self.refuse(HandshakeError::SecondCertificate)),
        }
    }

    /// The verifier's verdict on the Certificate.
    pub(crate) fn certificate_checked(&mut self, passed: bool) {
        if self.step == Step::CheckingCertificate {
            self.step = if passed {
                Step::ExpectCertificateVerify
            } else {
                Step::CertificateRefused
            };
        }
    }

    /// A CertificateVerify arrived: allowed only right after a Certificate
    /// that passed.
    pub(crate) fn certificate_verify(&mut self) -> Result<(), HandshakeError> {
        match self.step {
            Step::ExpectCertificateVerify => {
                self.step = Step::CheckingSignature;
                Ok(())
            }
            Step::ExpectCertificate | Step::CheckingCertificate | Step::CertificateRefused => {
                Err(self.refuse(HandshakeError::CertificateVerifyBeforeCertificate))
            }
            Step::Refused(e) => Err(e),
            Step::CheckingSignature | Step::Authenticated => {
                Err(self.refuse(HandshakeError::SecondCertificateVerify))
            }
        }
    }

    /// The verdict on the CertificateVerify: `Ok`, or why it failed.
    pub(crate) fn signature_checked(&mut self, verdict: Result<(), HandshakeError>) {
        if self.step == Step::CheckingSignature {
            match verdict {
                Ok(()) => self.step = Step::Authenticated,
                Err(e) => {
                    self.refuse(e);
                }
            }
        }
    }

    /// embedded-tls says the handshake completed (the server's Finished
    /// verified): fine only if the server authenticated itself before it.
    pub(crate) fn finished(&mut self) -> Result<(), HandshakeError> {
        match self.step {
            Step::Authenticated => Ok(()),
            Step::ExpectCertificate | Step::CheckingCertificate | Step::CertificateRefused => {
                Err(self.refuse(HandshakeError::NoCertificate))
            }
            Step::ExpectCertificateVerify | Step::CheckingSignature => {
                Err(self.refuse(HandshakeError::NoCertificateVerify))
            }
            Step::Refused(e) => Err(e),
        }
    }
}

/// A verifier that lets through only the order [`Order`] allows, and
/// remembers why it refused.
pub(crate) struct Ordered<V> {
    inner: V,
    order: Order,
}

impl<V> Ordered<V> {
    pub(crate) fn new(inner: V) -> Self {
        Ordered {
            inner,
            order: Order::new(),
        }
    }

    /// The verifier inside.
    pub(crate) fn inner(&self) -> &V {
        &self.inner
    }

    /// The state machine.
    pub(crate) fn order(&mut self) -> &mut Order {
        &mut self.order
    }

    /// Whether the server authenticated itself so far.
    pub(crate) fn authenticated(&self) -> bool {
        self.order.authenticated()
    }
}

/// The alert that ends a handshake refused for `e`.
fn abort(e: HandshakeError) -> TlsError {
    log::warn!("TLS: {e}");
    let description = match e {
        HandshakeError::SchemeMismatch => AlertDescription::IllegalParameter,
        HandshakeError::BadSignature => AlertDescription::DecryptError,
        _ => AlertDescription::UnexpectedMessage,
    };
    TlsError::AbortHandshake(AlertLevel::Fatal, description)
}

impl<CS: TlsCipherSuite, V: TlsVerifier<CS>> TlsVerifier<CS> for Ordered<V> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        self.inner.set_hostname_verification(hostname)
    }

    fn verify_certificate(
        &mut self,
        transcript: &CS::Hash,
        cert: CertificateRef<'_>,
    ) -> Result<(), TlsError> {
        self.order.certificate().map_err(abort)?;
        let verdict = self.inner.verify_certificate(transcript, cert);
        self.order.certificate_checked(verdict.is_ok());
        verdict
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef<'_>) -> Result<(), TlsError> {
        self.order.certificate_verify().map_err(abort)?;
        let verdict = self.inner.verify_signature(verify).map_err(|e| match e {
            TlsError::InvalidSignatureScheme => HandshakeError::SchemeMismatch,
            _ => HandshakeError::BadSignature,
        });
        self.order.signature_checked(verdict);
        verdict.map_err(abort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `events` (`C`: Certificate that passes, `c`: one that fails,
    /// `V`: CertificateVerify that passes, `v`: one that fails, `F`:
    /// Finished) and returns the first refusal.
    fn run(events: &str) -> Result<(), HandshakeError> {
        let mut order = Order::new();
        for event in events.chars() {
            match event {
                'C' | 'c' => {
                    order.certificate()?;
                    order.certificate_checked(event == 'C');
                }
                'V' | 'v' => {
                    order.certificate_verify()?;
                    let verdict = if event == 'V' {
                        Ok(())
                    } else {
                        Err(HandshakeError::BadSignature)
                    };
                    order.signature_checked(verdict);
                    verdict?;
                }
                'F' => order.finished()?,
                _ => unreachable!("test alphabet"),
            }
        }
        Ok(())
    }

    #[test]
    fn certificate_then_certificate_verify_then_finished_is_the_one_accepted_order() {
        assert_eq!(run("CVF"), Ok(()));
    }

    #[test]
    fn every_other_order_or_subset_is_refused_with_its_reason() {
        use HandshakeError::*;
        assert_eq!(run("F"), Err(NoCertificate));
        assert_eq!(run("CF"), Err(NoCertificateVerify));
        assert_eq!(run("VCF"), Err(CertificateVerifyBeforeCertificate));
        assert_eq!(run("VF"), Err(CertificateVerifyBeforeCertificate));
        assert_eq!(run("CCVF"), Err(SecondCertificate));
        assert_eq!(run("CVCF"), Err(SecondCertificate));
        assert_eq!(run("CVVF"), Err(SecondCertificateVerify));
        assert_eq!(run("CvF"), Err(BadSignature));
    }

    #[test]
    fn a_refused_certificate_never_lets_the_handshake_finish() {
        assert_eq!(run("cF"), Err(HandshakeError::NoCertificate));
        let mut order = Order::new();
        order.certificate().unwrap();
        order.certificate_checked(false);
        assert_eq!(
            order.certificate_verify(),
            Err(HandshakeError::CertificateVerifyBeforeCertificate)
        );
    }

    #[test]
    fn a_refusal_sticks() {
        let mut order = Order::new();
        assert!(order.finished().is_err());
        assert!(order.certificate().is_err());
        assert_eq!(order.failure(), Some(HandshakeError::NoCertificate));
    }
}
