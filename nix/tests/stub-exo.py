"""A stand-in for exo in NixOS VM tests: exo's flags, its folders under EXO_HOME, and the
three routes the health checks use (/node_id, /models, /state). No GPU, no downloads.

Faults for tests: a file named `fault` in EXO_HOME makes /models answer 500, and
EXO_STUB_FAULT=models-500 in the environment does the same from the start."""

import argparse
import json
import os
import pathlib
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser(prog="exo")
parser.add_argument("--api-port", type=int, default=52415)
parser.add_argument("--zenoh-port", type=int, default=52414)
parser.add_argument("--discovery-port", type=int, default=52413)
parser.add_argument("--namespace", default=None)
parser.add_argument("--offline", action="store_true")
args, _unknown = parser.parse_known_args()

home = pathlib.Path(os.environ.get("EXO_HOME", pathlib.Path.home() / ".exo"))
(home / "exo_log").mkdir(parents=True, exist_ok=True)
(home / "custom_model_cards").mkdir(exist_ok=True)
config = home / "config.toml"
if not config.exists():
    config.write_text("# exo stub config\n")
node_id = secrets.token_hex(16)


def faulty() -> bool:
    return os.environ.get("EXO_STUB_FAULT") == "models-500" or (home / "fault").exists()


def state() -> dict:
    return {
        "instances": {},
        "runners": {},
        "downloads": {},
        "tasks": {},
        "lastSeen": {},
        "topology": {"nodes": [node_id], "connections": {}},
        "nodeIdentities": {node_id: {"friendlyName": "stub", "chipId": "cpu"}},
        "nodeMemory": {node_id: {"ramTotal": {"inBytes": 1 << 30}}},
    }


class Handler(BaseHTTPRequestHandler):
    def send_json(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/node_id":
            self.send_json(200, node_id)
        elif path in ("/models", "/v1/models"):
            if faulty():
                self.send_json(500, {"detail": "stub fault"})
            else:
                self.send_json(200, {"object": "list", "data": []})
        elif path == "/state":
            self.send_json(200, state())
        else:
            self.send_json(404, {"detail": "Not Found"})

    def log_message(self, fmt, *a) -> None:
        sys.stderr.write("[ stub | INFO ] " + (fmt % a) + "\n")


print(f"exo stub: node {node_id}, namespace {args.namespace}, api port {args.api_port}", file=sys.stderr, flush=True)
with open(home / "exo_log" / "exo.log", "a") as log:
    log.write(f"exo stub started, node {node_id}\n")
ThreadingHTTPServer(("0.0.0.0", args.api_port), Handler).serve_forever()
