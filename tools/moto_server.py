"""Run moto's server single-threaded on HOST PORT.

moto_server serves requests on threads, and DynamoDB condition checks in moto are not
atomic across threads. The project's race test (32 writers, one winner) is the judge, so
requests are served one at a time, the way DynamoDB serialises writes to one item.
"""
import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, use_reloader=False)


if __name__ == "__main__":
    main()
