//! Resource search queries: any text is parsed or refused with a 400, never a panic, and what
//! is parsed runs through the matcher over a document without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stackhouse::service::search::doc::ResourceDoc;
use stackhouse::service::search::{matcher, query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match query::parse(text) {
        Ok(q) => {
            let doc = ResourceDoc {
                stack_id: "s".into(),
                project: "web".into(),
                stack: "dev".into(),
                urn: "urn:pulumi:dev::web::aws:s3/bucket:Bucket::logs".into(),
                type_: "aws:s3/bucket:Bucket".into(),
                package: "aws".into(),
                module: "s3".into(),
                name: "logs".into(),
                id: "logs-1".into(),
                custom: true,
                delete: false,
                protected: true,
                external: false,
                pending_replacement: false,
                pending: String::new(),
                parent_urn: String::new(),
                provider_urn: String::new(),
                dependencies: vec!["urn:pulumi:dev::web::x::y".into()],
                created: "2026-11-01T10:00:00.000Z".into(),
                modified: "2026-11-02T10:00:00.000Z".into(),
                fingerprint: String::new(),
            };
            let _ = matcher::matches(&doc, &q);
        }
        Err(e) => assert!(matches!(e, stackhouse::Error::BadRequest(_)), "{e:?}"),
    }
});
