//! Evaluating a definition against the store: every environment it imports (transitively) is
//! loaded first, and the ciphertexts of each decrypted with that environment's own key, so the
//! evaluation itself (`service::env::eval`) does no I/O.
//!
//! Providers that read from outside (`aws-secrets`, `aws-parameter-store`) are the exception:
//! a pass that meets one with known inputs leaves its value unknown and asks for it; the reads
//! are made, all at once, and the evaluation runs again with their values. A provider whose
//! inputs come from another's value is read in a later pass.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value as Json;

use super::access::{self as env_access, EnvPermission};
use super::definition::revision_text;
use super::providers::{self, Opened, Request};
use super::{get, revisions, EnvRef, Environment, DEFAULT_PROJECT};
use crate::app::App;
use crate::error::Result;
use crate::ports::MetadataStore;
use crate::service::access::OrgAccess;
pub use crate::service::env::eval::Mode;
use crate::service::env::eval::{self, Context, Evaluated, Host, Source, MAX_IMPORTS};
use crate::service::env::secret_text::{self, Found};
use crate::service::env::value::Value;
use crate::service::env::{expr, syntax};
use crate::service::identity::Principal;
use crate::service::secrets;

/// The name anonymous definitions (`yaml/check`, `yaml/open`) have in ranges.
pub const YAML_NAME: &str = "<yaml>";

/// Evaluation passes at most: how deep providers may feed each other's inputs, plus one.
const MAX_PASSES: usize = 4;

/// An evaluation and the context it ran in.
pub struct Outcome {
    pub evaluated: Evaluated,
    /// The evaluated `context` (`executionContext.properties`).
    pub context: Json,
}

/// Evaluates the definition `text` of environment `env`.
/// `access` is the caller's standing in the environment's organization (what they may
/// import).
pub async fn named(
    app: &App,
    env: &Environment,
    text: &str,
    principal: &Principal,
    access: &OrgAccess,
    mode: Mode,
) -> Result<Outcome> {
    let name = env.at.qualified();
    run(app, &env.at.org, &name, Some(env.key_id()), text, principal, access, mode).await
}

/// Evaluates an anonymous definition (a stack's `environment:` block) in `org`.
pub async fn anonymous(
    app: &App,
    org: &str,
    text: &str,
    principal: &Principal,
    access: &OrgAccess,
    mode: Mode,
) -> Result<Outcome> {
    run(app, org, YAML_NAME, None, text, principal, access, mode).await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    app: &App,
    org: &str,
    name: &str,
    key_id: Option<String>,
    text: &str,
    principal: &Principal,
    access: &OrgAccess,
    mode: Mode,
) -> Result<Outcome> {
    // Imports the caller may not read (check) or open (open) are left out: to them they do
    // not exist, as the environment itself would answer 404.
    let needed = match mode {
        Mode::Check => EnvPermission::Read,
        Mode::Open => EnvPermission::Open,
    };
    let caller = Importer { access, floor: tokio::sync::OnceCell::new(), needed };
    let mut loaded = load(app, org, name, key_id, text, &caller).await?;
    let context = Context { user_login: principal.login().to_string() };
    let mut pass = 1;
    let evaluated = loop {
        loaded.last_pass = pass == MAX_PASSES;
        let evaluated = eval::evaluate(name, text, &loaded, &loaded, mode, &context);
        let wanted = loaded.wanted.take();
        if wanted.is_empty() {
            break evaluated;
        }
        let fetched = wanted.iter().map(|(_, request)| providers::fetch(app, request));
        for ((key, _), result) in wanted.iter().zip(futures::future::join_all(fetched).await) {
            loaded.opened.insert(key.clone(), result?);
        }
        pass += 1;
    };
    let context = eval::context_json(name, name, principal.login());
    Ok(Outcome { evaluated, context })
}

/// The definitions an evaluation may import, by the name they are imported as, and the
/// plaintexts of their ciphertexts.
/// Also what providers read from outside gave, and what a pass asked for.
#[derive(Default)]
struct Loaded {
    definitions: HashMap<String, (String, Arc<str>)>,
    plaintexts: HashMap<(String, String), String>,
    /// Values (or diagnostics) of outside reads, by provider and inputs.
    opened: HashMap<String, Result<Value, String>>,
    /// Reads this pass asked for (unknown until the next), each once.
    wanted: RefCell<Vec<(String, Request)>>,
    /// No further pass comes: what is still unread is a diagnostic.
    last_pass: bool,
}

impl Source for Loaded {
    fn definition(&self, name: &str) -> Option<(String, Arc<str>)> {
        self.definitions.get(name).cloned()
    }
}

impl Host for Loaded {
    fn decrypt(&self, environment: &str, ciphertext: &str) -> Result<String, String> {
        self.plaintexts
            .get(&(environment.to_string(), ciphertext.to_string()))
            .cloned()
            .ok_or_else(|| "it was not made by this environment".to_string())
    }

    fn check_open(&self, provider: &str, inputs: &Json) -> Result<(), String> {
        match providers::open(provider, inputs) {
            Opened::Now(Err(why)) => Err(why),
            Opened::Now(Ok(_)) | Opened::Fetch(_) => Ok(()),
        }
    }

    fn open(&self, provider: &str, inputs: &Json) -> Result<Value, String> {
        let request = match providers::open(provider, inputs) {
            Opened::Now(result) => return result,
            Opened::Fetch(request) => request,
        };
        let key = format!("{provider}\n{inputs}");
        if let Some(result) = self.opened.get(&key) {
            return result.clone();
        }
        if self.last_pass {
            return Err(format!(
                "its inputs depend on more than {} providers in a row",
                MAX_PASSES - 1
            ));
        }
        let mut wanted = self.wanted.borrow_mut();
        if !wanted.iter().any(|(k, _)| *k == key) {
            wanted.push((key, request));
        }
        Ok(Value::unknown(None))
    }
}

/// An import's environment and version: `project/name`, `name` (the default project), with
/// an optional `@version`.
fn split_import(name: &str) -> (&str, &str, Option<&str>) {
    let (path, version) = match name.rsplit_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    match path.split_once('/') {
        Some((project, env)) => (project, env, version),
        None => (DEFAULT_PROJECT, path, version),
    }
}

/// What loading needs of a definition, from one read of its YAML: the environments it imports
/// and its ciphertexts.
fn scan(text: &str) -> (Vec<String>, Vec<String>) {
    let root = syntax::parse(text).ok().flatten();
    let imports = expr::definition(root.as_ref()).0.imports.into_iter().map(|i| i.name).collect();
    let ciphertexts = root
        .map(|r| secret_text::find(&r))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| match f {
            Found::Ciphertext { ciphertext, .. } => Some(ciphertext),
            Found::Plaintext { .. } => None,
        })
        .collect();
    (imports, ciphertexts)
}

/// Who imports, and what they need of each import.
struct Importer<'a> {
    access: &'a OrgAccess,
    /// What they hold on every environment (so most imports need no further read), read at
    /// the first import.
    floor: tokio::sync::OnceCell<EnvPermission>,
    needed: EnvPermission,
}

impl Importer<'_> {
    async fn may_import(&self, meta: &dyn MetadataStore, env: &Environment) -> Result<bool> {
        let floor = *self.floor.get_or_try_init(|| env_access::floor(meta, self.access)).await?;
        if floor >= self.needed {
            return Ok(true);
        }
        Ok(env_access::permission(meta, self.access, env, self.needed).await? >= self.needed)
    }
}

async fn load(
    app: &App,
    org: &str,
    root_name: &str,
    root_key: Option<String>,
    root_text: &str,
    caller: &Importer<'_>,
) -> Result<Loaded> {
    let meta = app.ports.meta.as_ref();
    let mut loaded = Loaded::default();
    // Ciphertexts to decrypt, per environment (canonical name, its key id, its ciphertexts).
    let mut sealed: Vec<(String, String, Vec<String>)> = Vec::new();
    let (root_imports, root_ciphertexts) = scan(root_text);
    if let Some(key) = root_key {
        sealed.push((root_name.to_string(), key, root_ciphertexts));
    }
    let mut queue: VecDeque<String> = root_imports.into();
    while let Some(import) = queue.pop_front() {
        if loaded.definitions.contains_key(&import) || loaded.definitions.len() >= MAX_IMPORTS {
            continue;
        }
        let (project, env_name, version) = split_import(&import);
        let Ok(at) = EnvRef::parse(org, project, env_name) else { continue };
        let Ok(env) = get(meta, &at).await else { continue };
        if !caller.may_import(meta, &env).await? {
            continue;
        }
        let Ok(n) = revisions::resolve(meta, &env, version).await else { continue };
        let text = revision_text(app, &env, n).await?;
        let canonical = match version {
            Some(v) => format!("{}@{v}", at.qualified()),
            None => at.qualified(),
        };
        let (imports, ciphertexts) = scan(&text);
        queue.extend(imports);
        sealed.push((canonical.clone(), env.key_id(), ciphertexts));
        loaded.definitions.insert(import, (canonical, Arc::from(text)));
    }
    for (canonical, key_id, ciphertexts) in sealed {
        for c in ciphertexts {
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(c.trim()) else {
                continue;
            };
            // One at a time: a bad ciphertext is that value's diagnostic, not the whole call's.
            if let Ok(mut plain) = secrets::decrypt(app, &key_id, &[bytes]).await {
                if let Some(p) = plain.pop() {
                    let text = String::from_utf8_lossy(&p).into_owned();
                    loaded.plaintexts.insert((canonical.clone(), c), text);
                }
            }
        }
    }
    Ok(loaded)
}
