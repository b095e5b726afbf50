//! pack → sign → verify → extract through the public API, and every way a bundle is refused.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vigil_bundle::{
    generate_keypair, pack, sign, verify, BundleError, BundleInputs, NoProgress, PublicKey,
    SecretKey,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Fixture {
    dir: tempfile::TempDir,
    key: SecretKey,
    trusted: Vec<PublicKey>,
    bundle: PathBuf,
}

fn version(v: &str) -> semver::Version {
    semver::Version::parse(v).unwrap_or_else(|e| panic!("test version {v}: {e}"))
}

/// Writes inputs, packs them as `v`, signs with a fresh key.
fn fixture(v: &str) -> Result<Fixture, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("profiles/acme"))?;
    std::fs::create_dir_all(src.join("models"))?;
    std::fs::write(src.join("vigil-agent"), b"\x7fELF fake agent binary")?;
    std::fs::write(src.join("agent.toml"), b"[node]\nid = \"gw-1\"\n")?;
    std::fs::write(src.join("profiles/acme/door.yaml"), b"model: door\n")?;
    std::fs::write(src.join("models/motion.onnx"), vec![7u8; 3000])?;
    let mut inputs = BundleInputs::new();
    inputs
        .agent(&src.join("vigil-agent"))?
        .config(&src.join("agent.toml"))?
        .profiles(&src.join("profiles"))?
        .models(&src.join("models"))?;
    let bundle = dir.path().join("update.vgb");
    pack(&inputs, &version(v), &bundle, &mut NoProgress)?;
    let key = generate_keypair()?;
    sign(&bundle, &key)?;
    let trusted = vec![key.public_key(Some("test"))];
    Ok(Fixture {
        dir,
        key,
        trusted,
        bundle,
    })
}

fn flip(path: &Path, offset: usize) -> TestResult {
    let mut bytes = std::fs::read(path)?;
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes)?;
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn pack_sign_verify_extract_round_trips() -> TestResult {
    let f = fixture("1.4.0")?;
    let verified = verify(&f.bundle, &f.trusted, Some(&version("1.3.9")))?;
    assert_eq!(verified.key_id(), f.key.public_key(None).key_id());
    let paths: Vec<&str> = verified
        .manifest()
        .files
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "agent/vigil-agent",
            "config/agent.toml",
            "profiles/acme/door.yaml",
            "models/motion.onnx"
        ]
    );
    let out = f.dir.path().join("staging");
    verified.extract_to(&out)?;
    assert_eq!(
        std::fs::read(out.join("models/motion.onnx"))?,
        vec![7u8; 3000]
    );
    assert_eq!(
        std::fs::read(out.join("profiles/acme/door.yaml"))?,
        b"model: door\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join("agent/vigil-agent"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }
    // A second extract into the now non-empty directory is refused.
    assert!(matches!(
        verified.extract_to(&out),
        Err(BundleError::BadTarget { .. })
    ));
    Ok(())
}

#[test]
fn unsigned_bundle_is_refused() -> TestResult {
    let f = fixture("1.0.0")?;
    let mut bytes = std::fs::read(&f.bundle)?;
    bytes[12..84].fill(0);
    std::fs::write(&f.bundle, bytes)?;
    assert!(matches!(
        verify(&f.bundle, &f.trusted, None),
        Err(BundleError::Unsigned)
    ));
    Ok(())
}

#[test]
fn bundle_signed_by_an_untrusted_key_is_refused() -> TestResult {
    let f = fixture("1.0.0")?;
    let stranger = generate_keypair()?;
    sign(&f.bundle, &stranger)?;
    match verify(&f.bundle, &f.trusted, None) {
        Err(BundleError::UnknownKey { key_id }) => {
            assert_eq!(key_id, stranger.public_key(None).key_id());
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    Ok(())
}

#[test]
fn forged_signature_under_a_trusted_key_id_is_refused() -> TestResult {
    let f = fixture("1.0.0")?;
    flip(&f.bundle, 40)?;
    assert!(matches!(
        verify(&f.bundle, &f.trusted, None),
        Err(BundleError::BadSignature { .. })
    ));
    Ok(())
}

#[test]
fn flipped_byte_in_each_file_is_refused_naming_the_file() -> TestResult {
    let probe = fixture("1.0.0")?;
    let names = verify(&probe.bundle, &probe.trusted, None)?
        .manifest()
        .files
        .clone();
    let total: u64 = names.iter().map(|e| e.size).sum();
    let len = std::fs::metadata(&probe.bundle)?.len();
    let mut start = usize::try_from(len - total)?;
    for entry in &names {
        let f = fixture("1.0.0")?;
        flip(&f.bundle, start + usize::try_from(entry.size / 2)?)?;
        match verify(&f.bundle, &f.trusted, None) {
            Err(BundleError::TamperedFile { path, .. }) => assert_eq!(path, entry.path),
            other => panic!("{}: expected TamperedFile, got {other:?}", entry.path),
        }
        start += usize::try_from(entry.size)?;
    }
    Ok(())
}

#[test]
fn manifest_edited_after_signing_is_refused() -> TestResult {
    let f = fixture("1.0.0")?;
    let mut bytes = std::fs::read(&f.bundle)?;
    // Bump the version in the manifest text without re-signing.
    let at = find(&bytes, b"\"1.0.0\"").ok_or("version not in manifest")?;
    bytes[at + 1] = b'9';
    std::fs::write(&f.bundle, bytes)?;
    assert!(matches!(
        verify(&f.bundle, &f.trusted, None),
        Err(BundleError::BadSignature { .. })
    ));
    Ok(())
}

#[test]
fn equal_or_lower_version_is_refused_as_rollback() -> TestResult {
    let f = fixture("1.10.0")?;
    for current in ["1.10.0", "1.10.0+other-build", "1.11.0", "2.0.0"] {
        assert!(
            matches!(
                verify(&f.bundle, &f.trusted, Some(&version(current))),
                Err(BundleError::NotNewer { .. })
            ),
            "current {current} accepted"
        );
    }
    // Numeric, not lexical: 1.10.0 is newer than 1.9.0, and than a pre-release of itself.
    verify(&f.bundle, &f.trusted, Some(&version("1.9.0")))?;
    verify(&f.bundle, &f.trusted, Some(&version("1.10.0-rc.1")))?;
    Ok(())
}

#[test]
fn truncated_and_extended_bundles_are_refused() -> TestResult {
    let f = fixture("1.0.0")?;
    let bytes = std::fs::read(&f.bundle)?;
    std::fs::write(&f.bundle, &bytes[..bytes.len() - 1])?;
    assert!(matches!(
        verify(&f.bundle, &f.trusted, None),
        Err(BundleError::TamperedFile { .. })
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    std::fs::write(&f.bundle, longer)?;
    assert!(matches!(
        verify(&f.bundle, &f.trusted, None),
        Err(BundleError::Malformed { .. })
    ));
    Ok(())
}

#[cfg(unix)]
#[test]
fn symlinked_inputs_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles)?;
    std::os::unix::fs::symlink("/etc/passwd", profiles.join("passwd"))?;
    let mut inputs = BundleInputs::new();
    assert!(matches!(
        inputs.profiles(&profiles),
        Err(BundleError::BadInput { .. })
    ));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single-byte change anywhere in a signed bundle is refused.
    #[test]
    fn any_single_byte_change_is_refused(position in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let f = fixture("2.0.0").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut bytes = std::fs::read(&f.bundle).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let at = position.index(bytes.len());
        bytes[at] ^= xor;
        std::fs::write(&f.bundle, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let result = verify(&f.bundle, &f.trusted, None);
        prop_assert!(result.is_err(), "byte {} ^ {:#x} accepted", at, xor);
    }
}
