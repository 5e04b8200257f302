//! Crash at every storage write of the update paths, on the embedded backend.

stackhouse_tests::crash_tests!(|_| stackhouse_tests::server::Target::Embedded);
