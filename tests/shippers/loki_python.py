"""Sends logs to logmon's Loki push endpoint with python-logging-loki (PyPI), the way a Python
service using it would: stdlib logging -> LokiHandler -> one JSON push per record.

usage: loki_python.py URL SERVICE VERSION    (VERSION: the emitter, "1" for Loki's v1 JSON
push, "0" for the legacy {"labels", "entries"} shape)
Prints one JSON line {"sent": records, "failed": records the handler could not push}; exit 1
when any failed.
"""
import json
import logging
import sys

import logging_loki

url, service, version = sys.argv[1:4]
outcome = {"sent": 0, "failed": 0}


class CountingHandler(logging_loki.LokiHandler):
    def emit(self, record):
        outcome["sent"] += 1
        super().emit(record)

    def handleError(self, record):
        outcome["failed"] += 1
        super().handleError(record)


handler = CountingHandler(url=url, tags={"service": service, "env": "test"}, version=version)
log = logging.getLogger("checkout.http")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(handler)

log.debug("cache warm")
log.info("GET /cart", extra={"tags": {"route": "/cart"}})
log.warning("slow payment provider")
for i in range(5):
    log.error("payment failed attempt %d", i)
log.critical("database unreachable")

print(json.dumps(outcome))
sys.exit(1 if outcome["failed"] else 0)
