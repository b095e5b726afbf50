//! The versions directory (`[update] dir`) on disk:
//!
//! ```text
//! <dir>/state.json          what is installed (state::UpdateState), replaced atomically
//! <dir>/.lock               held (flock) by whoever changes state.json or the directories
//! <dir>/current -> 1.4.0    the running version; absent for the base install
//! <dir>/1.3.2/              one directory per kept version: agent/vigil-agent,
//! <dir>/1.4.0/                config/agent.toml, profiles/, models/ as in the bundle
//! <dir>/.staging-1.5.0-77/  an extraction in progress; renamed to 1.5.0/ when complete
//! ```
//!
//! `state.json` is the truth; the `current` symlink follows it (replaced by renaming a new
//! link over it, so it is never missing or half-written) and is re-pointed by
//! [`VersionsDir::point_current`] whenever they disagree, e.g. after a crash between the
//! two writes. Only entries this module made are ever removed: names that parse as a version,
//! and `.staging-*`.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use semver::Version;

use super::state::UpdateState;
use super::UpdateError;

/// The state file's name.
const STATE_FILE: &str = "state.json";
/// The lock file's name.
const LOCK_FILE: &str = ".lock";
/// The symlink to the running version.
const CURRENT_LINK: &str = "current";
/// The prefix of staging directories.
const STAGING_PREFIX: &str = ".staging-";

/// The versions directory.
#[derive(Debug, Clone)]
pub struct VersionsDir {
    dir: PathBuf,
}

/// The lock on the versions directory; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl VersionsDir {
    /// The versions directory at `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        VersionsDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where `version` lives.
    pub fn version_dir(&self, version: &Version) -> PathBuf {
        self.dir.join(version.to_string())
    }

    /// The `current` symlink.
    pub fn current_link(&self) -> PathBuf {
        self.dir.join(CURRENT_LINK)
    }

    /// Takes the exclusive lock, creating the directory if needed; blocks while another
    /// process (an `apply`, the supervisor) holds it.
    pub fn lock(&self) -> Result<DirLock, UpdateError> {
        std::fs::create_dir_all(&self.dir).map_err(UpdateError::io(&self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(UpdateError::io(&path))?;
        file.lock().map_err(UpdateError::io(&path))?;
        Ok(DirLock { _file: file })
    }

    /// Reads the state; a missing file is the empty state (nothing installed).
    pub fn load(&self) -> Result<UpdateState, UpdateError> {
        let path = self.dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| UpdateError::BadState {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UpdateState::default()),
            Err(e) => Err(UpdateError::io(path)(e)),
        }
    }

    /// Replaces the state durably: a temporary file, fsync, rename, fsync of the directory.
    /// Call with the lock held.
    pub fn save(&self, _lock: &DirLock, state: &UpdateState) -> Result<(), UpdateError> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(state).map_err(|e| UpdateError::BadState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = File::create(&tmp).map_err(UpdateError::io(&tmp))?;
        file.write_all(&text).map_err(UpdateError::io(&tmp))?;
        file.write_all(b"\n").map_err(UpdateError::io(&tmp))?;
        file.sync_all().map_err(UpdateError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(UpdateError::io(&path))?;
        self.sync_dir()
    }

    /// Points `current` at `version` (or removes it for the base install), atomically.
    pub fn point_current(&self, version: Option<&Version>) -> Result<(), UpdateError> {
        let link = self.current_link();
        let Some(version) = version else {
            return match std::fs::remove_file(&link) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(UpdateError::io(link)(e)),
                _ => self.sync_dir(),
            };
        };
        let target = PathBuf::from(version.to_string());
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(());
        }
        let tmp = self
            .dir
            .join(format!(".{CURRENT_LINK}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(UpdateError::io(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(UpdateError::io(&link))?;
        self.sync_dir()
    }

    /// Where the `current` symlink points, as a version (`None` when absent or foreign).
    pub fn current_target(&self) -> Option<Version> {
        let target = std::fs::read_link(self.current_link()).ok()?;
        Version::parse(target.to_str()?).ok()
    }

    /// A fresh staging directory for `version` (which does not exist yet).
    pub fn staging_dir(&self, version: &Version) -> PathBuf {
        self.dir
            .join(format!("{STAGING_PREFIX}{version}-{}", std::process::id()))
    }

    /// Moves a complete extraction from `staging` to `version`'s directory, replacing a
    /// leftover directory of that version that the state does not name (an apply that
    /// crashed after the rename). Call with the lock held.
    pub fn install(
        &self,
        _lock: &DirLock,
        staging: &Path,
        version: &Version,
    ) -> Result<PathBuf, UpdateError> {
        let dest = self.version_dir(version);
        if std::fs::symlink_metadata(&dest).is_ok() {
            tracing::warn!(dir = %dest.display(), "removing a leftover version directory");
            remove_any(&dest)?;
        }
        std::fs::rename(staging, &dest).map_err(UpdateError::io(&dest))?;
        self.sync_dir()?;
        Ok(dest)
    }

    /// Removes every version directory not in `keep`, and stale staging directories.
    /// Entries of other kinds are left alone. Call with the lock held.
    pub fn prune(&self, _lock: &DirLock, keep: &[&Version]) -> Result<Vec<PathBuf>, UpdateError> {
        let mut removed = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(UpdateError::io(&self.dir))?;
        for entry in entries {
            let entry = entry.map_err(UpdateError::io(&self.dir))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let ours = match Version::parse(&name) {
                Ok(v) => !keep.contains(&&v),
                Err(_) => name.starts_with(STAGING_PREFIX),
            };
            if ours {
                let path = entry.path();
                remove_any(&path)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    fn sync_dir(&self) -> Result<(), UpdateError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(UpdateError::io(&self.dir))
    }
}

/// Removes a file, a symlink (not what it points to) or a directory tree.
pub(crate) fn remove_any(path: &Path) -> Result<(), UpdateError> {
    let meta = std::fs::symlink_metadata(path).map_err(UpdateError::io(path))?;
    let removed = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(UpdateError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn state_saves_and_current_switches_atomically() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = VersionsDir::new(tmp.path().join("versions"));
        assert_eq!(dir.load()?, UpdateState::default());
        let lock = dir.lock()?;
        let mut state = UpdateState::default();
        state.install(Version::new(1, 0, 0), chrono::Utc::now());
        dir.save(&lock, &state)?;
        assert_eq!(dir.load()?, state);
        dir.point_current(Some(&Version::new(1, 0, 0)))?;
        assert_eq!(dir.current_target(), Some(Version::new(1, 0, 0)));
        dir.point_current(Some(&Version::new(2, 0, 0)))?;
        assert_eq!(dir.current_target(), Some(Version::new(2, 0, 0)));
        dir.point_current(None)?;
        assert_eq!(dir.current_target(), None);
        Ok(())
    }

    #[test]
    fn prune_removes_only_its_own_entries() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = VersionsDir::new(tmp.path());
        for name in ["1.0.0", "2.0.0", "3.0.0", ".staging-4.0.0-1", "notes"] {
            std::fs::create_dir(tmp.path().join(name))?;
        }
        let lock = dir.lock()?;
        let keep = [Version::new(3, 0, 0), Version::new(1, 0, 0)];
        let removed = dir.prune(&lock, &keep.iter().collect::<Vec<_>>())?;
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(left, vec![".lock", "1.0.0", "3.0.0", "notes"]);
        Ok(())
    }
}
