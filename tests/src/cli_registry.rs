//! `pulumi template publish/ls`, `pulumi new <publisher>/<name>@<version>` and `pulumi package
//! publish/remove` (the real CLI) against the emulator's private registry: a project published
//! as a template, listed, and a new project made from it that `pulumi up` deploys; our test
//! provider's schema published as a package and removed.

use crate::pulumi::{Program, Project, Pulumi};
use crate::server::{Target, TestServer};

/// A YAML project of two items published as `starter@1.0.0`, listed by `pulumi template ls`,
/// then `pulumi new <org>/starter@1.0.0 --generate-only` into an empty directory and `pulumi up`
/// there.
pub async fn templates_publish_and_new(target: Target) {
    let server = TestServer::start(target).await;
    let mut p = Pulumi::login(&server).await;
    let org = p.org.clone();
    let template = p.project("starter", &Program::items(2));
    std::fs::write(template.dir.join("README.md"), "# starter\n").expect("write a readme");

    let dir = template.dir.display().to_string();
    let published = p
        .run(
            &template.dir,
            &["template", "publish", &dir, "--name", "starter", "--version", "1.0.0"],
        )
        .await
        .ok();
    published.says(&format!("Successfully published template {org}/starter@1.0.0"));
    let again = p
        .run(
            &template.dir,
            &["template", "publish", &dir, "--name", "starter", "--version", "1.0.0"],
        )
        .await
        .failed();
    again.says("already published");
    p.run(&template.dir, &["template", "ls"]).await.ok().says("starter").says(&org);
    // The README.md the CLI packed with the project is the template's readme.
    let path = format!("/api/registry/templates/private/{org}/starter/versions/1.0.0/readme");
    let readme = server.client().get(&path).await;
    assert_eq!(readme.json()["content"][0]["markdown"], "# starter\n", "{readme:?}");

    // `pulumi new` also looks at Pulumi's public template repository unless told where else to
    // look: an empty local one here (these machines reach no GitHub).
    let public = p.items_dir().with_file_name("public-templates");
    crate::git::repo_with(&public, "master", &[]);
    p.set_env("PULUMI_TEMPLATE_GIT_REPOSITORY", &public.display().to_string());

    let fresh = p.items_dir().with_file_name("fresh");
    let fresh_dir = fresh.display().to_string();
    let created = p
        .run(
            &template.dir,
            &[
                "new",
                &format!("{org}/starter@1.0.0"),
                "--yes",
                "--name",
                "fresh",
                "--stack",
                "dev",
                "--dir",
                &fresh_dir,
                // No `pulumi install`: it would look for the test provider on GitHub.
                "--generate-only",
            ],
        )
        .await
        .ok();
    created.says("Created project 'fresh'");
    let yaml = std::fs::read_to_string(fresh.join("Pulumi.yaml")).expect("the new project");
    assert!(yaml.contains("name: fresh") && yaml.contains("item-1"), "{yaml}");
    let project = Project::at(fresh.clone(), "fresh", &template);
    p.run(&project.dir, &["stack", "init", &p.fq("fresh", "dev")]).await.ok();
    let up = p.run(&project.dir, &["up", "--yes", "--skip-preview", "--stack", "dev"]).await.ok();
    assert_eq!(p.item_count(), 2, "{up}");
}

/// `pulumi package publish <provider binary> --readme …` (the CLI asks the provider for its
/// schema), a second publish of the same version refused, then `pulumi package remove`.
pub async fn packages_publish_and_remove(target: Target) {
    let server = TestServer::start(target).await;
    let p = Pulumi::login(&server).await;
    let org = p.org.clone();
    let dir = p.items_dir().with_file_name("package");
    std::fs::create_dir_all(&dir).expect("create the package directory");
    std::fs::write(dir.join("README.md"), "# stackhouse-test\n\nItems in files.\n")
        .expect("write a readme");
    let provider = crate::pulumi::bin_dir().join("pulumi-resource-stackhouse-test");
    let provider = provider.display().to_string();
    let publish = ["package", "publish", &provider, "--readme", "README.md", "--publisher", &org];
    p.run(&dir, &publish)
        .await
        .ok()
        .says(&format!("Successfully published package {org}/stackhouse-test@1.0.0"));
    p.run(&dir, &publish).await.failed().says("already published");
    let c = server.client();
    let path = format!("/api/registry/packages/private/{org}/stackhouse-test/versions/latest");
    let got = c.get(&path).await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
    let schema_url = got.json()["schemaURL"].as_str().expect("schemaURL").to_string();
    let schema: serde_json::Value =
        reqwest::get(&schema_url).await.expect("schema").json().await.expect("schema JSON");
    assert!(schema["resources"]["stackhouse-test:index:Item"].is_object(), "{schema}");
    let removed = p
        .run(&dir, &["package", "remove", &format!("{org}/stackhouse-test@1.0.0"), "--yes"])
        .await
        .ok();
    removed.says("has been deleted");
    assert_eq!(c.get(&path).await.status, 404);
}
