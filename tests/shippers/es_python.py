"""Sends documents to logmon's Elasticsearch bulk endpoint with the official elasticsearch
Python client's helpers.bulk, as an application or a shipper written in Python would.

usage: es_python.py URL SERVICE
Prints one JSON line {"info": the GET / answer's version, "ok": documents acknowledged,
"errors": [per-item errors]}.
"""
import datetime
import json
import sys

from elasticsearch import Elasticsearch, helpers

url, service = sys.argv[1:3]
es = Elasticsearch(url, request_timeout=10)
info = es.info()  # GET /: the client refuses a server without the product header

now = datetime.datetime.now(datetime.timezone.utc)
docs = [
    {"_index": "logs-app", "@timestamp": now.isoformat(), "message": "GET /cart",
     "log": {"level": "info", "logger": "http"}, "service": {"name": service},
     "http": {"response": {"status_code": 200}}, "event": {"duration": 12_500_000}, "user": {"id": "u-17"}},
    {"_index": "logs-app", "@timestamp": now.isoformat(), "message": "slow payment provider",
     "log.level": "warning", "service.name": service, "event.duration": 950_000_000},
]
docs += [
    {"_index": "logs-app", "@timestamp": now.isoformat(), "message": "payment failed",
     "log": {"level": "error"}, "service": {"name": service}, "http": {"response": {"status_code": 503}},
     "attempt": i}
    for i in range(5)
]
# one document logmon must refuse (a status code that is not HTTP), to show it costs only itself
docs.append({"_index": "logs-app", "message": "bad", "service": {"name": service}, "status_code": 999})

ok, errors = helpers.bulk(es, docs, raise_on_error=False, stats_only=False)
print(json.dumps({"info": info["version"]["number"], "ok": ok, "errors": errors}))
