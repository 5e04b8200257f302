"""moto's server with every request executed one at a time.

moto keeps DynamoDB tables in memory without locks, and its stock server is threaded: two
concurrent TransactWriteItems can both pass their conditions before either writes, which real
DynamoDB never allows. Our concurrency tests (16 racing `stack init`s or update starts) depend
on that atomicity, so the tests run moto behind one lock: same API, real-service semantics.
Arguments as moto_server: -H HOST -p PORT.
"""
import argparse
import os
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

parser = argparse.ArgumentParser()
parser.add_argument("-H", "--host", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=5000)
args = parser.parse_args()
os.environ.setdefault("MOTO_PORT", str(args.port))

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        # Consume the response inside the lock: the app may produce it lazily.
        return [b"".join(app(environ, start_response))]


run_simple(args.host, args.port, serialised, threaded=True, request_handler=MotoRequestHandler)
