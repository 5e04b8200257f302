//! The service secrets conformance suite on the embedded backend.

stackhouse_tests::secrets_conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
