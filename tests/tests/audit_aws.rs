//! The audit log suite on the AWS backend, against moto over the network.

stackhouse_tests::audit_tests!(stackhouse_tests::server::moto_target);
