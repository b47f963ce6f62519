-- wrk script for scripts/bench/flood.py: POST a malformed JSON body, which the server answers
-- 400 once throttling lets it through (no master is asked), or 429.
wrk.method = "POST"
wrk.body = "{"
wrk.headers["Content-Type"] = "application/json"
