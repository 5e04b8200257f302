//! The permission matrix (every route × every kind of caller) on the embedded backend.

stackhouse_tests::access_tests!(|_| stackhouse_tests::server::Target::Embedded, false);
