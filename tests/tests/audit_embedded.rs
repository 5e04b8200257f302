//! The audit log suite on the embedded backend.

stackhouse_tests::audit_tests!(|_| stackhouse_tests::server::Target::Embedded);
