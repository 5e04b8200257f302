//! Micro-benchmarks of opening an environment (docs/BENCHMARKS.md, "Environments"):
//! `cargo bench -p stackhouse --bench environments`. The environment `loadgen env` opens: it
//! imports 10 others of 100 values each (a tenth of them secrets); each phase of an open is
//! timed on its own: reading the YAML, evaluating (imports, merges, references), and rendering
//! the client's JSON.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use stackhouse::service::env::eval::{evaluate, Context, Host, Mode, Source};
use stackhouse::service::env::value::Value;
use stackhouse::service::env::{syntax, wire};

struct World(HashMap<String, Arc<str>>);

impl Source for World {
    fn definition(&self, name: &str) -> Option<(String, Arc<str>)> {
        self.0.get(name).map(|t| (name.to_string(), t.clone()))
    }
}

impl Host for World {
    fn decrypt(&self, _env: &str, ciphertext: &str) -> Result<String, String> {
        Ok(ciphertext.to_string())
    }
    fn open(&self, _provider: &str, _inputs: &serde_json::Value) -> Result<Value, String> {
        Err("no providers here".into())
    }
}

fn world() -> (World, String) {
    let mut envs = HashMap::new();
    let mut root = String::from("imports:\n");
    for i in 0..10 {
        let mut yaml = String::from("values:\n");
        for j in 0..100 {
            if j % 10 == 0 {
                yaml.push_str(&format!("  key{j}: {{fn::secret: {{ciphertext: c-{i}-{j}}}}}\n"));
            } else {
                yaml.push_str(&format!("  key{j}: value-{i}-{j}\n"));
            }
        }
        yaml.push_str(&format!("  base{i}:\n    name: base-{i}\n    size: 100\n"));
        let name = format!("p/base-{i}");
        root.push_str(&format!("  - {name}\n"));
        envs.insert(name, Arc::from(yaml));
    }
    root.push_str("values:\n  environmentVariables:\n    FIRST: ${key1}\n    SECRET: ${key0}\n");
    root.push_str("  pulumiConfig:\n    joined: ${key1}-${key2}\n");
    (World(envs), root)
}

fn benches(c: &mut Criterion) {
    let (world, root) = world();
    let one = world.0.get("p/base-0").cloned().unwrap_or_else(|| Arc::from(""));
    c.bench_function("env/parse one imported definition (100 values)", |b| {
        b.iter(|| black_box(syntax::parse(&one)))
    });
    let context = Context { user_login: "alice".into() };
    c.bench_function("env/evaluate root with 10 imports x 100 values", |b| {
        b.iter(|| black_box(evaluate("p/root", &root, &world, &world, Mode::Open, &context)))
    });
    let e = evaluate("p/root", &root, &world, &world, Mode::Open, &context);
    assert!(e.diagnostics.is_empty(), "{:?}", e.diagnostics);
    let ctx = serde_json::json!({"currentEnvironment": {"name": "p/root"}});
    c.bench_function("env/render the opened environment's JSON", |b| {
        b.iter(|| {
            let json = wire::environment(&e, "p/root", wire::Secrets::Show, &ctx);
            black_box(serde_json::to_vec(&json))
        })
    });
}

criterion_group!(env, benches);
criterion_main!(env);
