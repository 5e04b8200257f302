//! The access token suite on the embedded backend.

stackhouse_tests::tokens_tests!(|_| stackhouse_tests::server::Target::Embedded);
