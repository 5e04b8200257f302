//! A secret value of deployment settings (`SecretValue`): an environment variable or a git
//! credential. Clients send the plaintext (`{"secret": "…"}`) or a ciphertext they got from
//! `…/deployments/settings/encrypt` or an earlier read (`{"ciphertext": "…"}`); it is kept and
//! shown only as the stack's ciphertext (service secrets, bound to the stack's immutable id).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Error, Result};
use crate::service::secrets;

/// What a secret's plaintext reads as in every answer.
pub const HIDDEN: &str = "[secret]";

/// A plain value, or a secret one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Shown as it is (environment variables only).
    Plain(String),
    /// A plaintext the client sent, to encrypt before it is stored.
    Unsealed(String),
    /// The stack's ciphertext (what is stored).
    Sealed(Vec<u8>),
}

impl Value {
    /// Encrypts an [`Value::Unsealed`] value for `stack_id`; the others are kept.
    pub async fn seal(&mut self, app: &App, stack_id: &str) -> Result<()> {
        if let Value::Unsealed(plain) = self {
            let sealed = secrets::encrypt(app, stack_id, &[plain.as_bytes().to_vec()]).await?;
            let one = sealed.into_iter().next().ok_or_else(|| Error::internal("no ciphertext"))?;
            *self = Value::Sealed(one);
        }
        Ok(())
    }

    /// The value for the runner: the plaintext of a secret (400 when the ciphertext is not
    /// this stack's).
    pub async fn reveal(&self, app: &App, stack_id: &str) -> Result<String> {
        match self {
            Value::Plain(s) | Value::Unsealed(s) => Ok(s.clone()),
            Value::Sealed(c) => {
                let plain = secrets::decrypt(app, stack_id, std::slice::from_ref(c)).await?;
                let one = plain.into_iter().next().unwrap_or_default();
                String::from_utf8(one)
                    .map_err(|_| Error::BadRequest("a secret is not UTF-8".into()))
            }
        }
    }

    /// Whether the value is a secret.
    pub fn is_secret(&self) -> bool {
        !matches!(self, Value::Plain(_))
    }

    /// Refuses a ciphertext another stack made, before anything is stored.
    pub async fn check(&self, app: &App, stack_id: &str) -> Result<()> {
        if let Value::Sealed(_) = self {
            self.reveal(app, stack_id).await.map_err(|_| {
                Error::BadRequest(
                    "a secret's ciphertext was not made for this stack; send its plaintext as \
                     {\"secret\": …} instead"
                        .into(),
                )
            })?;
        }
        Ok(())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Plain(v) => s.serialize_str(v),
            // Never stored or shown: sealing happens before either.
            Value::Unsealed(_) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("secret", HIDDEN)?;
                m.end()
            }
            Value::Sealed(c) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("secret", HIDDEN)?;
                m.serialize_entry("ciphertext", &STANDARD.encode(c))?;
                m.end()
            }
        }
    }
}

/// The object form of a value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Object {
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    ciphertext: Option<String>,
    #[serde(default)]
    plaintext: Option<String>,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Plain(String),
            Object(Object),
        }
        match Wire::deserialize(d)? {
            Wire::Plain(s) => Ok(Value::Plain(s)),
            Wire::Object(o) => match (o.ciphertext, o.secret, o.plaintext) {
                (Some(c), _, None) => STANDARD
                    .decode(c)
                    .map(Value::Sealed)
                    .map_err(|_| de::Error::custom("a ciphertext must be standard base64")),
                (None, Some(s), None) if s == HIDDEN => Err(de::Error::custom(
                    "\"[secret]\" is how a secret is shown; send its ciphertext or plaintext",
                )),
                (None, Some(s), None) | (None, None, Some(s)) => Ok(Value::Unsealed(s)),
                _ => Err(de::Error::custom(
                    "a secret value is {\"secret\": plaintext} or {\"ciphertext\": base64}",
                )),
            },
        }
    }
}

/// A secret that must be one (credentials): a plain string is taken as its plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(pub Value);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Secret(match Value::deserialize(d)? {
            Value::Plain(s) => Value::Unsealed(s),
            other => other,
        }))
    }
}

#[cfg(feature = "openapi")]
impl schemars::JsonSchema for Value {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A plain string, or a secret: {\"secret\": plaintext} or {\"ciphertext\": base64} in requests, {\"secret\": \"[secret]\", \"ciphertext\": base64} in answers",
            "anyOf": [
                {"type": "string"},
                {"type": "object", "properties": {
                    "secret": {"type": "string"},
                    "ciphertext": {"type": "string"},
                    "plaintext": {"type": "string"}}}
            ]
        })
    }
}

#[cfg(feature = "openapi")]
impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretValue".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Value::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_read_and_show() {
        let v: Value = serde_json::from_str(r#""eu-west-1""#).unwrap();
        assert_eq!(v, Value::Plain("eu-west-1".into()));
        let v: Value = serde_json::from_str(r#"{"secret": "hunter2"}"#).unwrap();
        assert_eq!(v, Value::Unsealed("hunter2".into()));
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"secret":"[secret]"}"#);
        let v: Value = serde_json::from_str(r#"{"ciphertext": "AQID"}"#).unwrap();
        assert_eq!(v, Value::Sealed(vec![1, 2, 3]));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"secret":"[secret]","ciphertext":"AQID"}"#
        );
        // What an answer showed reads back as the same ciphertext.
        let again: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(again, v);
        let s: Secret = serde_json::from_str(r#""token""#).unwrap();
        assert_eq!(s.0, Value::Unsealed("token".into()));
        for bad in
            [r#"{"secret": "[secret]"}"#, r#"{"ciphertext": "%%"}"#, r#"{"x": 1}"#, "3", "{}"]
        {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
        }
    }
}
