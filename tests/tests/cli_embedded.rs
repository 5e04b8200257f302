//! The real Pulumi CLI against the emulator on the embedded backend.

stackhouse_tests::cli_tests!(|_| stackhouse_tests::server::Target::Embedded);
