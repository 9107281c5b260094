//! Telling a TLS failure apart from others: the broker, PostgreSQL and HTTP clients all
//! report a refused certificate as an I/O error; its cause, somewhere down the error's
//! chain, is rustls's own error.

use std::error::Error;

/// The rustls error in `e`'s chain (an unknown issuer, a name not in the certificate, a
/// client certificate the server refused), if TLS is why `e` happened.
pub fn cause<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = cause(inner)
        {
            return Some(r);
        }
        next = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rustls_inside_io_errors_and_nothing_elsewhere() {
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let wrapped = std::io::Error::other(tls);
        assert!(matches!(
            cause(&wrapped),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(cause(&plain).is_none());
    }
}
