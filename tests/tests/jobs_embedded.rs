//! The background jobs suite on the embedded backend.

stackhouse_tests::jobs_conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
