"""Reads a --log-format json log and checks each line is one JSON object with exactly
the keys time (RFC 3339 with a UTC offset), level and message; prints each line back as
`LEVEL<TAB>time-offset<TAB>message`. Usage: json_log.py LOGFILE"""

import datetime
import json
import re
import sys

LEVELS = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")

with open(sys.argv[1], encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        obj = json.loads(line)
        assert isinstance(obj, dict), (n, line)
        assert set(obj) == {"time", "level", "message"}, (n, line)
        assert TIME.match(obj["time"]), (n, line)
        when = datetime.datetime.fromisoformat(obj["time"])
        assert when.utcoffset() is not None, (n, line)
        assert obj["level"] in LEVELS, (n, line)
        assert "\n" not in obj["message"], (n, line)
        print("%s\t%s\t%s" % (obj["level"], obj["time"][19:], obj["message"]))
