//! The background jobs suite on the AWS backend, against moto over the network.

stackhouse_tests::jobs_conformance_tests!(stackhouse_tests::server::moto_target);
