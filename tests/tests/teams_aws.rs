//! Organizations, teams and stack permissions on the AWS backend, against moto over the network.

stackhouse_tests::teams_tests!(stackhouse_tests::server::moto_target);
