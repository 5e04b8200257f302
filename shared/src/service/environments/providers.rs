//! `fn::open` providers. `aws-login` with static credentials is answered on the spot;
//! `aws-secrets` and `aws-parameter-store` read the team's Secrets Manager and Parameter Store
//! through the external-secrets port, so evaluation (which does no I/O) asks for them and the
//! caller fetches them between passes (`evaluate::run`). OIDC logins are not served yet, and
//! opening one is a diagnostic that says so.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::Value as Json;

use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::external::{AwsLogin, ExternalError, SecretVersion};
use crate::service::env::value::{Data, Value};

/// How many reads of one fetch run at once.
const CONCURRENT_READS: usize = 8;

/// What opening a provider gives.
pub enum Opened {
    /// Its value, or the diagnostic's text.
    Now(Result<Value, String>),
    /// Values to read outside; the evaluation is run again with what [`fetch`] gives.
    Fetch(Request),
}

/// Reads from outside, each under the name the definition gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `aws-secrets`.
    AwsSecrets { login: AwsLogin, region: String, get: Vec<(String, String, SecretVersion)> },
    /// `aws-parameter-store`: name, parameter, decrypt.
    AwsParameters { login: AwsLogin, region: String, get: Vec<(String, String, bool)> },
}

/// Opens `provider` with `inputs`; Err is the diagnostic's text.
pub fn open(provider: &str, inputs: &Json) -> Opened {
    let parsed = match provider {
        "aws-login" => return Opened::Now(aws_login(inputs)),
        "aws-secrets" => aws_secrets(inputs),
        "aws-parameter-store" => aws_parameters(inputs),
        other => Err(format!("provider {other:?} is not available on this server")),
    };
    match parsed {
        Ok(request) => Opened::Fetch(request),
        Err(why) => Opened::Now(Err(why)),
    }
}

/// `aws-login` with `static: {accessKeyId, secretAccessKey, sessionToken?}`: the credentials,
/// the secret parts secret.
fn aws_login(inputs: &Json) -> Result<Value, String> {
    let Some(creds) = inputs.get("static") else {
        return Err("aws-login: only static credentials are supported here (inputs.static)".into());
    };
    let login = login_from(creds).map_err(|why| format!("aws-login: static {why}"))?;
    let mut out = BTreeMap::new();
    out.insert("accessKeyId".to_string(), string(&login.access_key_id, false));
    out.insert("secretAccessKey".to_string(), string(&login.secret_access_key, true));
    out.insert("sessionToken".to_string(), string(&login.session_token, true));
    Ok(Value::new(Data::Object(out), None))
}

fn string(s: &str, secret: bool) -> Value {
    Value { secret, ..Value::new(Data::String(s.to_string()), None) }
}

/// Credentials as `aws-login` gives them (and as the AWS providers take them as `login`).
fn login_from(creds: &Json) -> Result<AwsLogin, String> {
    let field = |name: &str| creds.get(name).and_then(Json::as_str);
    let (Some(key_id), Some(secret)) = (field("accessKeyId"), field("secretAccessKey")) else {
        return Err("needs accessKeyId and secretAccessKey".into());
    };
    Ok(AwsLogin {
        access_key_id: key_id.to_string(),
        secret_access_key: secret.to_string(),
        session_token: field("sessionToken").unwrap_or_default().to_string(),
    })
}

/// The `region`, `login` and `get` every AWS provider takes; `get` as an object.
fn aws_common<'a>(
    provider: &str,
    inputs: &'a Json,
) -> Result<(AwsLogin, String, &'a serde_json::Map<String, Json>), String> {
    let region = inputs
        .get("region")
        .and_then(Json::as_str)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("{provider}: needs a region"))?;
    let login = inputs
        .get("login")
        .ok_or_else(|| format!("{provider}: needs a login (such as ${{aws.login}})"))
        .and_then(|l| login_from(l).map_err(|why| format!("{provider}: login {why}")))?;
    let get = inputs
        .get("get")
        .and_then(Json::as_object)
        .ok_or_else(|| format!("{provider}: needs get, a map of names to what to read"))?;
    Ok((login, region.to_string(), get))
}

fn aws_secrets(inputs: &Json) -> Result<Request, String> {
    let (login, region, wanted) = aws_common("aws-secrets", inputs)?;
    let mut get = Vec::with_capacity(wanted.len());
    for (name, what) in wanted {
        let text = |field: &str| what.get(field).and_then(Json::as_str).map(str::to_string);
        let Some(secret_id) = text("secretId") else {
            return Err(format!("aws-secrets: get.{name} needs a secretId"));
        };
        let version =
            SecretVersion { version_id: text("versionId"), version_stage: text("versionStage") };
        get.push((name.clone(), secret_id, version));
    }
    Ok(Request::AwsSecrets { login, region, get })
}

fn aws_parameters(inputs: &Json) -> Result<Request, String> {
    let (login, region, wanted) = aws_common("aws-parameter-store", inputs)?;
    let mut get = Vec::with_capacity(wanted.len());
    for (name, what) in wanted {
        let Some(parameter) = what.get("name").and_then(Json::as_str) else {
            return Err(format!("aws-parameter-store: get.{name} needs a name"));
        };
        let decrypt = what.get("decrypt").and_then(Json::as_bool).unwrap_or(false);
        get.push((name.clone(), parameter.to_string(), decrypt));
    }
    Ok(Request::AwsParameters { login, region, get })
}

impl Request {
    /// The provider's name, for diagnostics.
    fn provider(&self) -> &'static str {
        match self {
            Request::AwsSecrets { .. } => "aws-secrets",
            Request::AwsParameters { .. } => "aws-parameter-store",
        }
    }
}

/// Reads what `request` names: the provider's value (each secret a secret; a parameter a
/// secret when it is a `SecureString`), or the diagnostic's text when a read fails. Err only
/// for a function built without the port.
pub async fn fetch(app: &App, request: &Request) -> Result<Result<Value, String>> {
    let port = app.ports.external.as_ref();
    type Read<'a> = BoxFuture<'a, (&'a String, std::result::Result<Value, ExternalError>)>;
    let reads: Vec<Read<'_>> = match request {
        Request::AwsSecrets { login, region, get } => get
            .iter()
            .map(|(name, id, version)| {
                let read = port.aws_secret(login, region, id, version);
                Box::pin(async move { (name, read.await.map(|v| string(&v, true))) }) as Read<'_>
            })
            .collect(),
        Request::AwsParameters { login, region, get } => get
            .iter()
            .map(|(name, parameter, decrypt)| {
                let read = port.aws_parameter(login, region, parameter, *decrypt);
                Box::pin(async move { (name, read.await.map(|p| string(&p.value, p.secure))) })
                    as Read<'_>
            })
            .collect(),
    };
    let results: Vec<_> =
        futures::stream::iter(reads).buffer_unordered(CONCURRENT_READS).collect().await;
    let mut out = BTreeMap::new();
    for (name, result) in results {
        match result {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(ExternalError::Undeclared(m)) => return Err(Error::internal(m)),
            Err(e) => return Ok(Err(format!("{}: get.{name}: {e}", request.provider()))),
        }
    }
    Ok(Ok(Value::new(Data::Object(out), None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now(o: Opened) -> Result<Value, String> {
        match o {
            Opened::Now(r) => r,
            Opened::Fetch(r) => panic!("fetches {r:?}"),
        }
    }

    fn fetches(o: Opened) -> Request {
        match o {
            Opened::Fetch(r) => r,
            Opened::Now(r) => panic!("answered {r:?}"),
        }
    }

    #[test]
    fn static_aws_credentials_open_with_their_secrets_secret() {
        let v = now(open(
            "aws-login",
            &json!({"static": {"accessKeyId": "AKIA", "secretAccessKey": "s3cr3t"}}),
        ))
        .unwrap();
        assert_eq!(
            v.to_json(),
            json!({"accessKeyId": "AKIA", "secretAccessKey": "s3cr3t", "sessionToken": ""})
        );
        let Data::Object(m) = &v.data else { panic!() };
        assert!(!m["accessKeyId"].secret && m["secretAccessKey"].secret);
        assert!(now(open("aws-login", &json!({"oidc": {}}))).is_err());
        assert!(now(open("vault-login", &json!({}))).unwrap_err().contains("not available"));
    }

    #[test]
    fn aws_reads_are_requests_and_bad_inputs_say_what_is_missing() {
        let login = json!({"accessKeyId": "AKIA", "secretAccessKey": "s", "sessionToken": "t"});
        let r = fetches(open(
            "aws-secrets",
            &json!({"region": "us-east-1", "login": login,
                    "get": {"a": {"secretId": "x"}, "b": {"secretId": "y", "versionStage": "AWSPREVIOUS"}}}),
        ));
        let Request::AwsSecrets { login: l, region, get } = r else { panic!() };
        assert_eq!((l.session_token.as_str(), region.as_str()), ("t", "us-east-1"));
        assert_eq!(get.len(), 2);
        assert_eq!(get[1].2.version_stage.as_deref(), Some("AWSPREVIOUS"));
        let r = fetches(open(
            "aws-parameter-store",
            &json!({"region": "eu-west-1", "login": login, "get": {"p": {"name": "/a", "decrypt": true}}}),
        ));
        assert!(
            matches!(r, Request::AwsParameters { ref get, .. } if get[0] == ("p".into(), "/a".into(), true))
        );
        for (provider, inputs, says) in [
            ("aws-secrets", json!({"login": login, "get": {}}), "region"),
            ("aws-secrets", json!({"region": "r", "get": {}}), "login"),
            (
                "aws-secrets",
                json!({"region": "r", "login": {"accessKeyId": "a"}, "get": {}}),
                "secretAccessKey",
            ),
            ("aws-secrets", json!({"region": "r", "login": login}), "get"),
            (
                "aws-secrets",
                json!({"region": "r", "login": login, "get": {"k": {}}}),
                "get.k needs a secretId",
            ),
            (
                "aws-parameter-store",
                json!({"region": "r", "login": login, "get": {"k": {"decrypt": true}}}),
                "get.k needs a name",
            ),
        ] {
            let why = now(open(provider, &inputs)).unwrap_err();
            assert!(why.contains(says) && why.starts_with(provider), "{why}");
        }
    }
}
