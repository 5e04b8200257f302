//! Lambda function for the `ws-connect` socket route (`$connect` of the WebSocket API).

stackhouse_lambda::socket!(WS_CONNECT);
