//! The `fn::` functions. A result built from a secret is secret, and one built from an unknown
//! is unknown; a wrong argument is a diagnostic at the call.

use base64::Engine as _;

use super::eval::{Eval, Mode};
use super::expr::{Builtin, Expr, Kind};
use super::value::{Data, Value};

pub(super) fn call(ev: &mut Eval, e: &Expr, builtin: &Builtin, arg: &Expr) -> Value {
    if let Builtin::Secret = builtin {
        return secret(ev, e, arg);
    }
    if let Builtin::Open(provider) = builtin {
        return open(ev, e, provider.as_deref(), arg);
    }
    let input = ev.expr(arg);
    let name = builtin.name();
    let (secret, unknown) = (input.has_secret(), input.has_unknown());
    if unknown {
        return Value::unknown(ev.def(e));
    }
    let data = match (builtin, &input.data) {
        (Builtin::Join, Data::Array(args)) => match args.as_slice() {
            [Value { data: Data::String(sep), .. }, Value { data: Data::Array(items), .. }] => {
                match strings(items) {
                    Some(texts) => Data::String(texts.join(sep)),
                    None => return ev.error(e, format!("{name} joins a list of strings")),
                }
            }
            _ => return ev.error(e, format!("{name} takes [separator, [strings…]]")),
        },
        (Builtin::Split, Data::Array(args)) => match args.as_slice() {
            [Value { data: Data::String(sep), .. }, Value { data: Data::String(text), .. }] => {
                if sep.is_empty() {
                    return ev.error(e, format!("{name} needs a non-empty separator"));
                }
                let def = ev.def(e);
                Data::Array(
                    text.split(sep.as_str())
                        .map(|p| Value::new(Data::String(p.to_string()), def.clone()))
                        .collect(),
                )
            }
            _ => return ev.error(e, format!("{name} takes [separator, string]")),
        },
        (Builtin::Concat, Data::Array(lists)) => {
            let mut out = Vec::new();
            for list in lists {
                match &list.data {
                    Data::Array(items) => out.extend(items.iter().cloned()),
                    _ => return ev.error(e, format!("{name} takes a list of lists")),
                }
            }
            Data::Array(out)
        }
        (Builtin::ToJson, _) => Data::String(input.to_json().to_string()),
        (Builtin::ToString, _) => Data::String(input.text()),
        (Builtin::FromJson, Data::String(text)) => match serde_json::from_str(text) {
            Ok(json) => {
                let mut v = Value::from_json(&json, &ev.def(e));
                if secret {
                    v.make_secret();
                }
                return v;
            }
            Err(err) => return ev.error(e, format!("{name}: not JSON: {err}")),
        },
        (Builtin::ToBase64, Data::String(text)) => {
            Data::String(base64::engine::general_purpose::STANDARD.encode(text))
        }
        (Builtin::FromBase64, Data::String(text)) => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(text);
            match decoded.ok().and_then(|b| String::from_utf8(b).ok()) {
                Some(s) => Data::String(s),
                None => return ev.error(e, format!("{name}: not base64 of UTF-8 text")),
            }
        }
        (Builtin::Join | Builtin::Split | Builtin::Concat, _) => {
            return ev.error(e, format!("{name} takes a list, not {}", input.type_name()));
        }
        _ => return ev.error(e, format!("{name} takes a string, not {}", input.type_name())),
    };
    let mut v = Value::new(data, ev.def(e));
    if secret {
        v.make_secret();
    }
    v
}

fn strings(items: &[Value]) -> Option<Vec<String>> {
    items
        .iter()
        .map(|i| match &i.data {
            Data::String(s) => Some(s.clone()),
            Data::Number(_) | Data::Bool(_) => Some(i.text()),
            _ => None,
        })
        .collect()
}

/// `fn::secret: plaintext` (encrypted when the definition is saved) or
/// `fn::secret: {ciphertext: …}`; any other argument is made secret as it evaluates.
fn secret(ev: &mut Eval, e: &Expr, arg: &Expr) -> Value {
    if let Kind::Object(pairs) = &arg.kind {
        if let [(key, Expr { kind: Kind::String(ciphertext), .. })] = pairs.as_slice() {
            if key.name == "ciphertext" {
                // Checking does not decrypt: the value is a secret not known here.
                if ev.mode() == Mode::Check {
                    return Value { secret: true, ..Value::unknown(ev.def(e)) };
                }
                let env = ev.env_name().to_string();
                return match ev.host().decrypt(&env, ciphertext) {
                    Ok(plain) => {
                        Value { secret: true, ..Value::new(Data::String(plain), ev.def(e)) }
                    }
                    Err(why) => ev.error(e, format!("cannot decrypt secret: {why}")),
                };
            }
        }
    }
    let mut v = ev.expr(arg);
    v.make_secret();
    v.trace.def = ev.def(e);
    v
}

/// `fn::open::<provider>: inputs` or `fn::open: {provider, inputs}`. Not opened while
/// checking: its value is unknown then.
fn open(ev: &mut Eval, e: &Expr, provider: Option<&str>, arg: &Expr) -> Value {
    let input = ev.expr(arg);
    let (provider, inputs) = match provider {
        Some(p) => (p.to_string(), input),
        None => {
            let Data::Object(mut fields) = input.data else {
                return ev.error(e, "fn::open takes {provider, inputs}");
            };
            let provider = match fields.remove("provider").map(|p| p.data) {
                Some(Data::String(p)) => p,
                _ => return ev.error(e, "fn::open needs a provider name"),
            };
            let inputs = fields.remove("inputs").unwrap_or_else(|| Value::new(Data::Null, None));
            (provider, inputs)
        }
    };
    if inputs.has_unknown() {
        return Value::unknown(ev.def(e));
    }
    if ev.mode() == Mode::Check {
        return match ev.host().check_open(&provider, &inputs.to_json()) {
            Ok(()) => Value::unknown(ev.def(e)),
            Err(why) => ev.error(e, format!("fn::open::{provider}: {why}")),
        };
    }
    match ev.host().open(&provider, &inputs.to_json()) {
        Ok(mut v) => {
            v.trace.def = ev.def(e);
            v
        }
        Err(why) => ev.error(e, format!("fn::open::{provider}: {why}")),
    }
}
