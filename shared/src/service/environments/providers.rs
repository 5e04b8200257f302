//! `fn::open` providers. `aws-login` with static credentials is served here; providers that
//! reach other services (`aws-secrets`, `aws-parameter-store`, OIDC logins) are not yet, and
//! opening one is a diagnostic that says so.

use serde_json::Value as Json;

use crate::service::env::value::{Data, Value};

/// Opens `provider` with `inputs`; Err is the diagnostic's text.
pub fn open(provider: &str, inputs: &Json) -> Result<Value, String> {
    match provider {
        "aws-login" => aws_login(inputs),
        other => Err(format!("provider {other:?} is not available on this server")),
    }
}

/// `aws-login` with `static: {accessKeyId, secretAccessKey, sessionToken?}`: the credentials,
/// the secret parts secret.
fn aws_login(inputs: &Json) -> Result<Value, String> {
    let Some(creds) = inputs.get("static") else {
        return Err("aws-login: only static credentials are supported here (inputs.static)".into());
    };
    let field = |name: &str| creds.get(name).and_then(Json::as_str);
    let (Some(key_id), Some(secret)) = (field("accessKeyId"), field("secretAccessKey")) else {
        return Err("aws-login: static needs accessKeyId and secretAccessKey".into());
    };
    let string =
        |s: &str, secret: bool| Value { secret, ..Value::new(Data::String(s.to_string()), None) };
    let mut out = std::collections::BTreeMap::new();
    out.insert("accessKeyId".to_string(), string(key_id, false));
    out.insert("secretAccessKey".to_string(), string(secret, true));
    out.insert("sessionToken".to_string(), string(field("sessionToken").unwrap_or_default(), true));
    Ok(Value::new(Data::Object(out), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_aws_credentials_open_with_their_secrets_secret() {
        let v = open(
            "aws-login",
            &serde_json::json!({"static": {"accessKeyId": "AKIA", "secretAccessKey": "s3cr3t"}}),
        )
        .unwrap();
        assert_eq!(
            v.to_json(),
            serde_json::json!({"accessKeyId": "AKIA", "secretAccessKey": "s3cr3t", "sessionToken": ""})
        );
        let Data::Object(m) = &v.data else { panic!() };
        assert!(!m["accessKeyId"].secret && m["secretAccessKey"].secret);
        assert!(open("aws-login", &serde_json::json!({"oidc": {}})).is_err());
        assert!(open("aws-secrets", &serde_json::json!({})).unwrap_err().contains("not available"));
    }
}
