//! Evaluating a definition: its imports first (each evaluated once, cycles reported), merged in
//! order; then its own `values` over them. References are resolved lazily through the
//! expression tree, so `a.b` may refer to `a.c` without `a` referring to itself; a real cycle
//! is a diagnostic and its value unknown.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::builtins;
use super::diag::Diagnostic;
use super::expr::{self, Accessor, Definition, Expr, Kind, Path};
use super::syntax;
use super::value::{merge, Data, Def, Value};

/// Most environments one evaluation may import, directly or not.
pub const MAX_IMPORTS: usize = 100;

/// Where imported definitions come from (loaded ahead of evaluation: evaluation itself does
/// no I/O).
pub trait Source {
    /// The definition of `name` as written in an import (`project/env`, `env`, with an
    /// optional `@version` or `@tag`): its canonical name and YAML text, or None if there is
    /// no such environment (or the caller may not read it).
    fn definition(&self, name: &str) -> Option<(String, Arc<str>)>;
}

/// What evaluation needs from the outside world besides definitions.
pub trait Host {
    /// Decrypts a `fn::secret: {ciphertext: …}` of environment `environment`.
    fn decrypt(&self, environment: &str, ciphertext: &str) -> Result<String, String>;
    /// Opens `fn::open::<provider>` with its inputs; Err is a diagnostic.
    fn open(&self, provider: &str, inputs: &serde_json::Value) -> Result<Value, String>;
    /// Whether `provider` would take `inputs` (a check opens nothing); Err is a diagnostic.
    fn check_open(&self, _provider: &str, _inputs: &serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}

/// Check (providers are not opened; what they would give is unknown) or open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Check,
    Open,
}

/// What `${context.…}` offers.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The login of the user asking.
    pub user_login: String,
}

/// An evaluated environment.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    /// The definition as read.
    pub definition: Definition,
    /// The top-level properties (`values`, merged over the imports).
    pub properties: BTreeMap<String, Value>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Evaluates the definition `text` of the environment called `name`.
pub fn evaluate(
    name: &str,
    text: &str,
    source: &dyn Source,
    host: &dyn Host,
    mode: Mode,
    context: &Context,
) -> Evaluated {
    let mut world =
        World { source, host, mode, context, root: name, done: HashMap::new(), stack: Vec::new() };
    world.environment(name, text)
}

struct World<'a> {
    source: &'a dyn Source,
    host: &'a dyn Host,
    mode: Mode,
    context: &'a Context,
    root: &'a str,
    /// Imported environments already evaluated, by canonical name.
    done: HashMap<String, Arc<Evaluated>>,
    /// The imports being evaluated, outermost first (cycle detection).
    stack: Vec<String>,
}

impl World<'_> {
    fn environment(&mut self, name: &str, text: &str) -> Evaluated {
        let (definition, mut diagnostics) = match syntax::parse(text) {
            Ok(root) => expr::definition(root.as_ref()),
            Err(d) => (Definition::default(), vec![d]),
        };
        self.stack.push(name.to_string());
        let mut base: BTreeMap<String, Value> = BTreeMap::new();
        for import in &definition.imports {
            let Some(imported) = self.import(&import.name, import.range, &mut diagnostics) else {
                continue;
            };
            for (k, v) in &imported.properties {
                let merged = merge(base.remove(k), v.clone());
                base.insert(k.clone(), merged);
            }
        }
        self.stack.pop();
        let env: Arc<str> = Arc::from(name);
        let mut eval = Eval {
            world: self,
            env,
            base: &base,
            values: definition.values.as_ref(),
            memo: HashMap::new(),
            diags: Vec::new(),
        };
        let mut properties = BTreeMap::new();
        if let Some(Expr { kind: Kind::Object(pairs), .. }) = definition.values.as_ref() {
            for (key, e) in pairs {
                let own = eval.expr(e);
                properties.insert(key.name.clone(), merge(base.get(&key.name).cloned(), own));
            }
        }
        diagnostics.append(&mut eval.diags);
        for (k, v) in &base {
            properties.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for d in &mut diagnostics {
            if d.environment.is_none() && name != self.root {
                d.environment = Some(name.to_string());
            }
        }
        Evaluated { definition, properties, diagnostics }
    }

    fn import(
        &mut self,
        name: &str,
        range: syntax::Range,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Arc<Evaluated>> {
        let Some((canonical, text)) = self.source.definition(name) else {
            diagnostics.push(Diagnostic::at(range, format!("unknown environment {name:?}")));
            return None;
        };
        if let Some(at) = self.stack.iter().position(|n| *n == canonical) {
            let mut cycle: Vec<&str> = self.stack[at..].iter().map(String::as_str).collect();
            cycle.push(&canonical);
            diagnostics.push(Diagnostic::at(
                range,
                format!("cyclic import of {name:?}: {}", cycle.join(" -> ")),
            ));
            return None;
        }
        if let Some(done) = self.done.get(&canonical) {
            return Some(done.clone());
        }
        if self.done.len() >= MAX_IMPORTS {
            diagnostics.push(Diagnostic::at(
                range,
                format!("an environment imports at most {MAX_IMPORTS} environments in all"),
            ));
            return None;
        }
        let evaluated = Arc::new(self.environment(&canonical, &text));
        if !evaluated.diagnostics.is_empty() {
            diagnostics
                .push(Diagnostic::at(range, format!("imported environment {name:?} has errors")));
            diagnostics.extend(evaluated.diagnostics.iter().cloned());
        }
        self.done.insert(canonical, evaluated.clone());
        Some(evaluated)
    }
}

enum Slot {
    Busy,
    Done(Value),
}

/// One environment's evaluation.
pub(super) struct Eval<'w, 'a> {
    world: &'w mut World<'a>,
    env: Arc<str>,
    base: &'w BTreeMap<String, Value>,
    values: Option<&'w Expr>,
    memo: HashMap<usize, Slot>,
    pub(super) diags: Vec<Diagnostic>,
}

/// Where a property path has got to: still in this definition's expressions (with the
/// imported value under it, if any), or in a value.
enum Cursor<'e> {
    Expr(&'e Expr, Option<Value>),
    Value(Value),
}

impl<'w, 'a> Eval<'w, 'a> {
    pub(super) fn def(&self, e: &Expr) -> Option<Def> {
        Some(Def { environment: self.env.clone(), range: e.range })
    }

    pub(super) fn mode(&self) -> Mode {
        self.world.mode
    }

    pub(super) fn host(&self) -> &dyn Host {
        self.world.host
    }

    pub(super) fn env_name(&self) -> &str {
        &self.env
    }

    pub(super) fn error(&mut self, e: &Expr, summary: impl Into<String>) -> Value {
        self.diags.push(Diagnostic::at(e.range, summary));
        Value::unknown(self.def(e))
    }

    /// Evaluates an expression once; asking for it again while it is being evaluated is a
    /// cycle.
    pub(super) fn expr(&mut self, e: &Expr) -> Value {
        match self.memo.get(&e.id) {
            Some(Slot::Done(v)) => return v.clone(),
            Some(Slot::Busy) => return self.error(e, "cyclic reference"),
            None => {}
        }
        self.memo.insert(e.id, Slot::Busy);
        let def = self.def(e);
        let value = match &e.kind {
            Kind::Null => Value::new(Data::Null, def),
            Kind::Bool(b) => Value::new(Data::Bool(*b), def),
            Kind::Number(n) => Value::new(Data::Number(n.clone()), def),
            Kind::String(s) => Value::new(Data::String(s.clone()), def),
            Kind::Symbol(path) => {
                let mut v = self.lookup(path);
                // The reference is defined here; what it points to is its base.
                let target = v.clone();
                v.trace.def = def;
                v.trace.base = Some(Box::new(target));
                v
            }
            Kind::Interpolate(parts) => {
                let mut text = String::new();
                let (mut secret, mut unknown) = (false, false);
                for part in parts {
                    text.push_str(&part.text);
                    let Some(path) = &part.path else { continue };
                    let v = self.lookup(path);
                    secret |= v.has_secret();
                    unknown |= v.has_unknown();
                    match v.data {
                        Data::Array(_) | Data::Object(_) => {
                            let why = format!(
                                "${{{}}} is {}: only strings, numbers and booleans interpolate",
                                path.text,
                                v.type_name()
                            );
                            let failed = self.error(e, why);
                            return self.finish(e, failed);
                        }
                        _ if !v.unknown => text.push_str(&v.text()),
                        _ => {}
                    }
                }
                Value { secret, unknown, ..Value::new(Data::String(text), def) }
            }
            Kind::Array(items) => {
                Value::new(Data::Array(items.iter().map(|i| self.expr(i)).collect()), def)
            }
            Kind::Object(pairs) => Value::new(
                Data::Object(pairs.iter().map(|(k, v)| (k.name.clone(), self.expr(v))).collect()),
                def,
            ),
            Kind::Call(builtin, arg) => builtins::call(self, e, builtin, arg),
        };
        self.finish(e, value)
    }

    fn finish(&mut self, e: &Expr, value: Value) -> Value {
        self.memo.insert(e.id, Slot::Done(value.clone()));
        value
    }

    /// The value at a property path: this definition's values over the imported ones, or the
    /// evaluation context (`context.…`).
    fn lookup(&mut self, path: &Path) -> Value {
        let unknown_property = |this: &mut Self, what: String| {
            this.diags.push(Diagnostic::at(
                path.range,
                format!("unknown property {what} in ${{{}}}", path.text),
            ));
            Value::unknown(None)
        };
        let Some(Accessor::Key(first)) = path.accessors.first() else {
            return unknown_property(self, "(none)".into());
        };
        let own = match self.values.map(|v| &v.kind) {
            Some(Kind::Object(pairs)) => {
                pairs.iter().find(|(k, _)| k.name == *first).map(|(_, e)| e)
            }
            _ => None,
        };
        let base = self.base.get(first).cloned();
        let mut cursor = match (own, base) {
            (Some(e), base) => Cursor::Expr(e, base),
            (None, Some(v)) => Cursor::Value(v),
            (None, None) if first == "context" => Cursor::Value(self.context_value()),
            (None, None) => return unknown_property(self, format!("{first:?}")),
        };
        for accessor in &path.accessors[1..] {
            cursor = match cursor {
                Cursor::Expr(e, base) => match (&e.kind, accessor) {
                    (Kind::Object(pairs), Accessor::Key(k)) => {
                        let own = pairs.iter().find(|(key, _)| key.name == *k).map(|(_, e)| e);
                        let under = base.and_then(|b| match b.data {
                            Data::Object(mut m) => m.remove(k),
                            _ => None,
                        });
                        match (own, under) {
                            (Some(e), under) => Cursor::Expr(e, under),
                            (None, Some(v)) => Cursor::Value(v),
                            (None, None) => return unknown_property(self, format!("{k:?}")),
                        }
                    }
                    (Kind::Array(items), Accessor::Index(i)) if base.is_none() => {
                        match items.get(*i) {
                            Some(e) => Cursor::Expr(e, None),
                            None => return unknown_property(self, format!("[{i}]")),
                        }
                    }
                    _ => {
                        let v = merge(base, self.expr(e));
                        match access(v, accessor) {
                            Ok(v) => Cursor::Value(v),
                            Err(what) => return unknown_property(self, what),
                        }
                    }
                },
                Cursor::Value(v) => match access(v, accessor) {
                    Ok(v) => Cursor::Value(v),
                    Err(what) => return unknown_property(self, what),
                },
            };
        }
        match cursor {
            Cursor::Expr(e, base) => merge(base, self.expr(e)),
            Cursor::Value(v) => v,
        }
    }

    fn context_value(&self) -> Value {
        let json = context_json(&self.env, self.world.root, &self.world.context.user_login);
        Value::from_json(&json, &None)
    }
}

/// What `${context.…}` holds (and `executionContext` shows): the environment being evaluated,
/// the one opened, and the user asking.
pub fn context_json(current: &str, root: &str, login: &str) -> serde_json::Value {
    serde_json::json!({
        "currentEnvironment": {"name": current},
        "rootEnvironment": {"name": root},
        "pulumi": {"user": {"login": login}},
    })
}

/// One step into a value. An unknown value's parts are unknown; a secret container's parts
/// stay secret.
fn access(v: Value, accessor: &Accessor) -> Result<Value, String> {
    if v.unknown {
        return Ok(v);
    }
    let secret = v.secret;
    let mut found = match (v.data, accessor) {
        (Data::Object(mut m), Accessor::Key(k)) => m.remove(k).ok_or_else(|| format!("{k:?}"))?,
        (Data::Array(mut items), Accessor::Index(i)) if *i < items.len() => items.swap_remove(*i),
        (_, Accessor::Key(k)) => return Err(format!("{k:?}")),
        (_, Accessor::Index(i)) => return Err(format!("[{i}]")),
    };
    if secret {
        found.make_secret();
    }
    Ok(found)
}
