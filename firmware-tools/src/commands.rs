//! The subcommands: each turns its arguments into one `vigil-bundle` call and reports.

use std::path::Path;

use anyhow::{bail, Context as _};
use vigil_bundle::{BundleInputs, PublicKey, SecretKey};

use crate::progress::Bar;
use crate::Command;

/// Runs one subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keygen { out, name } => keygen(&out, &name),
        Command::Pack {
            version,
            out,
            agent,
            config,
            profiles,
            models,
        } => {
            let mut inputs = BundleInputs::new();
            if let Some(path) = agent {
                inputs.agent(&path)?;
            }
            if let Some(path) = config {
                inputs.config(&path)?;
            }
            if let Some(dir) = profiles {
                inputs.profiles(&dir)?;
            }
            if let Some(dir) = models {
                inputs.models(&dir)?;
            }
            if inputs.is_empty() {
                bail!(
                    "nothing to pack: give at least one of --agent, --config, --profiles, --models"
                );
            }
            let manifest = vigil_bundle::pack(&inputs, &version, &out, &mut Bar::default())?;
            println!(
                "packed {} version {} ({} files, {} bytes), unsigned; sign it with `vigil-fw sign --key KEYFILE {}`",
                out.display(),
                manifest.version,
                manifest.files.len(),
                manifest.total_size(),
                out.display()
            );
            Ok(())
        }
        Command::Sign { key, bundle } => {
            let key = SecretKey::read_file(&key)?;
            let key_id = vigil_bundle::sign(&bundle, &key)?;
            println!("signed {} with key {key_id}", bundle.display());
            Ok(())
        }
        Command::Verify {
            trusted,
            current_version,
            bundle,
        } => {
            let mut keys = Vec::new();
            for path in &trusted {
                keys.extend(PublicKey::read_file(path)?);
            }
            let verified = vigil_bundle::verify(&bundle, &keys, current_version.as_ref())
                .with_context(|| format!("{} refused", bundle.display()))?;
            let manifest = verified.manifest();
            println!(
                "ok: {} version {} signed by trusted key {}, {} files intact",
                bundle.display(),
                manifest.version,
                verified.key_id(),
                manifest.files.len()
            );
            Ok(())
        }
    }
}

/// Makes a key pair in `dir`, never printing the secret key.
fn keygen(dir: &Path, name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("--name {name:?}: use a plain file name (no '/', not starting with '.')");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let secret = vigil_bundle::generate_keypair()?;
    let (secret_path, public_path) = vigil_bundle::write_keypair(&secret, dir, name)?;
    println!(
        "key id {}\nsecret key {} (mode 0600; keep it offline, never copy it to a gateway)\npublic key {} (add its line to the agent's trusted keys)",
        secret.public_key(None).key_id(),
        secret_path.display(),
        public_path.display()
    );
    Ok(())
}
