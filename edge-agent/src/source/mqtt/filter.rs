//! MQTT topic filters: their syntax, matching a topic against one (capturing what the
//! wildcards matched, for device-name templates), and whether two filters can match the same
//! topic.

use std::fmt;

/// One level of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    /// Matches exactly this text.
    Exact(String),
    /// `+`: any one level.
    One,
    /// `#`: this level and everything below it, or nothing (`a/#` matches `a`).
    Rest,
}

/// A topic filter such as `facility/env/+/telemetry` or `spBv1.0/#`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    text: String,
    levels: Vec<Level>,
}

/// A topic filter that MQTT 3.1.1 refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{filter:?} is not a valid MQTT topic filter: {reason}")]
pub struct FilterError {
    /// The filter.
    pub filter: String,
    /// Why.
    pub reason: &'static str,
}

impl TopicFilter {
    /// Parses a filter: levels separated by `/`; `+` and `#` only as whole levels, `#` only
    /// last; not empty, no NUL.
    pub fn parse(filter: &str) -> Result<Self, FilterError> {
        let err = |reason| FilterError {
            filter: filter.to_owned(),
            reason,
        };
        if filter.is_empty() {
            return Err(err("it is empty"));
        }
        if filter.contains('\0') {
            return Err(err("it contains a NUL character"));
        }
        if filter.len() > 65535 {
            return Err(err("it is longer than 65535 bytes"));
        }
        let parts: Vec<&str> = filter.split('/').collect();
        let last = parts.len() - 1;
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.into_iter().enumerate() {
            levels.push(match part {
                "+" => Level::One,
                "#" if i == last => Level::Rest,
                "#" => return Err(err("'#' may only be the last level")),
                p if p.contains(['+', '#']) => {
                    return Err(err("'+' and '#' must be a whole level, like a/+/c or a/#"))
                }
                p => Level::Exact(p.to_owned()),
            });
        }
        Ok(TopicFilter {
            text: filter.to_owned(),
            levels,
        })
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How many wildcards (`+` and `#`) the filter has: the `{1}`…`{n}` a device template may
    /// use.
    pub fn wildcards(&self) -> usize {
        self.levels
            .iter()
            .filter(|l| !matches!(l, Level::Exact(_)))
            .count()
    }

    /// What each wildcard matched if `topic` matches the filter, in order; `None` if it does
    /// not. A `#` captures the rest of the topic (`a/b`), or `""` when it matched nothing.
    /// Topics starting with `$` match no filter that starts with a wildcard (MQTT 4.7.2).
    pub fn captures<'t>(&self, topic: &'t str) -> Option<Vec<&'t str>> {
        if topic.starts_with('$') && !matches!(self.levels.first(), Some(Level::Exact(_))) {
            return None;
        }
        let mut out = Vec::new();
        let mut rest = Some(topic);
        for level in &self.levels {
            match level {
                Level::Rest => {
                    out.push(rest.unwrap_or(""));
                    return Some(out);
                }
                Level::One | Level::Exact(_) => {
                    let current = rest?;
                    let (head, tail) = match current.split_once('/') {
                        Some((h, t)) => (h, Some(t)),
                        None => (current, None),
                    };
                    if let Level::Exact(want) = level {
                        if head != want {
                            return None;
                        }
                    } else {
                        out.push(head);
                    }
                    rest = tail;
                }
            }
        }
        rest.is_none().then_some(out)
    }

    /// Whether some topic matches both filters.
    pub fn overlaps(&self, other: &TopicFilter) -> bool {
        let (a, b) = (&self.levels, &other.levels);
        for i in 0.. {
            match (a.get(i), b.get(i)) {
                (Some(Level::Rest), _) | (_, Some(Level::Rest)) => return true,
                (None, None) => return true,
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(Level::Exact(x)), Some(Level::Exact(y))) if x != y => return false,
                _ => {}
            }
        }
        false
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(s: &str) -> TopicFilter {
        TopicFilter::parse(s).expect("valid filter")
    }

    #[test]
    fn syntax() {
        for ok in [
            "a",
            "a/b",
            "+",
            "#",
            "a/+/c",
            "a/#",
            "/",
            "a//b",
            "+/+/#",
            "spBv1.0/#",
        ] {
            assert!(TopicFilter::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/#/b", "a+", "a/b#", "#/a", "a\0b"] {
            assert!(TopicFilter::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(f("a/+/c/#").wildcards(), 2);
    }

    #[test]
    fn captures_wildcards() {
        let env = f("facility/env/+/telemetry");
        assert_eq!(env.captures("facility/env/3/telemetry"), Some(vec!["3"]));
        assert_eq!(env.captures("facility/env/3/status"), None);
        assert_eq!(env.captures("facility/env/3/telemetry/x"), None);
        assert_eq!(env.captures("facility/env/telemetry"), None);
        assert_eq!(f("a/#").captures("a/b/c"), Some(vec!["b/c"]));
        assert_eq!(f("a/#").captures("a"), Some(vec![""]));
        assert_eq!(f("#").captures("x/y"), Some(vec!["x/y"]));
        assert_eq!(f("+/+").captures("x/y"), Some(vec!["x", "y"]));
        assert_eq!(f("+").captures("x/y"), None);
        assert_eq!(f("a/+").captures("a/"), Some(vec![""]));
        assert_eq!(f("a").captures("a"), Some(vec![]));
        assert_eq!(f("#").captures("$SYS/broker"), None);
        assert_eq!(f("$SYS/#").captures("$SYS/broker"), Some(vec!["broker"]));
    }

    #[test]
    fn overlaps() {
        assert!(f("a/#").overlaps(&f("a/b")));
        assert!(f("a/#").overlaps(&f("a")));
        assert!(f("a/+/c").overlaps(&f("a/b/+")));
        assert!(f("#").overlaps(&f("x")));
        assert!(!f("a/+").overlaps(&f("a/b/c")));
        assert!(!f("a/b").overlaps(&f("a/c")));
        assert!(!f("spBv1.0/g1/#").overlaps(&f("spBv1.0/g2/#")));
    }

    proptest! {
        /// A topic built from a filter by filling its wildcards matches it, and captures what
        /// filled them.
        #[test]
        fn filled_filters_match(
            levels in prop::collection::vec(prop_oneof!["[a-z]{1,3}", Just("+".to_owned())], 1..5),
            fills in prop::collection::vec("[a-z0-9]{1,3}", 5),
            hash in any::<bool>(),
        ) {
            let mut filter = levels.join("/");
            if hash { filter.push_str("/#"); }
            let parsed = f(&filter);
            let mut fill = fills.iter();
            let mut captured = Vec::new();
            let mut topic: Vec<String> = levels.iter().map(|l| if l == "+" {
                let v = fill.next().cloned().unwrap_or_default();
                captured.push(v.clone());
                v
            } else { l.clone() }).collect();
            if hash { topic.push("x".into()); topic.push("y".into()); captured.push("x/y".into()); }
            let topic = topic.join("/");
            let got = parsed.captures(&topic).map(|c| c.into_iter().map(str::to_owned).collect::<Vec<_>>());
            prop_assert_eq!(got, Some(captured));
        }

        #[test]
        fn matching_never_panics(filter in "[a-c/+#]{1,8}", topic in "[a-c/$]{0,8}") {
            if let Ok(parsed) = TopicFilter::parse(&filter) {
                let _ = parsed.captures(&topic);
                let _ = parsed.overlaps(&parsed);
            }
        }
    }
}
