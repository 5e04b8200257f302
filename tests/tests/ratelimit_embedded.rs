//! The rate limit suite on the embedded backend.

stackhouse_tests::ratelimit_tests!(|_| stackhouse_tests::server::Target::Embedded);
