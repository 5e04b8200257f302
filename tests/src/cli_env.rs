//! `pulumi env` (the real CLI) against the emulator: environments made, edited, opened, run,
//! versioned and removed as a user does it, and a stack whose config imports one.

use crate::environment_providers::{seed, unique, Seed};
use crate::pulumi::{Program, Pulumi};
use crate::server::{Target, TestServer};

/// A shell script the CLI runs as `EDITOR`: it replaces the file it is given with `text`.
fn editor(p: &Pulumi, text: &str) -> String {
    let path = p.items_dir().with_file_name("editor.sh");
    let script = format!("#!/bin/sh\ncat > \"$1\" <<'STACKHOUSE_EOF'\n{text}STACKHOUSE_EOF\n");
    std::fs::write(&path, script).expect("write editor script");
    let mut perms = std::fs::metadata(&path).expect("editor script").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).expect("chmod editor script");
    path.display().to_string()
}

/// `env init`, `env set` (plain and `--secret`), `env get`, `env edit` through `EDITOR`,
/// `env open`, `env run`, `env version tag`, `env ls`, `env rm`; `config env add/ls/rm`; then
/// `pulumi up` of a stack whose `Pulumi.dev.yaml` imports the environment and reads a secret
/// from it; and an environment that reads a secret kept in AWS (moto, or the embedded store's
/// stand-in).
pub async fn environments_with_pulumi_env(target: Target) {
    let server = TestServer::start(target).await;
    let mut p = Pulumi::login(&server).await;
    let base = format!("{}/shared/base", p.org);
    let app = format!("{}/shared/app", p.org);

    p.run_here(&["env", "init", &base]).await.ok().says("Environment created");
    p.run_here(&["env", "set", &base, "app.name", "web"]).await.ok();
    p.run_here(&["env", "set", &base, "db.password", "hunter2", "--secret"]).await.ok();
    let stored = p.run_here(&["env", "get", &base, "--definition"]).await.ok();
    stored.says("ciphertext").never_says("hunter2");
    p.run_here(&["env", "get", &base, "--definition", "--show-secrets"]).await.ok().says("hunter2");
    let shown = p.run_here(&["env", "get", &base]).await.ok();
    shown.says("\"name\": \"web\"").says("[secret]").never_says("hunter2");
    p.run_here(&["env", "get", &base, "app.name"]).await.ok().says("\"web\"");
    // A reference to nothing is refused with a diagnostic at its line, and nothing changes
    // (the CLI prints the diagnostics; its exit status is its own business).
    let bad = p.run_here(&["env", "set", &base, "broken", "${nope.nothing}"]).await;
    bad.says("shared/base:").says("unknown property \"nope\"");
    p.run_here(&["env", "get", &base, "--definition"]).await.ok().never_says("broken");

    p.run_here(&["env", "init", &app]).await.ok();
    let definition = "imports:\n  - shared/base\nvalues:\n  files:\n    GREETING_FILE: hello from a file\n  environmentVariables:\n    APP_NAME: ${app.name}\n    DB_PASSWORD: ${db.password}\n  pulumiConfig:\n    greeting: hello ${app.name}\n    dbPassword: ${db.password}\n";
    p.set_env("EDITOR", &editor(&p, definition));
    p.run_here(&["env", "edit", &app]).await.ok().says("Environment updated");

    let opened = p.run_here(&["env", "open", &app]).await.ok().json();
    assert_eq!(opened["environmentVariables"]["APP_NAME"], "web", "{opened}");
    assert_eq!(opened["environmentVariables"]["DB_PASSWORD"], "hunter2", "{opened}");
    assert_eq!(opened["app"]["name"], "web", "imported values are there: {opened}");

    let run = p
        .run_here(&[
            "env",
            "run",
            &app,
            "--",
            "sh",
            "-c",
            "echo $APP_NAME; cat $GREETING_FILE; echo; echo $DB_PASSWORD",
        ])
        .await
        .ok();
    run.says("web").says("hello from a file").says("[secret]").never_says("hunter2");
    p.run_here(&["env", "run", "-i", &app, "--", "printenv", "DB_PASSWORD"])
        .await
        .ok()
        .says("hunter2");

    p.run_here(&["env", "version", "tag", &format!("{app}@stable")]).await.ok();
    p.run_here(&["env", "set", &app, "environmentVariables.EXTRA", "1"]).await.ok();
    let tagged = p.run_here(&["env", "version", &format!("{app}@stable")]).await.ok();
    tagged.says("Revision 2");
    let history = p.run_here(&["env", "version", "history", &app]).await.ok();
    history.says("revision 3 (tag: latest)").says("revision 2 (tag: stable)");
    let at_stable = p.run_here(&["env", "open", &format!("{app}@stable")]).await.ok().json();
    assert!(at_stable["environmentVariables"].get("EXTRA").is_none(), "{at_stable}");

    let listed = p.run_here(&["env", "ls"]).await.ok();
    listed.says("shared/app").says("shared/base");

    // A stack whose config imports the environment: config and a secret reach the program.
    let program =
        Program::default().output("greeting", "${greeting}").output("password", "${dbPassword}");
    let proj = p.project("withenv", &program);
    p.run(&proj.dir, &["stack", "init", &p.fq("withenv", "dev")]).await.ok();
    // `config env add` writes the import into Pulumi.dev.yaml and shows the config it gives;
    // `ls` lists it; `rm` takes it out again; added back for the update below.
    p.run(&proj.dir, &["config", "env", "add", "shared/app", "--stack", "dev", "--yes"])
        .await
        .ok()
        .says("greeting");
    let stack_file = std::fs::read_to_string(proj.dir.join("Pulumi.dev.yaml")).expect("stack file");
    assert!(stack_file.contains("shared/app"), "{stack_file}");
    p.run(&proj.dir, &["config", "env", "ls", "--stack", "dev"]).await.ok().says("shared/app");
    p.run(&proj.dir, &["config", "env", "rm", "shared/app", "--stack", "dev", "--yes"]).await.ok();
    p.run(&proj.dir, &["config", "env", "ls", "--stack", "dev"])
        .await
        .ok()
        .never_says("shared/app");
    std::fs::write(proj.dir.join("Pulumi.dev.yaml"), "environment:\n  - shared/app\n")
        .expect("write stack config");
    p.run(&proj.dir, &["config", "--stack", "dev"])
        .await
        .ok()
        .says("hello web")
        .never_says("hunter2");
    p.run(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", "dev"]).await.ok();
    let outs = p.run(&proj.dir, &["stack", "output", "--json", "--stack", "dev"]).await.ok().json();
    assert_eq!(outs["greeting"], "hello web", "{outs}");
    assert_eq!(outs["password"], "[secret]", "a secret from an environment stays secret: {outs}");
    let outs = p
        .run(&proj.dir, &["stack", "output", "--json", "--show-secrets", "--stack", "dev"])
        .await
        .ok()
        .json();
    assert_eq!(outs["password"], "hunter2", "{outs}");

    // A secret kept in AWS reaches `env run` through `aws-secrets`.
    let cloud = format!("{}/shared/cloud", p.org);
    let secret_id = format!("cli-api-key-{}", unique());
    seed(&server, &[Seed::Secret { id: &secret_id, value: "k-from-aws" }]).await;
    p.run_here(&["env", "init", &cloud]).await.ok();
    let definition = format!(
        "values:\n  aws:\n    login:\n      fn::open::aws-login:\n        static: {{accessKeyId: AKIAEXAMPLE, secretAccessKey: example}}\n    secrets:\n      fn::open::aws-secrets:\n        region: us-east-1\n        login: ${{aws.login}}\n        get:\n          api: {{secretId: {secret_id}}}\n  environmentVariables:\n    API_KEY: ${{aws.secrets.api}}\n"
    );
    p.set_env("EDITOR", &editor(&p, &definition));
    p.run_here(&["env", "edit", &cloud]).await.ok().says("Environment updated");
    p.run_here(&["env", "run", "-i", &cloud, "--", "printenv", "API_KEY"])
        .await
        .ok()
        .says("k-from-aws");
    p.run_here(&["env", "get", &cloud]).await.ok().never_says("k-from-aws");

    // Removing an imported environment breaks its importers with a diagnostic.
    p.run_here(&["env", "rm", &base, "--yes"]).await.ok().says("has been removed");
    p.run_here(&["env", "open", &app]).await.failed().says("shared/base");
    p.run_here(&["env", "ls"]).await.ok().never_says("shared/base");
    server.stop().await;
}
