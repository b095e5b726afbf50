//! What is installed, and how it changes: pure transitions over [`UpdateState`], no I/O
//! (`versions` reads and writes it as `state.json`).
//!
//! - `current`: the version `supervise` runs; `None` is the base install (the binary that
//!   runs `supervise` itself, with the given config).
//! - `previous`: the last version that was kept (committed) before `current`; the fallback
//!   target while `current` is on trial. `None` falls back to the base install.
//! - `trial`: set while `current` has not yet run healthy for `[update] trial`.
//! - `highest`: the highest version ever applied. A bundle must be newer than it (or, before
//!   any, than the agent's own version): this is the rollback floor, and it does not go down
//!   on a fallback, so a version that failed its trial is not applied again — ship a newer one.
//!
//! Applying a version while another is still on trial keeps `previous`: the fallback target
//! is always a version that has proved itself (or the base install), never an untried one.

use chrono::{DateTime, Utc};
use semver::Version;
use serde::{Deserialize, Serialize};

/// How many times a version is started on trial before it is given up without finishing
/// (each start that ends without a verdict — the supervisor or the gateway stopped — counts).
pub const MAX_TRIAL_STARTS: u32 = 3;

/// What is installed (`<dir>/state.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateState {
    /// The version that runs; `None`: the base install.
    #[serde(default)]
    pub current: Option<Version>,
    /// The fallback target while `current` is on trial; `None`: the base install.
    #[serde(default)]
    pub previous: Option<Version>,
    /// `current` is on trial.
    #[serde(default)]
    pub trial: Option<Trial>,
    /// The highest version ever applied: the rollback floor.
    #[serde(default)]
    pub highest: Option<Version>,
    /// The last fallback, for `update status`.
    #[serde(default)]
    pub last_fallback: Option<Fallback>,
}

/// A version on trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    /// The version on trial (always `current`).
    pub version: Version,
    /// When it was applied.
    pub applied_at: DateTime<Utc>,
    /// How many times `supervise` has started it on trial.
    #[serde(default)]
    pub starts: u32,
}

/// A fallback from a version that failed its trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// The version that failed.
    pub from: Version,
    /// The version fallen back to; `None`: the base install.
    pub to: Option<Version>,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A version name for messages: the version, or `base` for the base install.
pub fn shown(version: Option<&Version>) -> String {
    version.map_or_else(|| "base".to_owned(), ToString::to_string)
}

impl UpdateState {
    /// The version a bundle must be newer than.
    pub fn floor(&self, own: &Version) -> Version {
        self.highest.clone().unwrap_or_else(|| own.clone())
    }

    /// Whether `current` is on trial.
    pub fn on_trial(&self) -> bool {
        self.trial
            .as_ref()
            .is_some_and(|t| Some(&t.version) == self.current.as_ref())
    }

    /// Makes `version` current and puts it on trial. `previous` becomes the version that ran
    /// before, if that one was kept; otherwise it stays the last kept one.
    pub fn install(&mut self, version: Version, now: DateTime<Utc>) {
        if !self.on_trial() {
            self.previous = self.current.take();
        }
        if self.highest.as_ref().is_none_or(|h| version > *h) {
            self.highest = Some(version.clone());
        }
        self.current = Some(version.clone());
        self.trial = Some(Trial {
            version,
            applied_at: now,
            starts: 0,
        });
    }

    /// Counts one more start of the version on trial; returns the count, or `None` when
    /// `current` is not on trial.
    pub fn start_trial(&mut self) -> Option<u32> {
        if !self.on_trial() {
            return None;
        }
        let trial = self.trial.as_mut()?;
        trial.starts = trial.starts.saturating_add(1);
        Some(trial.starts)
    }

    /// Keeps `version`, which must be the one on trial; returns whether it was.
    pub fn commit(&mut self, version: &Version) -> bool {
        if self.on_trial() && self.current.as_ref() == Some(version) {
            self.trial = None;
            true
        } else {
            false
        }
    }

    /// Falls back from `version`, which must be the one on trial, to `previous`; returns the
    /// fallback, or `None` when `version` is not on trial (another was applied meanwhile).
    pub fn fall_back(
        &mut self,
        version: &Version,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Option<Fallback> {
        if !(self.on_trial() && self.current.as_ref() == Some(version)) {
            return None;
        }
        let fallback = Fallback {
            from: version.clone(),
            to: self.previous.take(),
            reason: reason.to_owned(),
            at: now,
        };
        self.current.clone_from(&fallback.to);
        self.trial = None;
        self.last_fallback = Some(fallback.clone());
        Some(fallback)
    }

    /// The versions whose directories must be kept.
    pub fn keep(&self) -> Vec<&Version> {
        self.current.iter().chain(self.previous.iter()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("semver")
    }

    #[test]
    fn install_commit_install_keeps_the_last_kept_version_as_previous() {
        let now = Utc::now();
        let mut s = UpdateState::default();
        assert_eq!(s.floor(&v("0.1.0")), v("0.1.0"));
        s.install(v("1.0.0"), now);
        assert_eq!(
            (s.current.clone(), s.previous.clone()),
            (Some(v("1.0.0")), None)
        );
        assert!(s.on_trial());
        assert_eq!(s.start_trial(), Some(1));
        assert!(s.commit(&v("1.0.0")));
        assert!(!s.on_trial());
        assert_eq!(s.start_trial(), None);
        s.install(v("2.0.0"), now);
        assert_eq!(s.previous, Some(v("1.0.0")));
        // Another version applied while 2.0.0 is untried: the fallback target stays 1.0.0.
        s.install(v("3.0.0"), now);
        assert_eq!(s.previous, Some(v("1.0.0")));
        assert_eq!(s.floor(&v("0.1.0")), v("3.0.0"));
        assert_eq!(s.keep(), vec![&v("3.0.0"), &v("1.0.0")]);
    }

    #[test]
    fn fallback_returns_to_previous_and_keeps_the_floor() {
        let now = Utc::now();
        let mut s = UpdateState::default();
        s.install(v("1.0.0"), now);
        s.commit(&v("1.0.0"));
        s.install(v("2.0.0"), now);
        // Only the version on trial can fall back or be committed.
        assert!(s.fall_back(&v("1.0.0"), "x", now).is_none());
        let f = s.fall_back(&v("2.0.0"), "exited", now).expect("on trial");
        assert_eq!(
            (f.from.clone(), f.to.clone()),
            (v("2.0.0"), Some(v("1.0.0")))
        );
        assert_eq!(s.current, Some(v("1.0.0")));
        assert!(s.trial.is_none());
        assert!(!s.commit(&v("2.0.0")));
        assert_eq!(
            s.floor(&v("0.1.0")),
            v("2.0.0"),
            "no retry of a failed version"
        );
        assert_eq!(s.last_fallback, Some(f));
    }

    #[test]
    fn a_first_version_falls_back_to_the_base_install() {
        let now = Utc::now();
        let mut s = UpdateState::default();
        s.install(v("1.0.0"), now);
        let f = s.fall_back(&v("1.0.0"), "exited", now).expect("on trial");
        assert_eq!(f.to, None);
        assert_eq!(s.current, None);
        assert_eq!(shown(s.current.as_ref()), "base");
    }

    #[test]
    fn state_round_trips_as_json() {
        let mut s = UpdateState::default();
        s.install(v("1.2.3-rc.1"), Utc::now());
        let text = serde_json::to_string_pretty(&s).expect("json");
        let back: UpdateState = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, s);
    }
}
