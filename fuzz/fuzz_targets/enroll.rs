//! Fuzzes what the hub's enrollment endpoint parses from an unauthenticated client: the
//! one-time token and the certificate signing request (PEM), which the hub CA turns into a
//! node certificate.
//!
//! Beyond "never panics": a token that parses prints back to the same text's meaning, and a
//! certificate issued from any CSR names the node the hub chose, never what the CSR claims.

#![no_main]

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vigil_core::NodeId;
use vigil_pki::{node_of_certificate, Ca, EnrollToken};

fn ca() -> &'static Ca {
    static CA: OnceLock<(tempfile::TempDir, Ca)> = OnceLock::new();
    &CA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let ca = Ca::load_or_create(&dir.path().join("ca"), "Vigil fuzz CA").expect("a CA");
        (dir, ca)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = EnrollToken::from_str(text) {
        let printed = token.to_string();
        let again = EnrollToken::from_str(&printed).expect("a printed token parses");
        assert_eq!(again.to_string(), printed, "token does not round-trip");
    }

    let node = NodeId::new("gw-prison-3").expect("a valid node id");
    if let Ok(issued) = ca().issue_node(text, &node, Duration::from_secs(3600)) {
        let der = vigil_pki::cert::cert_from_pem(&issued.cert_pem, "issued").expect("issued PEM");
        assert_eq!(node_of_certificate(&der).expect("a node"), node);
    }
});
