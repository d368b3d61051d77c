#!/usr/bin/env python3
# logcorpus.py - a realistic log corpus for the codec benchmark: JSON
# access-log lines, one request each, with the fields a web front end logs
# (time, client IP, method, path with ids and query strings, status, bytes,
# latency, user agent, referrer, request id).  Values vary the way real
# traffic does: a few hot paths and many cold ones, mostly 200s, a long
# tail of latencies, random hex request ids that no codec can shrink.  A
# corpus of repeated text would flatter every codec; this one does not.
#
# Usage: logcorpus.py MIB [SEED] > corpus.jsonl   (deterministic per seed)
import json
import random
import time
import sys

METHODS = ["GET"] * 14 + ["POST"] * 4 + ["PUT", "DELETE", "PATCH", "HEAD"]
STATUS = [200] * 80 + [201] * 4 + [204] * 3 + [301, 302, 304] * 2 + \
    [400, 401, 403] + [404] * 4 + [429, 500, 502, 503]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/{v}.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/7.{v}.0",
    "python-requests/2.{v}.{p}",
    "Go-http-client/1.1",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "kube-probe/1.{v}",
]
WORDS = ("account order cart item product search user profile invoice "
         "report export image asset static api v1 v2 admin settings "
         "billing shipment review comment tag category feed").split()
REFERRERS = ["-", "https://www.example.com/", "https://www.google.com/",
             "https://news.example.org/article/{n}", "https://t.co/{h}"]


def path(r):
    k = r.random()
    if k < 0.25:  # hot endpoints
        return r.choice(["/", "/healthz", "/api/v1/feed", "/login",
                         "/static/app.js", "/static/app.css"])
    parts = ["/api" if k < 0.7 else ""]
    for _ in range(r.randint(1, 4)):
        w = r.choice(WORDS)
        parts.append(w)
        if r.random() < 0.4:
            parts.append(str(r.randint(1, 10 ** r.randint(2, 8))))
    p = "/".join(parts) or "/"
    if r.random() < 0.3:
        p += "?q=%s&page=%d" % (r.choice(WORDS), r.randint(1, 50))
    if r.random() < 0.1:
        p += "&session=%032x" % r.getrandbits(128)
    return p


def ip(r):
    if r.random() < 0.3:  # a pool of regular clients
        return "10.%d.%d.%d" % (r.randint(0, 3), r.randint(0, 15),
                                r.randint(1, 254))
    return "%d.%d.%d.%d" % (r.randint(1, 223), r.randint(0, 255),
                            r.randint(0, 255), r.randint(1, 254))


def main():
    mib = int(sys.argv[1])
    r = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    want = mib << 20
    out = sys.stdout
    t = 1767225600.0  # 2026-01-01T00:00:00Z
    done = 0
    while done < want:
        t += r.expovariate(2000.0)
        ms = int(t * 1000)
        sec, frac = divmod(ms, 1000)
        tm = time.gmtime(sec)
        status = r.choice(STATUS)
        ua = r.choice(AGENTS).format(v=r.randint(10, 130),
                                     b=r.randint(1000, 6999),
                                     p=r.randint(0, 200))
        ref = r.choice(REFERRERS).format(n=r.randint(1, 99999),
                                         h="%08x" % r.getrandbits(32))
        rec = {
            "ts": "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
                tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
                tm.tm_sec, frac),
            "ip": ip(r),
            "method": r.choice(METHODS),
            "path": path(r),
            "status": status,
            "bytes": 0 if status in (204, 304) else
            int(r.lognormvariate(7.5, 1.6)),
            "latency_ms": round(r.lognormvariate(2.5, 1.1), 3),
            "ua": ua,
            "referer": ref,
            "request_id": "%016x" % r.getrandbits(64),
            "upstream": "app-%d:8080" % r.randint(1, 12),
        }
        line = json.dumps(rec, separators=(",", ":")) + "\n"
        out.write(line)
        done += len(line)


if __name__ == "__main__":
    main()
