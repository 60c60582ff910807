"""Sends logs to logmon's syslog listener with Python's logging.handlers.SysLogHandler, as a
Python service logging to syslog would (`<PRI>tag: message` plus a NUL, no timestamp or host).

usage: syslog_python.py HOST PORT tcp|udp SERVICE
"""
import logging
import logging.handlers
import socket
import sys

host, port, proto, service = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
handler = logging.handlers.SysLogHandler(
    address=(host, port),
    facility=logging.handlers.SysLogHandler.LOG_LOCAL3,
    socktype=socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM,
)
handler.setFormatter(logging.Formatter(f"{service}: %(message)s"))
log = logging.getLogger("app")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(handler)

log.debug("cache warm")
log.info("GET /cart")
log.warning("slow payment provider")
for i in range(5):
    log.error("payment failed attempt %d", i)
log.critical("database unreachable")
handler.close()
