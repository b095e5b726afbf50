//! Why a message, or part of one, did not become readings; each kind has the short `reason`
//! that labels `vigil_mqtt_decode_errors_total`.

use vigil_sparkplug::{TopicError, ValueError};

use super::rebirth::Rebirth;

/// A message (or a field or metric of it) that could not be decoded. Never fatal: the source
/// counts it, logs it and goes on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// json: the payload is not JSON.
    #[error("the payload is not JSON: {0}")]
    NotJson(String),
    /// json: the payload is JSON but not an object.
    #[error("the payload is a JSON {0}, not an object")]
    NotObject(&'static str),
    /// json: a mapped field is not in the message.
    #[error("field {path:?} is missing")]
    FieldMissing {
        /// The field path.
        path: String,
    },
    /// json: a field is an object, an array or null, not a number, boolean or string.
    #[error("field {path:?} is {found}, not a number, boolean or string")]
    WrongType {
        /// The field path.
        path: String,
        /// What it is.
        found: &'static str,
    },
    /// json: the timestamp field is missing or neither epoch milliseconds nor RFC 3339. The
    /// readings are stamped with the time of arrival instead.
    #[error("timestamp field {path:?}: {problem}; stamped with the time of arrival")]
    BadTimestamp {
        /// The field path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// number: the payload is not a number or `true`/`false`.
    #[error("the payload {0:?} is not a number or true/false")]
    NotNumber(String),
    /// sparkplug_b: the topic is not a Sparkplug B topic.
    #[error(transparent)]
    BadTopic(#[from] TopicError),
    /// sparkplug_b: the payload is not a Sparkplug B protobuf.
    #[error(transparent)]
    Protobuf(#[from] vigil_sparkplug::Error),
    /// sparkplug_b: a DATA metric names an alias no birth bound (yet, or since a death).
    #[error("metric alias {alias} of {scope} is unknown: no birth bound it")]
    UnknownAlias {
        /// `group/edge_node[/device]`.
        scope: String,
        /// The alias.
        alias: u64,
    },
    /// sparkplug_b: a DATA metric names a metric that was not in the birth, and carries no
    /// datatype to read it by.
    #[error("metric {name:?} of {scope} was not in its birth and has no datatype")]
    UnknownMetric {
        /// `group/edge_node[/device]`.
        scope: String,
        /// The metric name.
        name: String,
    },
    /// sparkplug_b: a birth metric without a name or a usable datatype, or a DATA metric with
    /// neither name nor alias.
    #[error("metric {metric:?} of {scope}: {problem}")]
    BadMetric {
        /// `group/edge_node[/device]`.
        scope: String,
        /// The metric's name or alias, as far as known.
        metric: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// sparkplug_b: a value that does not fit its datatype.
    #[error("metric {metric:?}: {source}")]
    BadValue {
        /// The metric's name.
        metric: String,
        /// What is wrong.
        #[source]
        source: ValueError,
    },
    /// The device name made for the message breaks the device-name rules.
    #[error("no valid device name for the message: {0}")]
    BadDevice(String),
    /// A name (JSON key, metric name) that gives no valid point name.
    #[error("{0:?} gives no valid point name (1-64 lowercase letters, digits, '-', '_')")]
    BadPointName(String),
    /// sparkplug_b: the subscription already tracks as many edge nodes and devices as it
    /// may; births of new ones are ignored.
    #[error("already tracking {0} edge nodes and devices: the birth of {1} is ignored")]
    TooManyDevices(usize, String),
}

impl DecodeError {
    /// The `reason` label of `vigil_mqtt_decode_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::NotJson(_) => "not_json",
            DecodeError::NotObject(_) => "not_object",
            DecodeError::FieldMissing { .. } => "field_missing",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::BadTimestamp { .. } => "bad_timestamp",
            DecodeError::NotNumber(_) => "not_number",
            DecodeError::BadTopic(_) => "bad_topic",
            DecodeError::Protobuf(_) => "protobuf",
            DecodeError::UnknownAlias { .. } => "unknown_alias",
            DecodeError::UnknownMetric { .. } => "unknown_metric",
            DecodeError::BadMetric { .. } => "bad_metric",
            DecodeError::BadValue { .. } => "bad_value",
            DecodeError::BadDevice(_) => "bad_device",
            DecodeError::BadPointName(_) => "bad_point_name",
            DecodeError::TooManyDevices(..) => "too_many_devices",
        }
    }
}

/// What one message decoded into: its readings, and the problems with the parts that did
/// not decode. A message that fails as a whole has no readings and one problem; a JSON
/// message with one of three mapped fields missing has two readings and one problem.
/// `sparkplug_b` may also say that the message's edge node needs a rebirth.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// The readings, in message order.
    pub readings: Vec<vigil_core::Reading>,
    /// The problems, each counted once in `vigil_mqtt_decode_errors_total`.
    pub errors: Vec<DecodeError>,
    /// sparkplug_b: the edge node whose data this decoder cannot interpret (fully) without
    /// a new birth, for the connection to ask it for one (rate-limited by the route).
    pub rebirth: Option<Rebirth>,
}

impl Decoded {
    /// A message that failed as a whole.
    pub fn failed(error: DecodeError) -> Self {
        Decoded {
            readings: Vec::new(),
            errors: vec![error],
            rebirth: None,
        }
    }
}

impl From<DecodeError> for Decoded {
    fn from(error: DecodeError) -> Self {
        Decoded::failed(error)
    }
}
