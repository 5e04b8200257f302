//! Evaluated values: data with a `secret` flag (it came from `fn::secret` or a secret input),
//! an `unknown` flag (it depends on a provider not opened, e.g. during `check`), and a trace of
//! where it was defined and what it overrode.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Number, Value as Json};

use super::syntax::Range;

/// An evaluated value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub data: Data,
    pub secret: bool,
    pub unknown: bool,
    pub trace: Trace,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

/// Where a value was defined, and the imported value it replaced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub def: Option<Def>,
    pub base: Option<Box<Value>>,
}

/// A range in a named environment's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Def {
    pub environment: Arc<str>,
    pub range: Range,
}

impl Value {
    /// A value defined at `def`.
    pub fn new(data: Data, def: Option<Def>) -> Value {
        Value { data, secret: false, unknown: false, trace: Trace { def, base: None } }
    }

    /// A value not known until its provider is opened (or one whose evaluation failed, so that
    /// the failure is reported once and not again by everything that uses it).
    pub fn unknown(def: Option<Def>) -> Value {
        Value { unknown: true, ..Value::new(Data::Null, def) }
    }

    /// A JSON document as a value, every part defined at `def`.
    pub fn from_json(json: &Json, def: &Option<Def>) -> Value {
        let data = match json {
            Json::Null => Data::Null,
            Json::Bool(b) => Data::Bool(*b),
            Json::Number(n) => Data::Number(n.clone()),
            Json::String(s) => Data::String(s.clone()),
            Json::Array(items) => {
                Data::Array(items.iter().map(|i| Value::from_json(i, def)).collect())
            }
            Json::Object(map) => Data::Object(
                map.iter().map(|(k, v)| (k.clone(), Value::from_json(v, def))).collect(),
            ),
        };
        Value::new(data, def.clone())
    }

    /// The plain JSON of the value (secrets in the clear; unknowns as null).
    pub fn to_json(&self) -> Json {
        match &self.data {
            Data::Null => Json::Null,
            Data::Bool(b) => Json::Bool(*b),
            Data::Number(n) => Json::Number(n.clone()),
            Data::String(s) => Json::String(s.clone()),
            Data::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Data::Object(map) => {
                Json::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Whether the value or anything in it is secret.
    pub fn has_secret(&self) -> bool {
        self.secret
            || match &self.data {
                Data::Array(items) => items.iter().any(Value::has_secret),
                Data::Object(map) => map.values().any(Value::has_secret),
                _ => false,
            }
    }

    /// Whether the value or anything in it is unknown.
    pub fn has_unknown(&self) -> bool {
        self.unknown
            || match &self.data {
                Data::Array(items) => items.iter().any(Value::has_unknown),
                Data::Object(map) => map.values().any(Value::has_unknown),
                _ => false,
            }
    }

    /// Marks the value and everything in it secret (what a secret input becomes).
    pub fn make_secret(&mut self) {
        self.secret = true;
        match &mut self.data {
            Data::Array(items) => items.iter_mut().for_each(Value::make_secret),
            Data::Object(map) => map.values_mut().for_each(Value::make_secret),
            _ => {}
        }
    }

    /// The value as text, for interpolation and `fn::toString`: strings as they are, other
    /// scalars and containers as JSON.
    pub fn text(&self) -> String {
        match &self.data {
            Data::String(s) => s.clone(),
            _ => self.to_json().to_string(),
        }
    }

    /// A short name of the value's type, for diagnostics.
    pub fn type_name(&self) -> &'static str {
        match self.data {
            Data::Null => "null",
            Data::Bool(_) => "a boolean",
            Data::Number(_) => "a number",
            Data::String(_) => "a string",
            Data::Array(_) => "a list",
            Data::Object(_) => "an object",
        }
    }
}

/// `own` over `base`: objects merge key by key (recursively), anything else replaces the base,
/// which stays in the trace.
pub fn merge(base: Option<Value>, own: Value) -> Value {
    let Some(base) = base else { return own };
    match (base.data, own.data) {
        (Data::Object(mut under), Data::Object(over)) => {
            for (k, v) in over {
                let merged = merge(under.remove(&k), v);
                under.insert(k, merged);
            }
            Value { data: Data::Object(under), ..Value::new(Data::Null, own.trace.def) }
        }
        (base_data, own_data) => {
            let base = Value { data: base_data, ..base };
            Value {
                data: own_data,
                secret: own.secret,
                unknown: own.unknown,
                trace: Trace { def: own.trace.def, base: Some(Box::new(base)) },
            }
        }
    }
}
