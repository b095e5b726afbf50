//! The messages of `sparkplug_b.proto` (package `org.eclipse.tahu.protobuf`, proto2), written
//! by hand as prost structs: no protoc, no build script.
//!
//! Names follow the proto, flattened: `Payload.Metric` is [`Metric`], the `value` oneof of a
//! metric is [`MetricValue`], `Payload.DataSet.DataSetValue` is [`DataSetValue`], and so on.
//! Every proto2 `optional` scalar is an `Option`, so "absent" and "zero" stay apart on the
//! wire. Field numbers are the schema's; the byte-exact test in `codec.rs` pins them.
//!
//! prost also generates a getter per optional scalar that answers the proto default when
//! the field is absent: `metric.is_null()` is `false`, `metric.name()` is `""`.
//!
//! Proto2 `extensions` ranges are not modelled: prost skips unknown fields when decoding, so
//! payloads that use extensions still decode (without them).

// prost's derives implement `Debug` for every message and oneof.
#![allow(missing_debug_implementations)]

/// A Sparkplug B payload: the body of every NBIRTH, NDEATH, DBIRTH, DDEATH, NDATA, DDATA,
/// NCMD and DCMD message.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Payload {
    /// When the message was sent, milliseconds since the Unix epoch (UTC).
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// The message sequence number, 0..=255 and wrapping; absent in NDEATH.
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
    /// A UUID naming the schema of `body`, when a producer bypasses the metrics.
    #[prost(string, optional, tag = "4")]
    pub uuid: Option<String>,
    /// An opaque body, when a producer bypasses the metrics.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub body: Option<Vec<u8>>,
}

/// `Payload.Metric`: one named (or aliased) value.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Metric {
    /// The metric's name; in births always, in DATA messages usually replaced by `alias`.
    /// Names may contain `/` to form a folder hierarchy (`Inputs/Temperature`).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The alias a birth binds to the name, used instead of it in later DATA messages.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// When the value was acquired, milliseconds since the Unix epoch (UTC).
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// The [`DataType`](crate::DataType) as its number; in births always, in DATA messages
    /// usually absent.
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// Historical data that must not update the real-time value.
    #[prost(bool, optional, tag = "5")]
    pub is_historical: Option<bool>,
    /// A value consumers should not store.
    #[prost(bool, optional, tag = "6")]
    pub is_transient: Option<bool>,
    /// The value is null (explicitly, rather than a sentinel like -1).
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// Metadata (files, multi-part bytes).
    #[prost(message, optional, tag = "8")]
    pub metadata: Option<MetaData>,
    /// Properties (engineering unit, limits, quality…).
    #[prost(message, optional, tag = "9")]
    pub properties: Option<PropertySet>,
    /// The value, in the field its datatype implies.
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19")]
    pub value: Option<MetricValue>,
}

/// The `value` oneof of a [`Metric`].
#[derive(Clone, PartialEq, ::prost::Oneof)]
pub enum MetricValue {
    /// Int8, Int16, Int32 (two's complement), UInt8, UInt16, UInt32.
    #[prost(uint32, tag = "10")]
    IntValue(u32),
    /// Int64 (two's complement), UInt64, DateTime (epoch milliseconds).
    #[prost(uint64, tag = "11")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "12")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "13")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "14")]
    BooleanValue(bool),
    /// String, Text, UUID.
    #[prost(string, tag = "15")]
    StringValue(String),
    /// Bytes, File.
    #[prost(bytes = "vec", tag = "16")]
    BytesValue(Vec<u8>),
    /// DataSet.
    #[prost(message, tag = "17")]
    DatasetValue(DataSet),
    /// Template.
    #[prost(message, tag = "18")]
    TemplateValue(Template),
    /// Third-party extension.
    #[prost(message, tag = "19")]
    ExtensionValue(MetricValueExtension),
}

/// `Payload.Metric.MetricValueExtension`: a placeholder for third-party extensions.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricValueExtension {}

/// `Payload.MetaData`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetaData {
    /// Bytes: this is one part of a multi-part value.
    #[prost(bool, optional, tag = "1")]
    pub is_multi_part: Option<bool>,
    /// Content (media) type.
    #[prost(string, optional, tag = "2")]
    pub content_type: Option<String>,
    /// Size of a file, string or multi-part value.
    #[prost(uint64, optional, tag = "3")]
    pub size: Option<u64>,
    /// Sequence number of a multi-part part.
    #[prost(uint64, optional, tag = "4")]
    pub seq: Option<u64>,
    /// File name.
    #[prost(string, optional, tag = "5")]
    pub file_name: Option<String>,
    /// File type (`xml`, `json`…).
    #[prost(string, optional, tag = "6")]
    pub file_type: Option<String>,
    /// MD5 of the data.
    #[prost(string, optional, tag = "7")]
    pub md5: Option<String>,
    /// Free text.
    #[prost(string, optional, tag = "8")]
    pub description: Option<String>,
}

/// `Payload.PropertySet`: parallel lists of keys and values.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PropertySet {
    /// Property names.
    #[prost(string, repeated, tag = "1")]
    pub keys: Vec<String>,
    /// Property values, one per key.
    #[prost(message, repeated, tag = "2")]
    pub values: Vec<PropertyValue>,
}

/// `Payload.PropertySetList`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PropertySetList {
    /// The sets.
    #[prost(message, repeated, tag = "1")]
    pub propertyset: Vec<PropertySet>,
}

/// `Payload.PropertyValue`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PropertyValue {
    /// The [`DataType`](crate::DataType) as its number.
    #[prost(uint32, optional, tag = "1")]
    pub r#type: Option<u32>,
    /// The value is null.
    #[prost(bool, optional, tag = "2")]
    pub is_null: Option<bool>,
    /// The value.
    #[prost(oneof = "PropertyValueKind", tags = "3, 4, 5, 6, 7, 8, 9, 10, 11")]
    pub value: Option<PropertyValueKind>,
}

/// The `value` oneof of a [`PropertyValue`].
#[derive(Clone, PartialEq, ::prost::Oneof)]
pub enum PropertyValueKind {
    /// 8-, 16-, 32-bit integers.
    #[prost(uint32, tag = "3")]
    IntValue(u32),
    /// 64-bit integers, DateTime.
    #[prost(uint64, tag = "4")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "5")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "6")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "7")]
    BooleanValue(bool),
    /// String, Text.
    #[prost(string, tag = "8")]
    StringValue(String),
    /// A nested property set.
    #[prost(message, tag = "9")]
    PropertysetValue(PropertySet),
    /// A list of property sets.
    #[prost(message, tag = "10")]
    PropertysetsValue(PropertySetList),
    /// Third-party extension.
    #[prost(message, tag = "11")]
    ExtensionValue(PropertyValueExtension),
}

/// `Payload.PropertyValue.PropertyValueExtension`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PropertyValueExtension {}

/// `Payload.DataSet`: a table.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DataSet {
    /// Number of columns.
    #[prost(uint64, optional, tag = "1")]
    pub num_of_columns: Option<u64>,
    /// Column names.
    #[prost(string, repeated, tag = "2")]
    pub columns: Vec<String>,
    /// Column [`DataType`](crate::DataType)s as numbers.
    #[prost(uint32, repeated, packed = "false", tag = "3")]
    pub types: Vec<u32>,
    /// Rows.
    #[prost(message, repeated, tag = "4")]
    pub rows: Vec<Row>,
}

/// `Payload.DataSet.Row`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Row {
    /// One element per column.
    #[prost(message, repeated, tag = "1")]
    pub elements: Vec<DataSetValue>,
}

/// `Payload.DataSet.DataSetValue`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DataSetValue {
    /// The value.
    #[prost(oneof = "DataSetValueKind", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<DataSetValueKind>,
}

/// The `value` oneof of a [`DataSetValue`].
#[derive(Clone, PartialEq, ::prost::Oneof)]
pub enum DataSetValueKind {
    /// 8-, 16-, 32-bit integers.
    #[prost(uint32, tag = "1")]
    IntValue(u32),
    /// 64-bit integers, DateTime.
    #[prost(uint64, tag = "2")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "3")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "5")]
    BooleanValue(bool),
    /// String, Text.
    #[prost(string, tag = "6")]
    StringValue(String),
    /// Third-party extension.
    #[prost(message, tag = "7")]
    ExtensionValue(DataSetValueExtension),
}

/// `Payload.DataSet.DataSetValue.DataSetValueExtension`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DataSetValueExtension {}

/// `Payload.Template`: a user-defined type (a definition) or an instance of one.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Template {
    /// The template's version.
    #[prost(string, optional, tag = "1")]
    pub version: Option<String>,
    /// Its member metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// Its parameters.
    #[prost(message, repeated, tag = "3")]
    pub parameters: Vec<Parameter>,
    /// The definition an instance refers to.
    #[prost(string, optional, tag = "4")]
    pub template_ref: Option<String>,
    /// A definition rather than an instance.
    #[prost(bool, optional, tag = "5")]
    pub is_definition: Option<bool>,
}

/// `Payload.Template.Parameter`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Parameter {
    /// The parameter's name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The [`DataType`](crate::DataType) as its number.
    #[prost(uint32, optional, tag = "2")]
    pub r#type: Option<u32>,
    /// The value.
    #[prost(oneof = "ParameterValue", tags = "3, 4, 5, 6, 7, 8, 9")]
    pub value: Option<ParameterValue>,
}

/// The `value` oneof of a [`Parameter`].
#[derive(Clone, PartialEq, ::prost::Oneof)]
pub enum ParameterValue {
    /// 8-, 16-, 32-bit integers.
    #[prost(uint32, tag = "3")]
    IntValue(u32),
    /// 64-bit integers, DateTime.
    #[prost(uint64, tag = "4")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "5")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "6")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "7")]
    BooleanValue(bool),
    /// String, Text.
    #[prost(string, tag = "8")]
    StringValue(String),
    /// Third-party extension.
    #[prost(message, tag = "9")]
    ExtensionValue(ParameterValueExtension),
}

/// `Payload.Template.Parameter.ParameterValueExtension`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ParameterValueExtension {}
