//! The service secrets conformance suite on the AWS backend, against moto over the network.

stackhouse_tests::secrets_conformance_tests!(stackhouse_tests::server::moto_target);
