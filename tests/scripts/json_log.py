"""Reads a --log-format json log and checks each line is one JSON object with the keys
time (RFC 3339 with a UTC offset), level and message, and only known fields besides;
prints each line back as `LEVEL<TAB>time-offset<TAB>fields<TAB>message`, the fields as
sorted JSON with `seconds` replaced by its type's name and `session` (checked to be
PID-N) by "PID-N" ("-" for no fields). Usage:
json_log.py LOGFILE"""

import datetime
import json
import re
import sys

LEVELS = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"}
FIELDS = {
    "session", "remote", "user", "event", "command", "code", "path", "completed", "bytes",
    "seconds",
}
SESSION = re.compile(r"^\d+-\d+$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")

with open(sys.argv[1], encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        obj = json.loads(line)
        assert isinstance(obj, dict), (n, line)
        fields = {k: v for k, v in obj.items() if k not in ("time", "level", "message")}
        assert set(obj) - set(fields) == {"time", "level", "message"}, (n, line)
        assert set(fields) <= FIELDS, (n, line)
        if "seconds" in fields:
            fields["seconds"] = type(fields["seconds"]).__name__
        if "session" in fields:
            assert SESSION.match(fields["session"]), (n, line)
            fields["session"] = "PID-N"
        assert TIME.match(obj["time"]), (n, line)
        when = datetime.datetime.fromisoformat(obj["time"])
        assert when.utcoffset() is not None, (n, line)
        assert obj["level"] in LEVELS, (n, line)
        assert "\n" not in obj["message"], (n, line)
        shown = json.dumps(fields, sort_keys=True) if fields else "-"
        print("%s\t%s\t%s\t%s" % (obj["level"], obj["time"][19:], shown, obj["message"]))
