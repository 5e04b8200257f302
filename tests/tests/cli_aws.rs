//! The real Pulumi CLI against the emulator on the AWS backend, against moto over the network.

stackhouse_tests::cli_tests!(stackhouse_tests::server::moto_target);
