//! The CA, issuing and the verifier, end to end without a network: certificates are made
//! with the CA and checked with the same verifier the hub's broker listener uses.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, Error as TlsError};
use vigil_core::NodeId;
use vigil_pki::cert::cert_from_pem;
use vigil_pki::tls::provider;
use vigil_pki::{
    client_config, node_key_and_csr, node_of_certificate, serial_of_certificate, server_config,
    server_config_mtls, Ca, NodeCertVerifier, PkiError, Revocations, TlsFiles,
};

const YEAR: Duration = Duration::from_secs(365 * 86400);

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("valid node id")
}

fn der(pem: &str) -> CertificateDer<'static> {
    cert_from_pem(pem, "test certificate").expect("a certificate")
}

fn verify(ca: &Ca, revocations: &Revocations, cert_pem: &str) -> Result<(), TlsError> {
    let verifier =
        NodeCertVerifier::new(ca.cert_pem(), revocations.clone(), provider()).expect("verifier");
    verifier
        .verify_client_cert(&der(cert_pem), &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn ca_is_created_once_then_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    let ca = Ca::load_or_create(&pki, "test CA").expect("create");
    let key_mode = fs::metadata(pki.join("ca.key"))
        .expect("key")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    let dir_mode = fs::metadata(&pki).expect("dir").permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let again = Ca::load_or_create(&pki, "ignored on load").expect("load");
    assert_eq!(ca.cert_pem(), again.cert_pem());
    assert_eq!(ca.fingerprint(), again.fingerprint());
    assert_eq!(ca.fingerprint().len(), 64);
    assert!(ca
        .fingerprint()
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // Valid for about ten years.
    let (_, not_after) = vigil_pki::validity_of_certificate(ca.cert_der()).expect("validity");
    let left = not_after
        .duration_since(SystemTime::now())
        .expect("in the future");
    assert!(left > 9 * YEAR && left < 11 * YEAR, "{left:?}");
}

#[test]
fn loose_ca_key_and_half_a_ca_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    Ca::load_or_create(dir.path(), "test CA").expect("create");
    let key = dir.path().join("ca.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Ca::load_or_create(dir.path(), "test CA").expect_err("loose key");
    assert!(matches!(err, PkiError::KeyPermissions { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");

    fs::remove_file(&key).expect("rm key");
    let err = Ca::load_or_create(dir.path(), "test CA").expect_err("cert without key");
    assert!(matches!(err, PkiError::IncompleteCa { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");
}

#[test]
fn a_ca_key_that_is_not_the_certificates_is_refused() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    Ca::load_or_create(one.path(), "one").expect("one");
    Ca::load_or_create(two.path(), "two").expect("two");
    fs::copy(two.path().join("ca.key"), one.path().join("ca.key")).expect("swap keys");
    let err = Ca::load_or_create(one.path(), "one").expect_err("mismatch");
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn issue_and_verify_roundtrip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::load_or_create(dir.path(), "test CA").expect("ca");
    let gw = node("gw-prison-3");
    let request = node_key_and_csr(&gw).expect("csr");
    assert!(request.csr_pem.contains("CERTIFICATE REQUEST"));
    assert!(
        !format!("{request:?}").contains("PRIVATE KEY"),
        "Debug redacts the key"
    );
    let issued = ca.issue_node(&request.csr_pem, &gw, YEAR).expect("issue");
    assert_eq!(issued.node, gw);
    let cert = der(&issued.cert_pem);
    assert_eq!(node_of_certificate(&cert).expect("cn"), gw);
    assert_eq!(serial_of_certificate(&cert).expect("serial"), issued.serial);
    assert!(issued.not_before < SystemTime::now() && issued.not_after > SystemTime::now());
    verify(&ca, &Revocations::new(), &issued.cert_pem).expect("verifies");
    // Serials are random: two certificates for the same CSR differ.
    let second = ca
        .issue_node(&request.csr_pem, &gw, YEAR)
        .expect("issue again");
    assert_ne!(issued.serial, second.serial);
    // The configs build from what was issued.
    client_config(ca.cert_pem(), Some((&issued.cert_pem, &request.key_pem))).expect("client");
    client_config(ca.cert_pem(), None).expect("client without a certificate");
}

#[test]
fn the_hub_names_the_node_not_the_csr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::load_or_create(dir.path(), "test CA").expect("ca");
    // The requester asks for another node's name …
    let request = node_key_and_csr(&node("county-baiyun")).expect("csr");
    // … the hub issues for the node its enrollment token names.
    let issued = ca
        .issue_node(&request.csr_pem, &node("gw-7"), YEAR)
        .expect("issue");
    assert_eq!(
        node_of_certificate(&der(&issued.cert_pem)).expect("cn"),
        node("gw-7")
    );
}

#[test]
fn a_tampered_csr_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::load_or_create(dir.path(), "test CA").expect("ca");
    let request = node_key_and_csr(&node("gw-1")).expect("csr");
    let err = ca
        .issue_node("not a csr", &node("gw-1"), YEAR)
        .expect_err("garbage");
    assert!(matches!(err, PkiError::Csr(_)), "{err}");
    // Flip one character of the base64 body: the signature (or the parse) fails.
    let mut lines: Vec<String> = request.csr_pem.lines().map(str::to_owned).collect();
    let line = &mut lines[3];
    let flipped = if line.starts_with('A') { "B" } else { "A" };
    line.replace_range(0..1, flipped);
    let tampered = lines.join("\n");
    let err = ca
        .issue_node(&tampered, &node("gw-1"), YEAR)
        .expect_err("tampered");
    assert!(matches!(err, PkiError::Csr(_)), "{err}");
}

#[test]
fn another_cas_certificate_is_refused() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    let ours = Ca::load_or_create(one.path(), "ours").expect("ours");
    let theirs = Ca::load_or_create(two.path(), "theirs").expect("theirs");
    let gw = node("gw-1");
    let request = node_key_and_csr(&gw).expect("csr");
    let foreign = theirs
        .issue_node(&request.csr_pem, &gw, YEAR)
        .expect("issue");
    let err = verify(&ours, &Revocations::new(), &foreign.cert_pem).expect_err("foreign");
    assert_eq!(
        err,
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::load_or_create(dir.path(), "test CA").expect("ca");
    let gw = node("gw-1");
    let request = node_key_and_csr(&gw).expect("csr");
    let now = SystemTime::now();
    let expired = ca
        .issue_node_with_validity(&request.csr_pem, &gw, now - 2 * YEAR, now - YEAR)
        .expect("issue");
    let err = verify(&ca, &Revocations::new(), &expired.cert_pem).expect_err("expired");
    assert!(
        matches!(
            err,
            TlsError::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "{err:?}"
    );
    let err = ca
        .issue_node_with_validity(&request.csr_pem, &gw, now, now - YEAR)
        .expect_err("backwards");
    assert!(matches!(err, PkiError::Validity(_)), "{err}");
}

#[test]
fn a_revoked_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::load_or_create(dir.path(), "test CA").expect("ca");
    let gw = node("gw-1");
    let request = node_key_and_csr(&gw).expect("csr");
    let issued = ca.issue_node(&request.csr_pem, &gw, YEAR).expect("issue");
    let other = ca.issue_node(&request.csr_pem, &gw, YEAR).expect("issue");
    let revocations = Revocations::new();
    verify(&ca, &revocations, &issued.cert_pem).expect("valid before");
    revocations.revoke(&issued.serial.to_uppercase());
    let err = verify(&ca, &revocations, &issued.cert_pem).expect_err("revoked");
    assert_eq!(err, TlsError::InvalidCertificate(CertificateError::Revoked));
    verify(&ca, &revocations, &other.cert_pem).expect("another serial is still valid");
}

#[test]
fn a_server_certificate_is_not_a_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::load_or_create(dir.path(), "test CA").expect("ca");
    let server = ca
        .issue_server(
            &[
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
                "hub.local".to_owned(),
            ],
            YEAR,
        )
        .expect("server");
    assert!(!format!("{server:?}").contains("PRIVATE KEY"));
    // serverAuth only: refused as a client certificate.
    assert!(verify(&ca, &Revocations::new(), &server.cert_pem).is_err());
    server_config_mtls(
        ca.cert_pem(),
        &server.cert_pem,
        &server.key_pem,
        Revocations::new(),
    )
    .expect("mtls server config");
    server_config(&server.cert_pem, &server.key_pem).expect("plain server config");
    let err = ca
        .issue_server(&["not a name!".to_owned()], YEAR)
        .expect_err("bad name");
    assert!(err.to_string().contains("not a name!"), "{err}");
}

#[test]
fn tls_files_load_and_refuse_a_loose_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::load_or_create(&dir.path().join("ca"), "test CA").expect("ca");
    let gw = node("gw-1");
    let request = node_key_and_csr(&gw).expect("csr");
    let issued = ca.issue_node(&request.csr_pem, &gw, YEAR).expect("issue");
    let files = TlsFiles::in_dir(dir.path());
    vigil_pki::write_certificate(&files.ca, ca.cert_pem()).expect("ca");
    vigil_pki::write_certificate(&files.cert, &issued.cert_pem).expect("cert");
    vigil_pki::write_private_key(&files.key, &request.key_pem).expect("key");
    files.client_config().expect("client config");
    fs::set_permissions(&files.key, fs::Permissions::from_mode(0o604)).expect("chmod");
    let err = files.load().expect_err("loose key");
    assert!(err.to_string().contains("node.key"), "{err}");
    // A key file that holds a certificate: named.
    vigil_pki::write_private_key(&files.key, ca.cert_pem()).expect("wrong content");
    let err = files.load().expect_err("no key in the key file");
    assert!(err.to_string().contains("node.key"), "{err}");
}
