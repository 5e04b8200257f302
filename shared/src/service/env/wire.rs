//! Evaluated environments in the JSON the ESC client reads (`esc.Environment`): `properties`
//! as values wrapped with `secret`, `unknown` and `trace`; `exprs` mirroring the definition's
//! `values` tree (the CLI walks it to say where a path is defined); diagnostics with ranges.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value as Json};

use super::diag::Diagnostic;
use super::eval::Evaluated;
use super::expr::{Accessor, Expr, Kind, Path};
use super::syntax::Range;
use super::value::{Data, Value};

/// Whether secret values are sent in the clear (`open`, `check?showSecrets=true`) or redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Show,
    Redact,
}

/// The `esc.Environment` of an evaluation, serialised as it is written (an opened environment
/// is often hundreds of KB of small wrapped values: no JSON tree is built for them).
pub struct Rendered<'a> {
    exprs: Map<String, Json>,
    properties: &'a std::collections::BTreeMap<String, Value>,
    context: Vec<(String, Value)>,
    secrets: Secrets,
}

/// The `esc.Environment` of an evaluation; `name` is the environment's name in ranges.
pub fn environment<'a>(
    e: &'a Evaluated,
    name: &str,
    secrets: Secrets,
    context: &Json,
) -> Rendered<'a> {
    let mut exprs = Map::new();
    if let Some(Expr { kind: Kind::Object(pairs), .. }) = &e.definition.values {
        for (key, x) in pairs {
            exprs.insert(key.name.clone(), expr(x, name));
        }
    }
    let context = match context {
        Json::Object(m) => m.iter().map(|(k, v)| (k.clone(), Value::from_json(v, &None))).collect(),
        _ => Vec::new(),
    };
    Rendered { exprs, properties: &e.properties, context, secrets }
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let secrets = self.secrets;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("exprs", &self.exprs)?;
        let properties = Entries(self.properties.iter().map(|(k, v)| (k.as_str(), v)), secrets);
        m.serialize_entry("properties", &properties)?;
        m.serialize_entry("schema", &true)?;
        let context = Entries(self.context.iter().map(|(k, v)| (k.as_str(), v)), secrets);
        m.serialize_entry("executionContext", &Context(context))?;
        m.end()
    }
}

/// Named values written as a map of wrapped values.
struct Entries<I>(I, Secrets);

impl<'a, I> Serialize for Entries<I>
where
    I: Iterator<Item = (&'a str, &'a Value)> + Clone,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0.clone() {
            m.serialize_entry(k, &Wrapped(v, self.1))?;
        }
        m.end()
    }
}

/// `executionContext`: the context's values and their (open) schema.
struct Context<I>(Entries<I>);

impl<'a, I> Serialize for Context<I>
where
    I: Iterator<Item = (&'a str, &'a Value)> + Clone,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("properties", &self.0)?;
        m.serialize_entry("schema", &true)?;
        m.end()
    }
}

/// One value, wrapped (`{value, secret?, unknown?, trace}`), its parts wrapped the same way.
#[derive(Clone, Copy)]
struct Wrapped<'a>(&'a Value, Secrets);

impl Serialize for Wrapped<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Wrapped(v, secrets) = *self;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("value", &Payload(v, secrets))?;
        if v.secret {
            m.serialize_entry("secret", &true)?;
        }
        if v.unknown {
            m.serialize_entry("unknown", &true)?;
        }
        m.serialize_entry("trace", &Trace(v, secrets))?;
        m.end()
    }
}

/// A value's payload: scalars as they are, containers of wrapped values; null when unknown or
/// redacted.
struct Payload<'a>(&'a Value, Secrets);

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Payload(v, secrets) = *self;
        if v.unknown || (v.secret && secrets == Secrets::Redact) {
            return s.serialize_unit();
        }
        match &v.data {
            Data::Null => s.serialize_unit(),
            Data::Bool(b) => s.serialize_bool(*b),
            Data::Number(n) => n.serialize(s),
            Data::String(text) => s.serialize_str(text),
            Data::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&Wrapped(i, secrets))?;
                }
                seq.end()
            }
            Data::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, i) in map {
                    m.serialize_entry(k, &Wrapped(i, secrets))?;
                }
                m.end()
            }
        }
    }
}

/// Where a value was defined, and the value it overrode.
struct Trace<'a>(&'a Value, Secrets);

impl Serialize for Trace<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Trace(v, secrets) = *self;
        let mut m = s.serialize_map(None)?;
        let (environment, range) = match &v.trace.def {
            Some(d) => (&*d.environment, d.range),
            None => ("", Range::default()),
        };
        m.serialize_entry("def", &RangeOf(environment, range))?;
        if let Some(base) = &v.trace.base {
            m.serialize_entry("base", &Wrapped(base, secrets))?;
        }
        m.end()
    }
}

struct RangeOf<'a>(&'a str, Range);

impl Serialize for RangeOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("environment", self.0)?;
        m.serialize_entry("begin", &self.1.begin)?;
        m.serialize_entry("end", &self.1.end)?;
        m.end()
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
