//! A stack's resources over real HTTP (`GET …/resources/latest`, `…/resources/{version}`, one
//! resource by URN, `…/resources/count`): what the latest and each earlier version hold, in
//! Pulumi Cloud's shapes, with secrets as stored ciphertext; unknown versions and URNs get a
//! 404, malformed ones a 400. The `resources_tests!` macro runs every check against one backend.

use serde_json::{json, Value};

use crate::server::{Client, Target, TestServer};
use crate::session;

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! resources_tests {
    ($target:expr) => {
        $crate::resources_tests!(@each $target;
            latest_and_earlier_versions_list_their_resources,
            one_resource_by_its_encoded_urn,
            a_new_stack_has_no_resources,
            unknown_or_malformed_versions_and_urns_are_refused
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::resources::$name(make(stringify!($name))).await;
            }
        )*
    };
}

const STACK_URN: &str = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev";
const PROVIDER_URN: &str = "urn:pulumi:dev::proj::pulumi:providers:aws::default";
const BUCKET_URN: &str = "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::logs";
const TOPIC_URN: &str = "urn:pulumi:dev::proj::aws:sns/topic:Topic::alerts";

/// A secret as the CLI stores it: the signature key and the service's ciphertext.
fn secret(ciphertext: &str) -> Value {
    json!({"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": ciphertext})
}

fn resource(urn: &str, ty: &str, id: &str, inputs: Value) -> Value {
    json!({"urn": urn, "type": ty, "custom": true, "id": id, "parent": STACK_URN,
           "provider": format!("{PROVIDER_URN}::prov-1"), "dependencies": [],
           "inputs": inputs.clone(), "outputs": inputs})
}

/// Version 1: the stack, its provider and a bucket. Version 2 keeps the bucket (changed,
/// protected, with a secret output), drops nothing and adds a topic; version 3 deletes the
/// bucket.
fn states() -> [Value; 3] {
    let root = json!({"urn": STACK_URN, "type": "pulumi:pulumi:Stack", "custom": false});
    let provider = json!({"urn": PROVIDER_URN, "type": "pulumi:providers:aws", "custom": true,
                          "id": "prov-1", "inputs": {"region": "eu-west-1"}});
    let bucket1 = resource(BUCKET_URN, "aws:s3/bucket:Bucket", "logs-1", json!({"acl": "private"}));
    let mut bucket2 = resource(BUCKET_URN, "aws:s3/bucket:Bucket", "logs-1", json!({"acl": "log"}));
    bucket2["protect"] = json!(true);
    bucket2["outputs"]["token"] = secret("v1:c2VjcmV0");
    bucket2["additionalSecretOutputs"] = json!(["token"]);
    let topic = resource(TOPIC_URN, "aws:sns/topic:Topic", "alerts-1", json!({}));
    let deployment = |resources: Vec<Value>| {
        json!({"version": 3, "deployment": {
            "manifest": {"time": "2026-12-01T10:00:00Z", "magic": "", "version": "v3.200.0"},
            "resources": resources}})
    };
    [
        deployment(vec![root.clone(), provider.clone(), bucket1]),
        deployment(vec![root.clone(), provider.clone(), bucket2, topic.clone()]),
        deployment(vec![root, provider, topic]),
    ]
}

/// A stack `dev` of project `proj` with the three versions above: the first two by `pulumi up`
/// (full checkpoints), the third by `stack import`. Returns the stack's path.
async fn stack_with_versions(srv: &TestServer, c: &Client) -> String {
    let path = format!("/api/stacks/{}/proj", srv.user);
    let r = c.post(&path, &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200, "create: {r:?}");
    let stack = format!("{path}/dev");
    let [v1, v2, v3] = states();
    session::up(c, &stack, &[], &[v1]).await;
    session::up(c, &stack, &[], &[v2]).await;
    let r = c.post(&format!("{stack}/import"), &v3).await;
    assert_eq!(r.status, 200, "import: {r:?}");
    stack
}

fn urns(listing: &Value) -> Vec<&str> {
    listing["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|info| info["resource"]["urn"].as_str().expect("urn"))
        .collect()
}

/// A URN as a path segment: every character but unreserved ones escaped, `/` included.
fn encoded(urn: &str) -> String {
    urn.replace(':', "%3A").replace('/', "%2F")
}

/// The latest version lists what it holds, each earlier version what it held then, and the
/// count is the latest's, without reading its deployment.
pub async fn latest_and_earlier_versions_list_their_resources(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let stack = stack_with_versions(&srv, &c).await;

    let latest = c.get(&format!("{stack}/resources/latest")).await;
    assert_eq!(latest.status, 200, "{latest:?}");
    let latest = latest.json();
    assert_eq!(latest["version"], 3);
    assert!(latest["region"].is_string());
    assert_eq!(urns(&latest), [STACK_URN, PROVIDER_URN, TOPIC_URN]);

    let v1 = c.get(&format!("{stack}/resources/1")).await.json();
    assert_eq!(v1["version"], 1);
    assert_eq!(urns(&v1), [STACK_URN, PROVIDER_URN, BUCKET_URN]);
    assert_eq!(v1["resources"][2]["resource"]["inputs"], json!({"acl": "private"}));

    let v2 = c.get(&format!("{stack}/resources/2")).await.json();
    assert_eq!(urns(&v2), [STACK_URN, PROVIDER_URN, BUCKET_URN, TOPIC_URN]);
    let bucket = &v2["resources"][2]["resource"];
    assert_eq!(bucket["type"], "aws:s3/bucket:Bucket");
    assert_eq!(bucket["id"], "logs-1");
    assert_eq!(bucket["custom"], true);
    assert_eq!(bucket["protect"], true);
    assert_eq!(bucket["delete"], false);
    assert_eq!(bucket["parent"], STACK_URN);
    assert_eq!(bucket["inputs"], json!({"acl": "log"}));
    assert_eq!(bucket["additionalSecretOutputs"], json!(["token"]));
    // A reader sees the secret as the CLI stored it: ciphertext, never the plaintext.
    assert_eq!(bucket["outputs"]["token"], secret("v1:c2VjcmV0"));
    assert_eq!(bucket["providerInputs"], json!({"region": "eu-west-1"}));
    let root = &v2["resources"][0]["resource"];
    assert_eq!(root["custom"], false);
    assert!(root.get("id").is_none() && root.get("parent").is_none());

    let count = c.get(&format!("{stack}/resources/count")).await;
    assert_eq!(count.status, 200, "{count:?}");
    assert_eq!(count.json(), json!({"resourceCount": 3, "version": 3}));
    srv.stop().await;
}

/// One resource by its URN, percent-encoded in the path (`/` as %2F), at the latest version
/// and at the version that still had it; a URN the version lacks is a 404.
pub async fn one_resource_by_its_encoded_urn(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let stack = stack_with_versions(&srv, &c).await;

    let topic = c.get(&format!("{stack}/resources/latest/{}", encoded(TOPIC_URN))).await;
    assert_eq!(topic.status, 200, "{topic:?}");
    let topic = topic.json();
    assert_eq!(topic["version"], 3);
    assert_eq!(topic["resource"]["resource"]["urn"], TOPIC_URN);
    assert_eq!(topic["resource"]["resource"]["id"], "alerts-1");

    let bucket = c.get(&format!("{stack}/resources/2/{}", encoded(BUCKET_URN))).await;
    assert_eq!(bucket.status, 200, "{bucket:?}");
    let bucket = bucket.json();
    assert_eq!(bucket["version"], 2);
    assert_eq!(bucket["resource"]["resource"]["protect"], true);

    // Deleted in version 3: gone from the latest, still in version 1.
    let gone = c.get(&format!("{stack}/resources/latest/{}", encoded(BUCKET_URN))).await;
    assert!(gone.error_message(404).contains(BUCKET_URN), "{gone:?}");
    let then = c.get(&format!("{stack}/resources/1/{}", encoded(BUCKET_URN))).await;
    assert_eq!(then.status, 200, "{then:?}");
    assert_eq!(then.json()["resource"]["resource"]["inputs"], json!({"acl": "private"}));
    srv.stop().await;
}

/// A stack without an update has no resources, at version 0.
pub async fn a_new_stack_has_no_resources(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = format!("/api/stacks/{}/proj", srv.user);
    assert_eq!(c.post(&path, &json!({"stackName": "empty"})).await.status, 200);
    let stack = format!("{path}/empty");
    let latest = c.get(&format!("{stack}/resources/latest")).await;
    assert_eq!(latest.status, 200, "{latest:?}");
    assert_eq!(latest.json()["resources"], json!([]));
    assert_eq!(latest.json()["version"], 0);
    let count = c.get(&format!("{stack}/resources/count")).await.json();
    assert_eq!(count, json!({"resourceCount": 0, "version": 0}));
    srv.stop().await;
}

/// A version the stack never had is a 404, one that is no positive number a 400, an encoded
/// URN that is no UTF-8 a 400; a missing stack is a 404. None of them changes the stack.
pub async fn unknown_or_malformed_versions_and_urns_are_refused(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let stack = stack_with_versions(&srv, &c).await;
    let before = c.get(&format!("{stack}/export")).await.body;

    c.get(&format!("{stack}/resources/4")).await.error_message(404);
    c.get(&format!("{stack}/resources/4/{}", encoded(TOPIC_URN))).await.error_message(404);
    for bad in ["0", "-1", "two", "1.5"] {
        c.get(&format!("{stack}/resources/{bad}")).await.error_message(400);
        c.get(&format!("{stack}/resources/{bad}/{}", encoded(TOPIC_URN))).await.error_message(400);
    }
    c.get(&format!("{stack}/resources/latest/%FF%FE")).await.error_message(400);
    c.get(&format!("{stack}/resources/latest/not-a-urn")).await.error_message(404);
    let missing = format!("/api/stacks/{}/proj/nope", srv.user);
    c.get(&format!("{missing}/resources/latest")).await.error_message(404);
    c.get(&format!("{missing}/resources/count")).await.error_message(404);

    assert_eq!(c.get(&format!("{stack}/export")).await.body, before);
    srv.stop().await;
}
