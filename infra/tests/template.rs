//! The committed SAM template agrees with the route table: fresh, one function per route,
//! least-privilege IAM derived from each route's needs, and YAML that reads back as written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Map, Value};
use stackhouse::api::routes::ROUTES;
use stackhouse::api::{Access, Auth, Needs};
use stackhouse::jobs::table::JOBS;
use stackhouse::jobs::Trigger;
use stackhouse_infra::{first_difference, template, template_value, yaml, REGENERATE};
use yaml_rust2::{Yaml, YamlLoader};

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}; generate it with `{REGENERATE}`", path.display())
    })
}

/// Parses YAML (one document) into JSON, failing on anything JSON cannot hold.
fn parse(text: &str) -> Value {
    let docs = YamlLoader::load_from_str(text).expect("valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    to_json(&docs[0])
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => json!(b),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().expect("a float")),
        Yaml::String(s) => json!(s),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| match k {
                    Yaml::String(k) => (k.clone(), to_json(v)),
                    other => panic!("non-string key {other:?}"),
                })
                .collect(),
        ),
        other => panic!("unexpected YAML node {other:?}"),
    }
}

#[test]
fn committed_template_is_fresh() {
    let current = committed();
    let wanted = template();
    if let Some(diff) = first_difference(&current, &wanted) {
        panic!("infra/template.yaml is stale ({diff}): regenerate it with `{REGENERATE}`");
    }
}

#[test]
fn template_is_deterministic_and_reads_back_as_generated() {
    assert_eq!(template(), template());
    assert_eq!(parse(&committed()), template_value());
}

fn resources() -> Map<String, Value> {
    template_value()["Resources"].as_object().expect("Resources").clone()
}

fn of_type(resources: &Map<String, Value>, ty: &str) -> Vec<(String, Value)> {
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(id, r)| (id.clone(), r.clone()))
        .collect()
}

/// (method, path) of every HttpApi event of a function.
fn http_events(function: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(events) = function["Properties"]["Events"].as_object() {
        for event in events.values() {
            if event["Type"] == "HttpApi" {
                assert_eq!(event["Properties"]["ApiId"], json!({"Ref": "HttpApi"}));
                let p = &event["Properties"];
                out.push((
                    p["Method"].as_str().expect("Method").to_string(),
                    p["Path"].as_str().expect("Path").to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_route_has_exactly_one_function_and_nothing_else_is_routed() {
    let resources = resources();
    let functions = of_type(&resources, "AWS::Serverless::Function");
    let mut routed: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (id, f) in &functions {
        for event in http_events(f) {
            routed.entry(event).or_default().push(id.clone());
        }
    }
    let bins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
    for route in ROUTES {
        let key = (route.method.as_str().to_string(), route.path.to_string());
        let ids = routed.remove(&key).unwrap_or_default();
        assert_eq!(ids.len(), 1, "{} {} is served by {ids:?}", key.0, key.1);
        let expected_id: String = route
            .name
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .chain(["Function".to_string()])
            .collect();
        assert_eq!(ids[0], expected_id);
        let f = &resources[&ids[0]];
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
        assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], route.name);
        assert!(bins.join(format!("{}.rs", route.name)).is_file(), "no binary {}", route.name);
        assert_eq!(f["Properties"]["Runtime"], "provided.al2023");
        assert_eq!(f["Properties"]["Handler"], "bootstrap");
        assert_eq!(f["Properties"]["Architectures"], json!([{"Ref": "Architecture"}]));
        assert!(f["Properties"].get("FunctionName").is_none(), "names are CloudFormation's");
        assert!(ids[0].chars().all(|c| c.is_ascii_alphanumeric()));
    }
    assert!(routed.is_empty(), "the template routes what the table lacks: {routed:?}");
    // The other functions are the jobs' (checked in `every_job_has_a_function_with_its_trigger`).
    assert_eq!(functions.len(), ROUTES.len() + JOBS.len());
}

#[test]
fn every_job_has_a_function_with_its_trigger() {
    let resources = resources();
    let bins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
    for job in JOBS {
        let id = format!("{}Function", stackhouse_infra::pascal(job.name));
        let f = &resources[&id];
        assert_eq!(f["Type"], "AWS::Serverless::Function", "{id}");
        assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], job.name);
        assert!(bins.join(format!("{}.rs", job.name)).is_file(), "no binary {}", job.name);
        assert!(http_events(f).is_empty(), "{id}: a job has no route");
        assert_eq!(f["Properties"]["Timeout"], job.timeout_seconds);
        if let Trigger::Manual { .. } = job.trigger {
            assert!(f["Properties"].get("Events").is_none(), "{id}: invoked by hand only");
            continue;
        }
        let events = f["Properties"]["Events"].as_object().expect("Events");
        assert_eq!(events.len(), 1, "{id}: one trigger");
        let event = events.values().next().expect("one event");
        match job.trigger {
            Trigger::Schedule { every_seconds, .. } => {
                assert_eq!(event["Type"], "Schedule", "{id}");
                let rate = event["Properties"]["Schedule"].as_str().expect("Schedule");
                assert_eq!(rate, stackhouse_infra::rate_expression(every_seconds));
                assert_eq!(f["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"], 0);
            }
            Trigger::Queue { queue, batch_size, .. } => {
                assert_eq!(event["Type"], "SQS", "{id}");
                let p = &event["Properties"];
                let queue_id = format!("{}Queue", stackhouse_infra::pascal(queue));
                assert_eq!(p["Queue"], json!({"Fn::GetAtt": [queue_id, "Arn"]}));
                assert_eq!(p["BatchSize"], batch_size);
                assert_eq!(p["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
            }
            Trigger::Manual { .. } => unreachable!("checked above"),
        }
    }
    assert_eq!(stackhouse_infra::rate_expression(60), "rate(1 minute)");
    assert_eq!(stackhouse_infra::rate_expression(300), "rate(5 minutes)");
    assert_eq!(stackhouse_infra::rate_expression(3600), "rate(1 hour)");
    assert_eq!(stackhouse_infra::rate_expression(2 * 86_400), "rate(2 days)");
}

/// The IAM actions a route's needs imply, written out independently of the generator.
fn expected_actions(needs: &Needs) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::from(["logs:CreateLogStream", "logs:PutLogEvents"]);
    let mut add = |actions: &[&'static str]| out.extend(actions.iter().copied());
    match needs.meta {
        Access::None => {}
        Access::Read => add(&["dynamodb:GetItem", "dynamodb:Query"]),
        Access::Write => add(&[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        ]),
    }
    match needs.blobs {
        Access::None => {}
        Access::Read => add(&["s3:ListBucket", "s3:GetObject"]),
        Access::Write => add(&["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"]),
    }
    match needs.keys {
        Access::None => {}
        Access::Read => add(&["kms:Decrypt", "kms:DescribeKey"]),
        Access::Write => add(&["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]),
    }
    match needs.queue {
        Access::None => {}
        Access::Read => add(&[
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
        ]),
        Access::Write => add(&["sqs:GetQueueUrl", "sqs:SendMessage"]),
    }
    out
}

/// The bookkeeping grant, written out independently of the generator.
fn expected_bookkeeping() -> Value {
    json!({
        "Sid": "Bookkeeping",
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem"],
        "Resource": [{"Fn::GetAtt": ["Table", "Arn"]}],
        "Condition": {"ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": stackhouse::service::item_keys::BOOKKEEPING_KEY_PREFIXES,
        }},
    })
}

/// Actions that change something: none of them may reach a function that only reads
/// (the bookkeeping statement aside).
const WRITE_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchWriteItem",
    "s3:PutObject",
    "s3:DeleteObject",
    "kms:GenerateDataKey",
    "kms:Encrypt",
    "sqs:SendMessage",
    "sqs:DeleteMessage",
];

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|i| i.as_str().expect("string").into()).collect(),
        other => panic!("expected a string or a list, got {other}"),
    }
}

/// The only resource an action may be granted on.
fn resource_for(action: &str, log_group: &str) -> Vec<Value> {
    let att = |id: &str| json!({"Fn::GetAtt": [id, "Arn"]});
    match action.split(':').next() {
        Some("dynamodb") => vec![att("Table")],
        Some("s3") if action == "s3:ListBucket" => vec![att("Bucket")],
        Some("s3") => vec![json!({"Fn::Sub": "${Bucket.Arn}/*"})],
        Some("kms") => vec![att("Key")],
        Some("sqs") => stackhouse::ports::queue::default_queues()
            .iter()
            .map(|q| att(&stackhouse_infra::queue_id(q)))
            .collect(),
        Some("logs") => vec![att(log_group)],
        _ => panic!("unexpected action {action}"),
    }
}

#[test]
fn each_function_gets_exactly_what_its_route_needs() {
    let resources = resources();
    let named = ROUTES.iter().map(|r| (r.name, r.needs, r.auth() == Auth::User));
    for (name, needs, token_auth) in named.chain(JOBS.iter().map(|j| (j.name, j.needs, false))) {
        let id = format!("{}Function", stackhouse_infra::pascal(name));
        let f = &resources[&id]["Properties"];
        assert!(f.get("Policies").is_none(), "{id}: no SAM policies next to the role");
        let role_id = format!("{id}Role");
        assert_eq!(f["Role"], json!({"Fn::GetAtt": [role_id, "Arn"]}));
        let log_group = format!("{id}LogGroup");
        assert_eq!(f["LoggingConfig"]["LogGroup"], json!({"Ref": log_group}));
        assert_eq!(resources[&log_group]["Type"], "AWS::Logs::LogGroup");

        let role = &resources[&role_id];
        assert_eq!(role["Type"], "AWS::IAM::Role");
        assert!(role["Properties"].get("ManagedPolicyArns").is_none(), "{role_id}");
        assert!(role["Properties"].get("PermissionsBoundary").is_none(), "{role_id}");
        let policies = role["Properties"]["Policies"].as_array().expect("Policies");
        assert_eq!(policies.len(), 1, "{role_id}: one inline policy");
        let mut granted = BTreeSet::new();
        let mut bookkeeping = 0;
        for statement in policies[0]["PolicyDocument"]["Statement"].as_array().expect("list") {
            assert_eq!(statement["Effect"], "Allow");
            if statement["Sid"] == "Bookkeeping" {
                // Token-authenticated functions record a token's last use: PutItem on the
                // bookkeeping keys only, whatever the route's needs.
                assert_eq!(statement, &expected_bookkeeping(), "{role_id}");
                bookkeeping += 1;
                continue;
            }
            assert!(statement.get("Condition").is_none(), "{role_id}: unexpected condition");
            assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
            let actions = strings(&statement["Action"]);
            let resources = statement["Resource"].as_array().expect("Resource list").clone();
            for action in &actions {
                assert!(!action.contains('*'), "{role_id}: wildcard action {action}");
                assert_eq!(resources, resource_for(action, &log_group), "{role_id}: {action}");
                granted.insert(action.clone());
            }
        }
        let expected: BTreeSet<String> =
            expected_actions(&needs).into_iter().map(String::from).collect();
        assert_eq!(granted, expected, "{name}: IAM actions differ from its needs");
        assert_eq!(bookkeeping, usize::from(token_auth), "{name}: bookkeeping statement");

        // A queue consumer deletes the messages it handled: that is its read access.
        let read_only = [needs.meta, needs.blobs, needs.keys].iter().all(|a| *a <= Access::Read)
            && needs.queue == Access::None;
        if read_only {
            for action in WRITE_ACTIONS {
                assert!(!granted.contains(*action), "read-only {name} may {action}");
            }
        }
    }
}

/// Every string under `v` at a key named `key`.
fn collect_at(v: &Value, key: &str, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == key {
                    out.push(child.clone());
                }
                collect_at(child, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_at(i, key, out)),
        _ => {}
    }
}

#[test]
fn no_role_grants_wildcards() {
    let resources = resources();
    for (id, role) in of_type(&resources, "AWS::IAM::Role") {
        let mut found = Vec::new();
        collect_at(&role["Properties"]["Policies"], "Resource", &mut found);
        collect_at(&role["Properties"]["Policies"], "Action", &mut found);
        assert!(!found.is_empty());
        for v in found {
            for item in v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]) {
                if let Some(s) = item.as_str() {
                    assert!(s != "*" && !s.ends_with(":*"), "{id} grants {s}");
                }
            }
        }
    }
}

#[test]
fn read_only_routes_exist_and_are_checked() {
    // Guards the least-privilege test against vacuity: the table has both kinds.
    assert!(ROUTES.iter().any(|r| r.needs.meta == Access::Read && r.needs.blobs == Access::None));
    assert!(ROUTES.iter().any(|r| r.needs.blobs == Access::Write));
    assert!(ROUTES.iter().any(|r| r.needs.keys == Access::Write));
}

#[test]
fn template_has_the_promised_resources_parameters_and_outputs() {
    let t = template_value();
    assert_eq!(t["Transform"], "AWS::Serverless-2016-10-31");
    for p in [
        "StageName",
        "Architecture",
        "HistoryRetention",
        "LogLevel",
        "LogRetentionDays",
        "PointInTimeRecovery",
        "BucketVersioning",
    ] {
        assert!(t["Parameters"].get(p).is_some(), "parameter {p}");
    }
    assert_eq!(t["Parameters"]["Architecture"]["Default"], "x86_64");
    for o in ["ApiUrl", "TableName", "BucketName", "KmsKeyArn", "KmsKeyAlias", "JobsQueueUrl"] {
        assert!(t["Outputs"].get(o).is_some(), "output {o}");
    }
    let r = &t["Resources"];
    let table = &r["Table"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    // Backups are on unless the deployer turns them off.
    assert_eq!(t["Parameters"]["PointInTimeRecovery"]["Default"], "Enabled");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        json!({"Fn::If": ["PointInTimeRecoveryOn", true, false]})
    );
    assert_eq!(
        t["Conditions"]["PointInTimeRecoveryOn"],
        json!({"Fn::Equals": [{"Ref": "PointInTimeRecovery"}, "Enabled"]})
    );
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "ttl");
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    let bucket = &r["Bucket"]["Properties"];
    assert_eq!(t["Parameters"]["BucketVersioning"]["Default"], "Enabled");
    assert_eq!(bucket["VersioningConfiguration"]["Status"], json!({"Ref": "BucketVersioning"}));
    assert_eq!(bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"], true);
    assert_eq!(r["Key"]["Properties"]["EnableKeyRotation"], true);
    let redrive = &r["JobsQueue"]["Properties"]["RedrivePolicy"];
    assert_eq!(
        redrive["deadLetterTargetArn"],
        json!({"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]})
    );
    assert_eq!(r["HttpApi"]["Type"], "AWS::Serverless::HttpApi");
    // One log group per function.
    let resources = resources();
    assert_eq!(
        of_type(&resources, "AWS::Logs::LogGroup").len(),
        of_type(&resources, "AWS::Serverless::Function").len()
    );
}

#[test]
fn yaml_emitter_round_trips_tricky_strings() {
    let tricky = [
        "",
        "1",
        "-1",
        "1.5",
        "1e3",
        "0x1F",
        "0o17",
        "017",
        "true",
        "True",
        "false",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "n",
        "null",
        "Null",
        "~",
        "-",
        "- a",
        "-a",
        "a: b",
        "a:b",
        "a:",
        ":",
        "#",
        "a #b",
        "a#b",
        "'",
        "''",
        "\"",
        "{",
        "}",
        "{a: b}",
        "[a]",
        "*",
        "&a",
        "!Ref x",
        "|",
        ">",
        "%TAG",
        "@",
        "`",
        "?",
        "? a",
        " lead",
        "trail ",
        "two  spaces",
        "line\nbreak",
        "tab\there",
        "cr\r",
        "back\\slash",
        "ctl\u{1}",
        "nel\u{85}",
        "ls\u{2028}",
        "bom\u{feff}",
        "ünïcödé",
        "emoji 🦀",
        "2012-10-17",
        "12:30:00",
        ".inf",
        "-.inf",
        ".nan",
        "<<",
        "=",
        "${AWS::StackName}-x",
        "arn:${AWS::Partition}:s3:::b/*",
        "/api/stacks/{org}",
        "--- ",
        "...",
        "%",
        ",",
        "a, b",
        "a,b",
    ];
    let mut map = Map::new();
    for (i, s) in tricky.iter().enumerate() {
        map.insert(s.to_string(), json!(s));
        map.insert(format!("k{i}"), json!([s, {"x": s}, [s]]));
    }
    let value = json!({
        "map": map,
        "list": tricky.as_slice(),
        "numbers": [0, -1, 42, 1.5, 1e100, -2.5e-7, true, false, null],
        "empty": {"m": {}, "l": [], "s": ""},
        "nested": [[[1, "a"], {"b": [{"c": "d"}]}], {}],
    });
    let text = yaml::to_string(&value, &[]);
    assert_eq!(parse(&text), value, "{text}");
}

#[test]
fn yaml_1_1_words_are_quoted() {
    // PyYAML (YAML 1.1, used by cfn-lint and the SAM CLI) reads these plain words as booleans,
    // nulls or numbers; YAML 1.2 parsers would not catch a mistake here, so check the text.
    for s in ["yes", "No", "ON", "off", "y", "N", "~", "null", "2012-10-17", "1:30", "0777", "="] {
        let text = yaml::to_string(&json!({ "k": s }), &[]);
        assert!(text.starts_with("k: \""), "{s:?} is not quoted: {text}");
    }
}

/// Every variable the template sets is one the functions read (and the README documents): a
/// renamed setting cannot leave the template configuring nothing.
#[test]
fn every_variable_the_template_sets_is_read_by_the_functions() {
    use stackhouse::config::{lookup_var, ReadBy};
    for name in stackhouse_infra::base_env().keys() {
        let var = lookup_var(name).unwrap_or_else(|| panic!("{name} is not in config::VARS"));
        assert_ne!(var.read_by, ReadBy::Emulator, "{name} is read by the emulator only");
    }
}
