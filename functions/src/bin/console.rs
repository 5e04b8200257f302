//! Lambda function of the web console (`GET /` and `GET /{proxy+}` of the HTTP API).

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::serve_console()
}
