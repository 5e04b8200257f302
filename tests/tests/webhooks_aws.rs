//! The webhooks suite on the AWS backend, against moto over the network.

stackhouse_tests::webhooks_conformance_tests!(stackhouse_tests::server::moto_target);
