//! The access token suite on the AWS backend, against moto over the network.

stackhouse_tests::tokens_tests!(stackhouse_tests::server::moto_target);
