//! The webhooks suite on the embedded backend.

stackhouse_tests::webhooks_conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
