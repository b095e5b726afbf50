//! The one MQTT broker URL of every Vigil config: `mqtt://host[:port]` (plain TCP, port 1883 by
//! default) or `mqtts://host[:port]` (TLS, port 8883 by default), an IPv6 host in brackets
//! (`mqtts://[::1]:8883`).
//!
//! The agent's `[uplink] url`, the hub's `[mqtt] url`, `[mqtt] advertise` and `[parent] url`,
//! the link's connection and the simulator's `[[mqtt]] url` all parse with [`BrokerUrl::parse`],
//! so they agree on what is a URL. A path, a query, a fragment or a user in the URL is refused
//! with a message that says what to write instead; only the agent's `[[mqtt.subscription]]`
//! (a facility's own broker) may carry a login, through [`BrokerUrl::parse_with_login`].
//! Config structs can hold a [`BrokerUrl`] directly: it deserialises from a TOML string, and a
//! bad one becomes a [`crate::ConfigError`] naming the file, line and key.

use std::fmt;

/// The default port of `mqtt://`.
pub const DEFAULT_PORT: u16 = 1883;

/// The default port of `mqtts://`.
pub const DEFAULT_TLS_PORT: u16 = 8883;

/// A checked broker URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerUrl {
    /// `true` for `mqtts://` (TLS).
    pub tls: bool,
    /// A DNS name or an IP address; an IPv6 address without its brackets (`::1`). With TLS,
    /// the name the broker's certificate must carry (an IP SAN for an address).
    pub host: String,
    /// The port: the URL's, or 1883 (`mqtt://`) / 8883 (`mqtts://`) when it names none.
    pub port: u16,
}

/// The user name and password of a broker URL that may carry them
/// ([`BrokerUrl::parse_with_login`]). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BrokerLogin {
    /// The user name (not empty).
    pub username: String,
    /// The password, when the URL gives one.
    pub password: Option<String>,
}

impl fmt::Debug for BrokerLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerLogin")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A broker URL that cannot be used: the URL (its password hidden) and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?}: {reason}")]
pub struct BrokerUrlError {
    /// The URL as written, any password replaced by `***`.
    pub url: String,
    /// What is wrong and what to write.
    pub reason: String,
}

/// A config check's message is the error's text (`Problem::new("mqtt.url", e)`).
impl From<BrokerUrlError> for String {
    fn from(e: BrokerUrlError) -> String {
        e.to_string()
    }
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (a trailing `/` is allowed).
    pub fn parse(url: &str) -> Result<BrokerUrl, BrokerUrlError> {
        match Self::parse_with_login(url)? {
            (parsed, None) => Ok(parsed),
            (_, Some(_)) => Err(error(
                url,
                "a broker URL here carries no user or password: write mqtt(s)://host[:port] \
                 (nodes authenticate with their certificate)",
            )),
        }
    }

    /// Parses `mqtt(s)://[user[:password]@]host[:port]`: the URL and its login, if any.
    pub fn parse_with_login(url: &str) -> Result<(BrokerUrl, Option<BrokerLogin>), BrokerUrlError> {
        let err = |reason: &str| error(url, reason);
        if url.trim() != url || url.contains(char::is_whitespace) {
            return Err(err("remove the spaces: a broker URL has none"));
        }
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else {
            return Err(err(
                "must start with mqtt:// or mqtts://, e.g. mqtt://127.0.0.1:1883",
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(err(
                "write only the scheme, host and port (mqtt(s)://host[:port]), without a path, query or fragment",
            ));
        }
        let (login, hostport) = match rest.rsplit_once('@') {
            None => (None, rest),
            Some((userinfo, hostport)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password.to_owned())),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(err("the user name before '@' is empty"));
                }
                let login = BrokerLogin {
                    username: user.to_owned(),
                    password,
                };
                (Some(login), hostport)
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(err(
                    "an IPv6 host needs its closing ']', e.g. mqtt://[::1]:1883",
                ));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(err(
                    "only an IPv6 address goes in brackets, e.g. mqtt://[::1]:1883",
                ));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(err("expected ':port' after the IPv6 host")),
                },
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(err(
                        "write an IPv6 host in brackets, e.g. mqtt://[::1]:1883",
                    ))
                }
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(err(
                "the host is empty: write mqtt(s)://host[:port], e.g. mqtt://127.0.0.1:1883",
            ));
        }
        let port = match port {
            None if tls => DEFAULT_TLS_PORT,
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => {
                    return Err(err(&format!(
                        "the port {p:?} is not a number from 1 to 65535"
                    )))
                }
            },
        };
        let parsed = BrokerUrl {
            tls,
            host: host.to_owned(),
            port,
        };
        Ok((parsed, login))
    }

    /// The URL's scheme: `mqtt` or `mqtts`.
    pub const fn scheme(&self) -> &'static str {
        if self.tls {
            "mqtts"
        } else {
            "mqtt"
        }
    }
}

/// `url` with any password replaced by `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn error(url: &str, reason: &str) -> BrokerUrlError {
    BrokerUrlError {
        url: redact(url),
        reason: reason.to_owned(),
    }
}

impl fmt::Display for BrokerUrl {
    /// `mqtt(s)://host:port`, an IPv6 host in brackets; what [`BrokerUrl::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for BrokerUrl {
    type Err = BrokerUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BrokerUrl::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for BrokerUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BrokerUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for BrokerUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(tls: bool, host: &str, port: u16) -> BrokerUrl {
        BrokerUrl {
            tls,
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn ipv4_hostname_and_default_ports() {
        assert_eq!(
            BrokerUrl::parse("mqtt://127.0.0.1:1884"),
            Ok(url(false, "127.0.0.1", 1884))
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://broker.local"),
            Ok(url(false, "broker.local", DEFAULT_PORT))
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://broker.local/"),
            Ok(url(false, "broker.local", 1883))
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://hub.example"),
            Ok(url(true, "hub.example", DEFAULT_TLS_PORT))
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://hub.example:8884"),
            Ok(url(true, "hub.example", 8884))
        );
    }

    #[test]
    fn ipv6_literals_lose_their_brackets_and_get_them_back() {
        assert_eq!(
            BrokerUrl::parse("mqtt://[::1]"),
            Ok(url(false, "::1", 1883))
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://[::1]:1884"),
            Ok(url(false, "::1", 1884))
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://[::1]"),
            Ok(url(true, "::1", 8883))
        );
        assert_eq!(url(false, "::1", 1884).to_string(), "mqtt://[::1]:1884");
        assert_eq!(url(true, "h", 1).to_string(), "mqtts://h:1");
        for text in [
            "mqtt://[::1]:1884",
            "mqtts://[fe80::2]:8883",
            "mqtt://h:1883",
        ] {
            let parsed = BrokerUrl::parse(text).expect(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(BrokerUrl::parse(&parsed.to_string()), Ok(parsed));
        }
    }

    /// Each bad URL is refused, and the message names the URL and says what to write.
    #[test]
    fn bad_urls_are_refused_with_what_to_write() {
        for (bad, says) in [
            ("127.0.0.1:1883", "must start with mqtt:// or mqtts://"),
            ("tcp://h:1883", "must start with mqtt:// or mqtts://"),
            ("ssl://h:8883", "must start with mqtt:// or mqtts://"),
            ("http://h", "must start with mqtt:// or mqtts://"),
            ("mqtt://", "the host is empty"),
            ("mqtts://", "the host is empty"),
            ("mqtt://:1883", "the host is empty"),
            ("mqtt://h:", "the port \"\" is not a number"),
            (
                "mqtt://h:0",
                "the port \"0\" is not a number from 1 to 65535",
            ),
            ("mqtt://h:70000", "from 1 to 65535"),
            ("mqtt://h:port", "the port \"port\" is not"),
            ("mqtt://h/path", "without a path"),
            ("mqtt://h:1883/vigil", "without a path"),
            ("mqtt://h?x=1", "query"),
            ("mqtt://h#f", "fragment"),
            ("mqtt://user@h", "carries no user or password"),
            ("mqtt://user:secret@h", "carries no user or password"),
            ("mqtt://@h", "the user name before '@' is empty"),
            ("mqtt://[::1", "closing ']'"),
            ("mqtt://[::1]x", "expected ':port'"),
            ("mqtt://[host]:1", "only an IPv6 address goes in brackets"),
            ("mqtt://::1:1883", "in brackets"),
            (" mqtt://h", "remove the spaces"),
            ("mqtt://h ", "remove the spaces"),
            ("mqtt://h :1", "remove the spaces"),
            ("", "must start with mqtt://"),
        ] {
            let err = BrokerUrl::parse(bad).expect_err(bad);
            let text = err.to_string();
            assert!(text.contains(says), "{bad:?}: {text}");
            assert!(text.starts_with(&format!("{:?}", redact(bad))), "{text}");
        }
    }

    #[test]
    fn a_login_is_read_only_where_asked_and_never_shown() {
        let (parsed, login) =
            BrokerUrl::parse_with_login("mqtt://agent:s3cr:et@[::1]:1884").expect("valid");
        assert_eq!(parsed, url(false, "::1", 1884));
        let login = login.expect("login");
        assert_eq!(login.username, "agent");
        assert_eq!(login.password.as_deref(), Some("s3cr:et"));
        assert!(!format!("{login:?}").contains("s3cr"));
        let (_, login) = BrokerUrl::parse_with_login("mqtt://agent@h").expect("valid");
        assert_eq!(login.map(|l| l.password), Some(None));
        assert_eq!(
            BrokerUrl::parse_with_login("mqtt://h").map(|(_, l)| l),
            Ok(None)
        );
        for bad in [
            "mqtt://u:secret@h:x",
            "mqtt://u:secret@h/p",
            "mqtt://u:secret@h",
        ] {
            let err = BrokerUrl::parse(bad).expect_err(bad);
            assert!(!err.to_string().contains("secret"), "{err}");
            assert!(err.to_string().contains("u:***@"), "{err}");
        }
    }

    #[test]
    fn config_structs_hold_it_and_errors_name_file_line_and_key() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Conf {
            uplink: Uplink,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Uplink {
            url: BrokerUrl,
        }
        impl crate::Validate for Conf {
            fn validate(&self) -> Vec<crate::Problem> {
                Vec::new()
            }
        }
        let path = std::path::Path::new("agent.toml");
        let ok: Conf = crate::parse(path, "[uplink]\nurl = \"mqtts://[::1]\"\n").expect("valid");
        assert_eq!(ok.uplink.url, url(true, "::1", 8883));
        let err = crate::parse::<Conf>(path, "[uplink]\n\nurl = \"mqtt://hub/vigil\"\n")
            .expect_err("path");
        let e = &err.0[0];
        assert_eq!((e.line, e.key.as_str()), (Some(3), "uplink.url"), "{e}");
        assert!(
            e.to_string()
                .starts_with("agent.toml:3: uplink.url: \"mqtt://hub/vigil\": write only"),
            "{e}"
        );
        assert_eq!(
            serde_json::to_string(&url(false, "::1", 1)).expect("json"),
            "\"mqtt://[::1]:1\""
        );
    }
}
