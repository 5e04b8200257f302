//! The evaluator on a table of definitions: their properties (as plain JSON, with the paths
//! that are secret or unknown) and diagnostics.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::eval::{evaluate, Context, Evaluated, Host, Mode, Source};
use super::value::{Data, Value};

struct Envs(HashMap<&'static str, &'static str>);

impl Source for Envs {
    fn definition(&self, name: &str) -> Option<(String, Arc<str>)> {
        let canonical =
            if name.contains('/') { name.to_string() } else { format!("default/{name}") };
        self.0.get(canonical.as_str()).map(|t| (canonical, Arc::from(*t)))
    }
}

/// Ciphertexts are `enc:` + the plaintext reversed; provider `echo` gives its inputs, secret.
struct TestHost;

impl Host for TestHost {
    fn decrypt(&self, _env: &str, ciphertext: &str) -> Result<String, String> {
        let body = ciphertext.strip_prefix("enc:").ok_or("not ours")?;
        Ok(body.chars().rev().collect())
    }
    fn open(&self, provider: &str, inputs: &Json) -> Result<Value, String> {
        if provider != "echo" {
            return Err(format!("unknown provider {provider}"));
        }
        let mut v = Value::from_json(inputs, &None);
        v.make_secret();
        Ok(v)
    }
}

fn run(envs: &[(&'static str, &'static str)], text: &str, mode: Mode) -> Evaluated {
    let source = Envs(envs.iter().copied().collect());
    let context = Context { user_login: "alice".into() };
    evaluate("default/main", text, &source, &TestHost, mode, &context)
}

fn plain(e: &Evaluated) -> Json {
    Json::Object(e.properties.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// Paths of secret (`s`) and unknown (`u`) leaves.
fn flags(e: &Evaluated) -> Vec<String> {
    fn walk(path: String, v: &Value, out: &mut Vec<String>) {
        if v.secret {
            out.push(format!("s {path}"));
        }
        if v.unknown {
            out.push(format!("u {path}"));
        }
        match &v.data {
            Data::Array(items) => {
                items.iter().enumerate().for_each(|(i, x)| walk(format!("{path}[{i}]"), x, out))
            }
            Data::Object(m) => m.iter().for_each(|(k, x)| walk(format!("{path}.{k}"), x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in &e.properties {
        walk(k.clone(), v, &mut out);
    }
    out
}

fn summaries(e: &Evaluated) -> Vec<String> {
    e.diagnostics.iter().map(|d| d.summary.clone()).collect()
}

#[test]
fn values_references_and_interpolation() {
    let e = run(
        &[],
        r#"
values:
  app:
    name: web
    port: 8080
    url: http://${app.name}:${app.port}/
    self: ${app.name}
  list: [a, "${app.name}", 3]
  first: ${list[0]}
  quoted: ${app["name"]}
  escaped: $${not.a.ref}
  who: ${context.pulumi.user.login} in ${context.currentEnvironment.name}
"#,
        Mode::Open,
    );
    assert!(e.diagnostics.is_empty(), "{:?}", e.diagnostics);
    assert_eq!(
        plain(&e),
        json!({
            "app": {"name": "web", "port": 8080, "url": "http://web:8080/", "self": "web"},
            "list": ["a", "web", 3], "first": "a", "quoted": "web",
            "escaped": "${not.a.ref}", "who": "alice in default/main",
        })
    );
}

#[test]
fn builtins_compute_and_carry_secrets() {
    let e = run(
        &[],
        r#"
values:
  password: {fn::secret: hunter2}
  stored: {fn::secret: {ciphertext: "enc:terces"}}
  dsn: postgres://admin:${password}@db
  joined: {fn::join: [",", [a, b, 1]]}
  split: {fn::split: [",", "x,y"]}
  concat: {fn::concat: [[1], [2, 3]]}
  json: {fn::toJSON: {a: [1, true]}}
  parsed: {fn::fromJSON: '{"k": [1, "v"]}'}
  str: {fn::toString: 42}
  b64: {fn::toBase64: hello}
  unb64: {fn::fromBase64: aGVsbG8=}
  secretList: {fn::split: [",", "${password},x"]}
"#,
        Mode::Open,
    );
    assert!(e.diagnostics.is_empty(), "{:?}", e.diagnostics);
    assert_eq!(
        plain(&e),
        json!({
            "password": "hunter2", "stored": "secret", "dsn": "postgres://admin:hunter2@db",
            "joined": "a,b,1", "split": ["x", "y"], "concat": [1, 2, 3],
            "json": "{\"a\":[1,true]}", "parsed": {"k": [1, "v"]}, "str": "42",
            "b64": "aGVsbG8=", "unb64": "hello", "secretList": ["hunter2", "x"],
        })
    );
    assert_eq!(
        flags(&e),
        ["s dsn", "s password", "s secretList", "s secretList[0]", "s secretList[1]", "s stored"]
    );
}

#[test]
fn imports_merge_in_order_and_secrets_stay_secret() {
    let envs = [
        (
            "default/base",
            "values:\n  db: {host: base, port: 5432}\n  token: {fn::secret: t0k}\n  only: base\n",
        ),
        ("proj/team", "imports: [base]\nvalues:\n  db: {host: team}\n  team: yes\n"),
    ];
    let e = run(&envs, "imports:\n  - proj/team\nvalues:\n  db: {user: me}\n  url: ${db.host}:${db.port}\n  copy: ${token}\n", Mode::Open);
    assert!(e.diagnostics.is_empty(), "{:?}", e.diagnostics);
    assert_eq!(
        plain(&e),
        json!({
            "db": {"host": "team", "port": 5432, "user": "me"}, "url": "team:5432",
            "token": "t0k", "copy": "t0k", "only": "base", "team": "yes",
        })
    );
    assert_eq!(flags(&e), ["s copy", "s token"]);
    // Where each value was defined, and what it replaced.
    let host = match &e.properties["db"].data {
        Data::Object(m) => m["host"].clone(),
        _ => panic!(),
    };
    assert_eq!(host.trace.def.as_ref().map(|d| &*d.environment), Some("proj/team"));
    let base = host.trace.base.as_ref().and_then(|b| b.trace.def.clone());
    assert_eq!(base.map(|d| d.environment.to_string()), Some("default/base".into()));
}

#[test]
fn cycles_unknown_names_and_bad_calls_are_diagnostics() {
    let envs = [
        ("default/a", "imports: [b]\nvalues: {a: 1}\n"),
        ("default/b", "imports: [a]\nvalues: {b: 2}\n"),
    ];
    let e = run(&envs, "imports: [a, missing]\n", Mode::Open);
    let s = summaries(&e);
    assert!(
        s.iter()
            .any(|m| m.contains("cyclic import")
                && m.contains("default/a -> default/b -> default/a")),
        "{s:?}"
    );
    assert!(s.iter().any(|m| m.contains("unknown environment \"missing\"")), "{s:?}");

    let e = run(
        &[],
        "values:\n  a: ${b}\n  b: ${a}\n  c: ${nope.x}\n  d: {fn::join: 3}\n  e: {fn::fromBase64: '%%%'}\n  f: ${obj}-x\n  obj: {k: v}\n  g: {fn::secret: {ciphertext: bad}}\n  h: {fn::open::nope: {}}\n  ok: fine\n",
        Mode::Open,
    );
    let s = summaries(&e);
    assert!(s.iter().any(|m| m == "cyclic reference"), "{s:?}");
    assert!(s.iter().any(|m| m.contains("unknown property \"nope\"")), "{s:?}");
    assert!(s.iter().any(|m| m.contains("fn::join takes a list")), "{s:?}");
    assert!(s.iter().any(|m| m.contains("not base64")), "{s:?}");
    assert!(s.iter().any(|m| m.contains("only strings, numbers and booleans")), "{s:?}");
    assert!(s.iter().any(|m| m.contains("cannot decrypt")), "{s:?}");
    assert!(s.iter().any(|m| m.contains("fn::open::nope")), "{s:?}");
    assert_eq!(plain(&e)["ok"], json!("fine"));
    // A reference into a sibling of the object that refers to it is not a cycle.
    let e = run(&[], "values:\n  a: {b: x, c: '${a.b}y'}\n", Mode::Open);
    assert!(e.diagnostics.is_empty(), "{:?}", e.diagnostics);
    assert_eq!(plain(&e), json!({"a": {"b": "x", "c": "xy"}}));
}

#[test]
fn providers_open_only_when_opening() {
    let text = "values:\n  creds: {fn::open::echo: {key: k1}}\n  key: ${creds.key}\n  env: {fn::open: {provider: echo, inputs: [1]}}\n";
    let checked = run(&[], text, Mode::Check);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    assert_eq!(flags(&checked), ["u creds", "u env", "u key"]);
    let opened = run(&[], text, Mode::Open);
    // Checking does not decrypt stored secrets either: they are secret and unknown.
    let checked = run(&[], "values:\n  s: {fn::secret: {ciphertext: 'enc:x'}}\n", Mode::Check);
    assert_eq!(flags(&checked), ["s s", "u s"]);
    assert_eq!(plain(&opened), json!({"creds": {"key": "k1"}, "key": "k1", "env": [1]}));
    assert_eq!(flags(&opened), ["s creds", "s creds.key", "s env", "s env[0]", "s key"]);
}

proptest::proptest! {
    /// Whatever the definition, evaluation ends (no panic, no endless recursion) with values
    /// or diagnostics.
    #[test]
    fn any_definition_evaluates_or_is_diagnosed(
        lines in proptest::collection::vec(
            "  [a-c]: (\\$\\{[a-c](\\.[a-c]|\\[0\\])?\\}|\\{fn::(secret|join|split|toJSON|fromJSON|concat): (\\[|x|\\$\\{a\\}|\\]|, )*\\}|\\[\\$\\{[a-c]\\}\\]|[a-z0-9]{0,3})",
            0..6,
        )
    ) {
        let text = format!("imports: [base]\nvalues:\n{}\n", lines.join("\n"));
        let _ = run(&[("default/base", "values: {a: 1, b: [x], c: {a: y}}")], &text, Mode::Open);
    }
}
