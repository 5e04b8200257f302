//! Evaluated environments in the JSON the ESC client reads (`esc.Environment`): `properties`
//! as values wrapped with `secret`, `unknown` and `trace`; `exprs` mirroring the definition's
//! `values` tree (the CLI walks it to say where a path is defined); diagnostics with ranges.

use serde_json::{json, Map, Value as Json};

use super::diag::Diagnostic;
use super::eval::Evaluated;
use super::expr::{Accessor, Expr, Kind, Path};
use super::syntax::Range;
use super::value::{Data, Def, Value};

/// Whether secret values are sent in the clear (`open`, `check?showSecrets=true`) or redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Show,
    Redact,
}

/// The `esc.Environment` of an evaluation; `name` is the environment's name in ranges.
pub fn environment(e: &Evaluated, name: &str, secrets: Secrets, context: &Json) -> Json {
    let properties: Map<String, Json> =
        e.properties.iter().map(|(k, v)| (k.clone(), value(v, secrets))).collect();
    let mut exprs = Map::new();
    if let Some(Expr { kind: Kind::Object(pairs), .. }) = &e.definition.values {
        for (key, x) in pairs {
            exprs.insert(key.name.clone(), expr(x, name));
        }
    }
    let context_props: Map<String, Json> = match context {
        Json::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), value(&Value::from_json(v, &None), secrets)))
            .collect(),
        _ => Map::new(),
    };
    json!({
        "exprs": exprs,
        "properties": properties,
        "schema": true,
        "executionContext": {"properties": context_props, "schema": true},
    })
}

/// One value, wrapped.
pub fn value(v: &Value, secrets: Secrets) -> Json {
    let mut out = Map::new();
    let redacted = v.secret && secrets == Secrets::Redact;
    let payload = match &v.data {
        _ if redacted || v.unknown => Json::Null,
        Data::Null => Json::Null,
        Data::Bool(b) => Json::Bool(*b),
        Data::Number(n) => Json::Number(n.clone()),
        Data::String(s) => Json::String(s.clone()),
        Data::Array(items) => Json::Array(items.iter().map(|i| value(i, secrets)).collect()),
        Data::Object(m) => {
            Json::Object(m.iter().map(|(k, i)| (k.clone(), value(i, secrets))).collect())
        }
    };
    out.insert("value".into(), payload);
    if v.secret {
        out.insert("secret".into(), Json::Bool(true));
    }
    if v.unknown {
        out.insert("unknown".into(), Json::Bool(true));
    }
    let mut trace = Map::new();
    trace.insert("def".into(), def(v.trace.def.as_ref()));
    if let Some(base) = &v.trace.base {
        trace.insert("base".into(), value(base, secrets));
    }
    out.insert("trace".into(), Json::Object(trace));
    Json::Object(out)
}

fn def(d: Option<&Def>) -> Json {
    match d {
        Some(d) => range(&d.environment, &d.range),
        None => range("", &Range::default()),
    }
}

/// A range in the named environment's definition.
pub fn range(environment: &str, r: &Range) -> Json {
    json!({"environment": environment, "begin": r.begin, "end": r.end})
}

/// One expression, mirroring the definition.
pub fn expr(e: &Expr, env: &str) -> Json {
    let mut out = Map::new();
    out.insert("range".into(), range(env, &e.range));
    match &e.kind {
        Kind::Null => {}
        Kind::Bool(b) => {
            out.insert("literal".into(), Json::Bool(*b));
        }
        Kind::Number(n) => {
            out.insert("literal".into(), Json::Number(n.clone()));
        }
        Kind::String(s) => {
            out.insert("literal".into(), Json::String(s.clone()));
        }
        Kind::Symbol(p) => {
            out.insert("symbol".into(), accessors(p, env));
        }
        Kind::Interpolate(parts) => {
            let parts: Vec<Json> = parts
                .iter()
                .map(|p| {
                    let mut part = Map::new();
                    if !p.text.is_empty() {
                        part.insert("text".into(), Json::String(p.text.clone()));
                    }
                    if let Some(path) = &p.path {
                        part.insert("value".into(), accessors(path, env));
                    }
                    Json::Object(part)
                })
                .collect();
            out.insert("interpolate".into(), Json::Array(parts));
        }
        Kind::Array(items) => {
            out.insert("list".into(), items.iter().map(|i| expr(i, env)).collect());
        }
        Kind::Object(pairs) => {
            let members: Map<String, Json> =
                pairs.iter().map(|(k, x)| (k.name.clone(), expr(x, env))).collect();
            let key_ranges: Map<String, Json> =
                pairs.iter().map(|(k, _)| (k.name.clone(), range(env, &k.range))).collect();
            out.insert("object".into(), Json::Object(members));
            out.insert("keyRanges".into(), Json::Object(key_ranges));
        }
        Kind::Call(builtin, arg) => {
            out.insert(
                "builtin".into(),
                json!({
                    "name": builtin.name(),
                    "nameRange": range(env, &e.range),
                    "argSchema": true,
                    "arg": expr(arg, env),
                }),
            );
        }
    }
    Json::Object(out)
}

fn accessors(p: &Path, env: &str) -> Json {
    p.accessors
        .iter()
        .map(|a| {
            let r = range(env, &p.range);
            match a {
                Accessor::Key(k) => json!({"key": k, "range": r, "value": r}),
                Accessor::Index(i) => json!({"index": i, "range": r, "value": r}),
            }
        })
        .collect()
}

/// Diagnostics as the client reads them; ranges without an environment are in `root`.
pub fn diagnostics(diags: &[Diagnostic], root: &str) -> Json {
    diags
        .iter()
        .map(|d| {
            let mut out = Map::new();
            let env = d.environment.as_deref().unwrap_or(root);
            if let Some(r) = &d.range {
                out.insert("range".into(), range(env, r));
            }
            out.insert("summary".into(), Json::String(d.summary.clone()));
            out.insert("severity".into(), Json::String("error".into()));
            if let Some(p) = &d.path {
                out.insert("path".into(), Json::String(p.clone()));
            }
            Json::Object(out)
        })
        .collect()
}
