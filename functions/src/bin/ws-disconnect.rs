//! Lambda function for the `ws-disconnect` socket route (`$disconnect` of the WebSocket API).

stackhouse_lambda::socket!(WS_DISCONNECT);
