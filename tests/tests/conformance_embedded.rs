//! The HTTP conformance suite on the embedded backend.

stackhouse_tests::conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
