//! Fuzzes signed update bundles, the bytes an agent receives from outside: the container
//! header, the manifest and the file payloads.
//!
//! Each input is written as a bundle file, then:
//! 1. `verify` against a trusted key: the header is read before anything is trusted, so an
//!    unsigned or forged input must be refused without a panic;
//! 2. `sign` with the trusted key, which parses the manifest and checks every payload;
//! 3. when `sign` accepted it, `verify` must accept it too (what the tools sign, the agent
//!    can verify), and extracting it must write only inside the target folder.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_bundle::{generate_keypair, sign, verify, PublicKey, SecretKey};

fn keys() -> &'static (SecretKey, PublicKey) {
    static KEYS: OnceLock<(SecretKey, PublicKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let secret = generate_keypair().expect("a key pair");
        let public = secret.public_key(Some("fuzz"));
        (secret, public)
    })
}

fuzz_target!(|data: &[u8]| {
    let (secret, public) = keys();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("input.bundle");
    std::fs::write(&path, data).expect("write the input");

    let _ = verify(&path, std::slice::from_ref(public), None);

    if sign(&path, secret).is_err() {
        return;
    }
    let verified = verify(&path, std::slice::from_ref(public), None)
        .expect("a bundle the signer accepted must verify");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("the output folder");
    verified.extract_to(&out).expect("a verified bundle must extract");
    let root = out.canonicalize().expect("the output folder resolves");
    for entry in verified.manifest().files.iter() {
        let written = out
            .join(&entry.path)
            .canonicalize()
            .expect("every file of a verified bundle is extracted");
        assert!(
            written.starts_with(&root),
            "{} extracted outside the folder",
            entry.path
        );
    }
});
