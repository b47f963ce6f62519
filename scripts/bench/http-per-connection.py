#!/usr/bin/env python3
"""One connection at a time, p50 of a lock request (POST a fresh UUID lock, then DELETE it)
and of GET /livez, per connection. The server spreads connections over its event loops in
turn, and one client's masters live on one loop: a connection that lands there makes no
thread hop per request, the others one each way, so the p50s fall into two groups.
usage: scripts/bench/http-per-connection.py PORT [CONNECTIONS] [REQUESTS]"""
import http.client
import json
import statistics
import sys
import time
import uuid

port = int(sys.argv[1])
connections = int(sys.argv[2]) if len(sys.argv) > 2 else 6
requests = int(sys.argv[3]) if len(sys.argv) > 3 else 1000


def timed(connection, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body else {}
    start = time.perf_counter_ns()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    elapsed = (time.perf_counter_ns() - start) / 1000
    return response.status, data, elapsed


for index in range(connections):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    lock, livez = [], []
    for _ in range(requests):
        path = f"/v1/api/lock/uuid/{uuid.uuid4()}"
        status, data, elapsed = timed(connection, "POST", path, '{"expires_in":30}')
        assert status == 201, (status, data)
        lock.append(elapsed)
        status, _, elapsed = timed(connection, "DELETE", path)
        assert status == 200, status
        lock.append(elapsed)
        livez.append(timed(connection, "GET", "/livez")[2])
    connection.close()
    print(json.dumps({"mode": "http-per-connection", "connection": index, "lock_request_p50_us": round(statistics.median(lock)),
                      "livez_p50_us": round(statistics.median(livez)),
                      "lock_minus_livez_us": round(statistics.median(lock) - statistics.median(livez))}))
