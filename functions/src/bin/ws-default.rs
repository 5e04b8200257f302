//! Lambda function for the `ws-default` socket route (`$default` of the WebSocket API).

stackhouse_lambda::socket!(WS_DEFAULT);
