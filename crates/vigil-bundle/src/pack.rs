//! Packing: gathering input files under their bundle paths and writing an unsigned bundle.
//!
//! Packing reads every input twice: once to hash it for the manifest, once to copy it behind the
//! manifest, checking that it did not change in between. Inputs that are symlinks or have
//! non-UTF-8 names are refused rather than followed or mangled. The bundle is written to
//! `OUT.partial` and renamed into place only when complete.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::BundleError;
use crate::format::write_head;
use crate::keys::to_hex;
use crate::manifest::{check_bundle_path, FileEntry, Manifest, MANIFEST_FORMAT};

/// Receives progress while packing; `vigil-fw` draws it as a progress bar.
pub trait Progress {
    /// A phase (`"hashing"`, `"writing"`) starts that will process `total_bytes`.
    fn start(&mut self, phase: &str, total_bytes: u64);
    /// `bytes` more bytes of the current phase are done.
    fn advance(&mut self, bytes: u64);
    /// The current phase is done.
    fn finish(&mut self);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _phase: &str, _total_bytes: u64) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self) {}
}

/// One input file and where it goes in the bundle.
#[derive(Debug, Clone)]
struct Input {
    bundle_path: String,
    source: PathBuf,
    executable: bool,
}

/// The files to pack, each with its path inside the bundle.
///
/// The helpers place inputs where the agent looks for them: `agent/vigil-agent`,
/// `config/agent.toml`, `profiles/…` and `models/…`.
#[derive(Debug, Clone, Default)]
pub struct BundleInputs {
    inputs: Vec<Input>,
}

impl BundleInputs {
    /// No inputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the agent binary as `agent/vigil-agent` (executable).
    pub fn agent(&mut self, source: &Path) -> Result<&mut Self, BundleError> {
        self.file("agent/vigil-agent", source, true)
    }

    /// Adds the agent config as `config/agent.toml`.
    pub fn config(&mut self, source: &Path) -> Result<&mut Self, BundleError> {
        self.file("config/agent.toml", source, false)
    }

    /// Adds every file under `dir` as `profiles/<relative path>`.
    pub fn profiles(&mut self, dir: &Path) -> Result<&mut Self, BundleError> {
        self.dir("profiles", dir)
    }

    /// Adds every file under `dir` as `models/<relative path>`.
    pub fn models(&mut self, dir: &Path) -> Result<&mut Self, BundleError> {
        self.dir("models", dir)
    }

    /// Adds one regular file at `bundle_path`.
    pub fn file(
        &mut self,
        bundle_path: &str,
        source: &Path,
        executable: bool,
    ) -> Result<&mut Self, BundleError> {
        check_bundle_path(bundle_path)?;
        let meta = std::fs::symlink_metadata(source).map_err(BundleError::io(source))?;
        if !meta.file_type().is_file() {
            return Err(BundleError::BadInput {
                path: source.to_path_buf(),
                reason: "not a regular file (symlinks are not followed)".to_owned(),
            });
        }
        if self.inputs.iter().any(|i| i.bundle_path == bundle_path) {
            return Err(BundleError::BadInput {
                path: source.to_path_buf(),
                reason: format!("{bundle_path} is already in the bundle"),
            });
        }
        self.inputs.push(Input {
            bundle_path: bundle_path.to_owned(),
            source: source.to_path_buf(),
            executable,
        });
        Ok(self)
    }

    /// Adds every regular file under `dir`, recursively, as `prefix/<relative path>`, sorted.
    pub fn dir(&mut self, prefix: &str, dir: &Path) -> Result<&mut Self, BundleError> {
        let mut found = Vec::new();
        walk(dir, prefix, &mut found)?;
        found.sort();
        for (bundle_path, source) in found {
            self.file(&bundle_path, &source, false)?;
        }
        Ok(self)
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// Collects `(bundle path, source)` for every regular file under `dir`.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), BundleError> {
    let meta = std::fs::symlink_metadata(dir).map_err(BundleError::io(dir))?;
    if !meta.is_dir() {
        return Err(BundleError::BadInput {
            path: dir.to_path_buf(),
            reason: "not a directory (symlinks are not followed)".to_owned(),
        });
    }
    for entry in std::fs::read_dir(dir).map_err(BundleError::io(dir))? {
        let entry = entry.map_err(BundleError::io(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| BundleError::BadInput {
                path: path.clone(),
                reason: "file name is not UTF-8".to_owned(),
            })?;
        let bundle_path = format!("{prefix}/{name}");
        let kind = entry.file_type().map_err(BundleError::io(&path))?;
        if kind.is_dir() {
            walk(&path, &bundle_path, out)?;
        } else if kind.is_file() {
            out.push((bundle_path, path));
        } else {
            return Err(BundleError::BadInput {
                path,
                reason: "not a regular file or directory (symlinks are not followed)".to_owned(),
            });
        }
    }
    Ok(())
}

/// Packs `inputs` as bundle `version` into `out` (unsigned); returns the manifest written.
pub fn pack(
    inputs: &BundleInputs,
    version: &semver::Version,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<Manifest, BundleError> {
    let mut total = 0u64;
    for input in &inputs.inputs {
        let meta = std::fs::metadata(&input.source).map_err(BundleError::io(&input.source))?;
        total = total.saturating_add(meta.len());
    }

    progress.start("hashing", total);
    let mut files = Vec::with_capacity(inputs.inputs.len());
    for input in &inputs.inputs {
        let mut file = File::open(&input.source).map_err(BundleError::io(&input.source))?;
        let (size, sha256) = copy_hashing(&mut file, &mut std::io::sink(), progress)
            .map_err(BundleError::io(&input.source))?;
        files.push(FileEntry {
            path: input.bundle_path.clone(),
            size,
            sha256,
            executable: input.executable,
        });
    }
    progress.finish();

    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        version: version.clone(),
        created_at: chrono::Utc::now(),
        files,
    };
    manifest.validate()?;
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::Io {
        path: out.to_path_buf(),
        source: std::io::Error::other(e),
    })?;

    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = write_bundle(
        inputs,
        &manifest,
        &manifest_bytes,
        &partial,
        total,
        progress,
    );
    if let Err(err) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    std::fs::rename(&partial, out).map_err(BundleError::io(out))?;
    Ok(manifest)
}

/// Writes header, manifest and payloads to `path`, checking each input against the manifest.
fn write_bundle(
    inputs: &BundleInputs,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    path: &Path,
    total: u64,
    progress: &mut dyn Progress,
) -> Result<(), BundleError> {
    let file = File::create(path).map_err(BundleError::io(path))?;
    let mut writer = BufWriter::new(file);
    write_head(&mut writer, manifest_bytes).map_err(BundleError::io(path))?;
    progress.start("writing", total);
    for (input, entry) in inputs.inputs.iter().zip(&manifest.files) {
        let file = File::open(&input.source).map_err(BundleError::io(&input.source))?;
        // Never copy more than was hashed, even if the file grew meanwhile.
        let mut limited = file.take(entry.size);
        let (size, sha256) = copy_hashing(&mut limited, &mut writer, progress)
            .map_err(BundleError::io(&input.source))?;
        if size != entry.size || sha256 != entry.sha256 {
            return Err(BundleError::BadInput {
                path: input.source.clone(),
                reason: "changed while packing; pack again".to_owned(),
            });
        }
    }
    progress.finish();
    let file = writer
        .into_inner()
        .map_err(|e| BundleError::io(path)(e.into_error()))?;
    file.sync_all().map_err(BundleError::io(path))
}

/// Copies `input` to `output`, returning the byte count and the sha256 in hex.
pub(crate) fn copy_hashing(
    input: &mut impl Read,
    output: &mut impl Write,
    progress: &mut dyn Progress,
) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        output.write_all(chunk)?;
        size += n as u64;
        progress.advance(n as u64);
    }
    Ok((size, to_hex(&hasher.finalize())))
}
