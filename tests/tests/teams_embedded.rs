//! Organizations, teams and stack permissions on the embedded backend.

stackhouse_tests::teams_tests!(|_| stackhouse_tests::server::Target::Embedded);
