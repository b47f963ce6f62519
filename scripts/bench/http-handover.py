"""HTTP hand-over: one holder and one waiter on `wait=5`, over one `locklock serve`.

Each round: the holder POSTs a fresh UUID lock (60 s), the waiter POSTs the same lock with
`wait: 5` on its own connection, the holder DELETEs it; the hand-over is the time from the
DELETE's answer to the waiter's 201. Beside it, in the same run, one POST's latency at one
connection (POST then DELETE of fresh locks). Prints one JSON line.

usage: python3 http-handover.py PORT [ROUNDS]
"""
import http.client
import json
import sys
import threading
import time
import uuid


def request(connection, method, path, body=None):
    payload = json.dumps(body) if body is not None else None
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {})
    response = connection.getresponse()
    response.read()
    return response.status


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main():
    port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    holder = http.client.HTTPConnection("127.0.0.1", port)
    waiter = http.client.HTTPConnection("127.0.0.1", port)
    posts = []
    for _ in range(rounds):
        path = f"/v1/api/lock/uuid/{uuid.uuid4()}"
        started = time.perf_counter()
        assert request(holder, "POST", path, {"expires_in": 60}) == 201
        posts.append((time.perf_counter() - started) * 1e6)
        assert request(holder, "DELETE", path) == 200
    handovers = []
    for _ in range(rounds):
        path = f"/v1/api/lock/uuid/{uuid.uuid4()}"
        assert request(holder, "POST", path, {"expires_in": 60, "secret": "holder"}) == 201
        granted = {}

        def wait():
            granted["status"] = request(waiter, "POST", path, {"wait": 5, "secret": "waiter", "expires_in": 60})
            granted["at"] = time.perf_counter()
        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.02)  # the waiter's first attempt has been refused and it is queued
        assert request(holder, "DELETE", path, {"secret": "holder"}) == 200
        deleted = time.perf_counter()
        thread.join()
        assert granted["status"] == 201, granted
        handovers.append((granted["at"] - deleted) * 1e6)
        assert request(holder, "DELETE", path, {"secret": "waiter"}) == 200
    post_p50 = percentile(posts, 0.5)
    handover_p50 = percentile(handovers, 0.5)
    print(json.dumps({"mode": "http-handover", "rounds": rounds, "post_p50_us": round(post_p50, 1),
                      "handover_p50_us": round(handover_p50, 1), "handover_p99_us": round(percentile(handovers, 0.99), 1),
                      "handover_over_post_p50": round(handover_p50 / post_p50, 2)}))


if __name__ == "__main__":
    main()
