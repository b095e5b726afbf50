//! `vigil-fw` end to end: keygen → pack → sign → verify, and each refusal's exit and message.

use std::path::PathBuf;

use assert_cmd::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fw() -> Result<Command, Box<dyn std::error::Error>> {
    Ok(Command::cargo_bin("vigil-fw")?)
}

struct Setup {
    dir: tempfile::TempDir,
    bundle: PathBuf,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Keys "release" (and "stranger") in keys/, inputs in src/, an unsigned bundle of `version`.
fn setup(version: &str) -> Result<Setup, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys");
    for name in ["release", "stranger"] {
        fw()?
            .args(["keygen", "--out"])
            .arg(&keys)
            .args(["--name", name])
            .assert()
            .success();
    }
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("profiles"))?;
    std::fs::create_dir_all(src.join("models"))?;
    std::fs::write(src.join("vigil-agent"), b"agent binary")?;
    std::fs::write(src.join("agent.toml"), b"[node]\n")?;
    std::fs::write(src.join("profiles/door.yaml"), b"model: door\n")?;
    std::fs::write(src.join("models/motion.onnx"), vec![1u8; 5000])?;
    let bundle = dir.path().join("update.vgb");
    fw()?
        .args(["pack", "--version", version, "--out"])
        .arg(&bundle)
        .arg("--agent")
        .arg(src.join("vigil-agent"))
        .arg("--config")
        .arg(src.join("agent.toml"))
        .arg("--profiles")
        .arg(src.join("profiles"))
        .arg("--models")
        .arg(src.join("models"))
        .assert()
        .success();
    Ok(Setup { dir, bundle })
}

fn sign(s: &Setup, key: &str) -> TestResult {
    fw()?
        .arg("sign")
        .arg("--key")
        .arg(s.path(&format!("keys/{key}.key")))
        .arg(&s.bundle)
        .assert()
        .success();
    Ok(())
}

fn verify(
    s: &Setup,
    extra: &[&str],
) -> Result<assert_cmd::assert::Assert, Box<dyn std::error::Error>> {
    Ok(fw()?
        .arg("verify")
        .arg("--trusted")
        .arg(s.path("keys/release.pub"))
        .args(extra)
        .arg(&s.bundle)
        .assert())
}

fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

fn refused_with(s: &Setup, extra: &[&str], needle: &str) -> TestResult {
    let assert = verify(s, extra)?.failure().code(1);
    let message = stderr(&assert);
    assert!(
        message.contains(needle),
        "expected {needle:?} in: {message}"
    );
    Ok(())
}

fn position(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes.windows(needle.len()).position(|w| w == needle)
}

#[cfg(unix)]
#[test]
fn keygen_writes_a_private_key_of_mode_0600_and_never_prints_it() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir()?;
    let output = fw()?
        .args(["keygen", "--out"])
        .arg(dir.path())
        .args(["--name", "k"])
        .assert()
        .success()
        .get_output()
        .clone();
    let secret = std::fs::read_to_string(dir.path().join("k.key"))?;
    let mode = std::fs::metadata(dir.path().join("k.key"))?
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let public = std::fs::read_to_string(dir.path().join("k.pub"))?;
    assert!(public.starts_with("vigil-ed25519:") && public.trim_end().ends_with(" k"));
    let seed = secret.trim().trim_start_matches("vigil-ed25519-secret:");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!printed.contains(seed), "secret key printed");
    assert!(printed.contains("key id "));
    // Never overwrite an existing key.
    fw()?
        .args(["keygen", "--out"])
        .arg(dir.path())
        .args(["--name", "k"])
        .assert()
        .failure();
    assert_eq!(std::fs::read_to_string(dir.path().join("k.key"))?, secret);
    Ok(())
}

#[test]
fn pack_sign_verify_succeeds() -> TestResult {
    let s = setup("1.2.0")?;
    sign(&s, "release")?;
    let assert = verify(&s, &["--current-version", "1.1.9"])?.success();
    let out = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(out.contains("ok:") && out.contains("4 files"), "{out}");
    Ok(())
}

#[test]
fn unsigned_bundle_is_refused() -> TestResult {
    let s = setup("1.0.0")?;
    refused_with(&s, &[], "unsigned")
}

#[test]
fn bundle_signed_by_an_untrusted_key_is_refused() -> TestResult {
    let s = setup("1.0.0")?;
    sign(&s, "stranger")?;
    refused_with(&s, &[], "not a trusted key")
}

#[test]
fn flipped_byte_in_a_file_is_refused_naming_the_file() -> TestResult {
    let s = setup("1.0.0")?;
    sign(&s, "release")?;
    let mut bytes = std::fs::read(&s.bundle)?;
    let at = position(&bytes, b"model: door").ok_or("profile bytes not found")?;
    bytes[at] ^= 0x20;
    std::fs::write(&s.bundle, bytes)?;
    refused_with(&s, &[], "tampered file profiles/door.yaml")
}

#[test]
fn manifest_edited_after_signing_is_refused() -> TestResult {
    let s = setup("1.0.0")?;
    sign(&s, "release")?;
    let mut bytes = std::fs::read(&s.bundle)?;
    let at = position(&bytes, b"\"1.0.0\"").ok_or("version not found")?;
    bytes[at + 1] = b'7';
    std::fs::write(&s.bundle, bytes)?;
    refused_with(&s, &[], "bad signature")
}

#[test]
fn equal_or_lower_version_is_refused_as_rollback() -> TestResult {
    let s = setup("1.10.0")?;
    sign(&s, "release")?;
    refused_with(
        &s,
        &["--current-version", "1.10.0"],
        "not newer than the current version 1.10.0",
    )?;
    refused_with(&s, &["--current-version", "2.0.0"], "not newer")?;
    verify(&s, &["--current-version", "1.9.0"])?.success();
    Ok(())
}

#[test]
fn open_secret_key_and_bad_usage_are_refused() -> TestResult {
    let s = setup("1.0.0")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = s.path("keys/release.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644))?;
        let assert = fw()?
            .arg("sign")
            .arg("--key")
            .arg(&key)
            .arg(&s.bundle)
            .assert()
            .failure();
        assert!(stderr(&assert).contains("chmod 600"));
    }
    // verify without --trusted is a usage error.
    fw()?.arg("verify").arg(&s.bundle).assert().code(2);
    fw()?
        .args(["pack", "--version", "1.0.0", "--out"])
        .arg(s.path("empty.vgb"))
        .assert()
        .failure();
    Ok(())
}

#[test]
fn several_trusted_key_files_are_accepted() -> TestResult {
    let s = setup("1.0.0")?;
    sign(&s, "release")?;
    fw()?
        .arg("verify")
        .arg("--trusted")
        .arg(s.path("keys/stranger.pub"))
        .arg("--trusted")
        .arg(s.path("keys/release.pub"))
        .arg(&s.bundle)
        .assert()
        .success();
    Ok(())
}
