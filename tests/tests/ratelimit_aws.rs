//! The rate limit suite on the AWS backend, against moto over the network.

stackhouse_tests::ratelimit_tests!(stackhouse_tests::server::moto_target);
