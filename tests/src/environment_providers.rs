//! Environments that read the team's own secrets (`fn::open::aws-secrets`,
//! `fn::open::aws-parameter-store`): on AWS from Secrets Manager and Parameter Store (moto
//! here, seeded with the AWS SDK as a team would), on the embedded store from its stand-in
//! file. Both backends answer the same definitions the same way.

use reqwest::Method;
use serde_json::{json, Value};

use crate::environments::{create, diagnostics, mentions, open, prop, set, show};
use crate::server::{Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`.
#[macro_export]
macro_rules! environment_providers_tests {
    ($target:expr) => {
        $crate::environment_providers_tests!(@each $target;
            aws_providers_read_secrets_and_parameters,
            aws_provider_failures_are_diagnostics
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::environment_providers::$name(make(stringify!($name))).await;
            }
        )*
    };
}

const REGION: &str = "us-east-1";

/// A value kept outside Stackhouse.
pub(crate) enum Seed<'a> {
    Secret { id: &'a str, value: &'a str },
    Parameter { name: &'a str, value: &'a str, secure: bool },
}

/// Puts `seeds` where the server's external-secrets port reads: moto through the AWS SDK, or
/// the embedded store's stand-in file.
pub(crate) async fn seed(srv: &TestServer, seeds: &[Seed<'_>]) {
    if let Some(cfg) = srv.aws_config() {
        let endpoint = cfg.endpoint_url.clone().expect("a moto endpoint");
        let creds =
            aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "t");
        let sm = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .credentials_provider(creds.clone())
                .region(aws_sdk_secretsmanager::config::Region::new(REGION))
                .endpoint_url(&endpoint)
                .build(),
        );
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::Config::builder()
                .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
                .credentials_provider(creds)
                .region(aws_sdk_ssm::config::Region::new(REGION))
                .endpoint_url(&endpoint)
                .build(),
        );
        for s in seeds {
            match s {
                Seed::Secret { id, value } => {
                    { sm.create_secret().name(*id).secret_string(*value).send().await.map(|_| ()) }
                        .unwrap_or_else(|e| panic!("create secret {id}: {e:?}"))
                }
                Seed::Parameter { name, value, secure } => {
                    let kind = if *secure {
                        aws_sdk_ssm::types::ParameterType::SecureString
                    } else {
                        aws_sdk_ssm::types::ParameterType::String
                    };
                    ssm.put_parameter()
                        .name(*name)
                        .value(*value)
                        .r#type(kind)
                        .overwrite(true)
                        .send()
                        .await
                        .map(|_| ())
                        .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"))
                }
            }
        }
        return;
    }
    let dir = srv.data_dir().expect("an embedded data dir");
    let path = dir.join("aws-standin.json");
    let mut file: Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    for s in seeds {
        match s {
            Seed::Secret { id, value } => file[REGION]["secrets"][*id] = json!(value),
            Seed::Parameter { name, value, secure } => {
                file[REGION]["parameters"][*name] = json!({"value": value, "secure": secure})
            }
        }
    }
    std::fs::write(&path, file.to_string()).expect("write the stand-in file");
}

/// A suffix that keeps this run's names apart from other tests' on a shared moto.
pub(crate) fn unique() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// The login every definition here uses (moto and the stand-in take any static key).
const LOGIN: &str = "    login:\n      fn::open::aws-login:\n        static:\n          accessKeyId: AKIAEXAMPLE\n          secretAccessKey: example-secret\n";

/// An environment reads secrets (one a JSON document it unpacks) and parameters (one a
/// SecureString) through a static login; a second read takes its login from values the first
/// gave (a later pass). Opened values carry the right secret flags; a check reads nothing and
/// shows the provider's values as unknown.
pub async fn aws_providers_read_secrets_and_parameters(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let u = unique();
    let (api, db, url, token) = (
        format!("api-key-{u}"),
        format!("db-{u}"),
        format!("/app/{u}/url"),
        format!("/app/{u}/token"),
    );
    let (key_id, key_secret) = (format!("chained-id-{u}"), format!("chained-secret-{u}"));
    seed(
        &srv,
        &[
            Seed::Secret { id: &api, value: "k-123" },
            Seed::Secret { id: &db, value: r#"{"user":"app","password":"p-789"}"# },
            Seed::Secret { id: &key_id, value: "AKIACHAINED" },
            Seed::Secret { id: &key_secret, value: "chained-secret" },
            Seed::Parameter { name: &url, value: "https://example.com", secure: false },
            Seed::Parameter { name: &token, value: "t-456", secure: true },
        ],
    )
    .await;
    let definition = format!(
        "values:\n  aws:\n{LOGIN}\
         \x20   secrets:\n      fn::open::aws-secrets:\n        region: {REGION}\n        login: ${{aws.login}}\n        get:\n\
         \x20         api: {{secretId: {api}}}\n          db: {{secretId: {db}}}\n\
         \x20         keyId: {{secretId: {key_id}}}\n          keySecret: {{secretId: {key_secret}}}\n\
         \x20   params:\n      fn::open::aws-parameter-store:\n        region: {REGION}\n        login: ${{aws.login}}\n        get:\n\
         \x20         url: {{name: {url}}}\n          token: {{name: {token}, decrypt: true}}\n\
         \x20   chained:\n      fn::open::aws-parameter-store:\n        region: {REGION}\n\
         \x20       login: {{accessKeyId: '${{aws.secrets.keyId}}', secretAccessKey: '${{aws.secrets.keySecret}}'}}\n\
         \x20       get:\n          url: {{name: {url}}}\n\
         \x20 db:\n    fn::fromJSON: ${{aws.secrets.db}}\n\
         \x20 environmentVariables:\n    API_KEY: ${{aws.secrets.api}}\n    DB_PASSWORD: ${{db.password}}\n    URL: ${{aws.params.url}}\n"
    );
    let path = create(&c, &srv.user, "infra", "from-aws").await;
    set(&c, &path, &definition).await;

    let id = open(&c, &path, "1h0m0s").await;
    let r = c.get(&format!("{path}/open/{id}")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let v = r.json();
    assert_eq!(prop(&v, "aws.secrets.api"), "k-123", "{v}");
    assert_eq!(prop(&v, "db.password"), "p-789", "a secret's JSON unpacked: {v}");
    assert_eq!(prop(&v, "aws.params.url"), "https://example.com");
    assert_eq!(prop(&v, "aws.params.token"), "t-456", "a SecureString decrypted");
    assert_eq!(prop(&v, "aws.chained.url"), "https://example.com", "read with a login it read");
    assert_eq!(prop(&v, "environmentVariables.API_KEY"), "k-123");
    let flag = |path: &str| {
        let mut at = &v["properties"];
        for (i, key) in path.split('.').enumerate() {
            at = if i == 0 { &at[key] } else { &at["value"][key] };
        }
        at["secret"].as_bool().unwrap_or(false)
    };
    assert!(flag("aws.secrets.api") && flag("aws.params.token"), "secrets stay secret: {v}");
    assert!(flag("environmentVariables.API_KEY") && flag("db.password"), "and what uses them");
    assert!(!flag("aws.params.url"), "a plain parameter is not secret: {v}");

    // A check opens no provider: their values are unknown, and nothing is a diagnostic.
    let r = c.send(Method::POST, &format!("{path}/check"), None, false).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let checked = r.json();
    let secrets = &checked["properties"]["aws"]["value"]["secrets"];
    assert_eq!(secrets["unknown"], true, "{checked}");
    assert!(!checked.to_string().contains("k-123"), "a check read the secret: {checked}");
    srv.stop().await;
}

/// A secret that is not there is a diagnostic on the value that asked: the definition is
/// stored (it is valid) but opening it fails with a 400 that names the read. Inputs a provider
/// cannot take (no region) are a diagnostic when the definition is saved.
pub async fn aws_provider_failures_are_diagnostics(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let u = unique();
    let path = create(&c, &srv.user, "infra", "missing").await;
    let definition = format!(
        "values:\n  aws:\n{LOGIN}\
         \x20   secrets:\n      fn::open::aws-secrets:\n        region: {REGION}\n        login: ${{aws.login}}\n\
         \x20       get:\n          gone: {{secretId: no-such-secret-{u}}}\n"
    );
    set(&c, &path, &definition).await;
    let r = c.send(Method::POST, &format!("{path}/open?duration=1h0m0s"), None, false).await;
    let diags = diagnostics(&r);
    assert!(mentions(&diags, "get.gone") && mentions(&diags, "not found"), "{}", show(&r));

    // Inputs a provider cannot take are refused when saved, and nothing is stored.
    let bad = "values:\n  s:\n    fn::open::aws-secrets:\n      login: {accessKeyId: a, secretAccessKey: b}\n      get: {}\n";
    let r = c.send(Method::PATCH, &path, Some(bad.as_bytes().to_vec()), false).await;
    assert!(mentions(&diagnostics(&r), "needs a region"), "{}", show(&r));
    let r = c.get(&path).await;
    assert!(String::from_utf8_lossy(&r.body).contains("no-such-secret"), "unchanged: {}", show(&r));
    srv.stop().await;
}
