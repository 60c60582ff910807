"""Sends logs to logmon with the official OpenTelemetry Python SDK (OTLP/HTTP exporter), the way an
instrumented Python service would: stdlib logging -> LoggingHandler -> BatchLogRecordProcessor.

usage: send_logs.py ENDPOINT SERVICE [--gzip] [--token T]
Prints one JSON line: {"exported": records the exporter reported as SUCCESS, "failed": others}.
Exit status 1 when any export failed.
"""
import argparse
import json
import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

parser = argparse.ArgumentParser()
parser.add_argument("endpoint")
parser.add_argument("service")
parser.add_argument("--gzip", action="store_true")
parser.add_argument("--token")
args = parser.parse_args()

outcome = {"exported": 0, "failed": 0}


class RecordingExporter(OTLPLogExporter):
    def export(self, batch):
        result = super().export(batch)
        outcome["exported" if result.name == "SUCCESS" else "failed"] += len(batch)
        return result


exporter = RecordingExporter(
    endpoint=args.endpoint,
    compression=Compression.Gzip if args.gzip else Compression.NoCompression,
    headers={"authorization": f"Bearer {args.token}"} if args.token else None,
    timeout=10,
)
provider = LoggerProvider(resource=Resource.create({"service.name": args.service, "host.name": "test-host"}))
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
log = logging.getLogger("checkout.http")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))

log.debug("cache warm")
log.info("GET /cart", extra={"http.response.status_code": 200, "latency_ms": 12.5, "cart.items": 3})
log.warning("slow payment provider", extra={"http.response.status_code": 200, "latency_ms": 950.0})
for i in range(20):
    log.error("payment failed", extra={"http.response.status_code": 503, "latency_ms": 30.0 + i, "attempt": i})
log.critical("database unreachable")

provider.force_flush()
provider.shutdown()
print(json.dumps(outcome))
sys.exit(1 if outcome["failed"] or not outcome["exported"] else 0)
