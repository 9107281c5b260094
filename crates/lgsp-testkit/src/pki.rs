//! Certificates for TLS tests, generated per test: a CA, a server certificate for
//! `localhost` and `127.0.0.1` signed by it, a client certificate signed by it, and a
//! second CA that signed nothing (the "wrong CA"). Every file is PEM, in one folder.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub struct Pki {
    pub dir: PathBuf,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// A CA that signed neither.
    pub wrong_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    /// Generate everything into `dir`.
    pub fn generate(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let issuer = ca("lgsp test CA");
        let wrong = ca("lgsp wrong CA");
        let write = |name: &str, pem: String| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        let leaf = |cn: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server, server_key) = leaf(
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) = leaf("lgsp", vec![], ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            dir: dir.to_owned(),
            ca: write("ca.pem", issuer.pem()),
            wrong_ca: write("wrong-ca.pem", wrong.pem()),
            server_cert: write("server.pem", server),
            server_key: write("server.key", server_key),
            client_cert: write("client.pem", client),
            client_key: write("client.key", client_key),
        }
    }
}
