"""CloudWatch Logs reads (DescribeLogStreams, GetLogEvents, FilterLogEvents) over the jobs' log files.

Groups and streams are named as SageMaker names them: ``/aws/sagemaker/TrainingJobs`` with one stream
``<job>/algo-N-<epoch>`` per host, ``/aws/sagemaker/TransformJobs`` likewise, and
``/aws/sagemaker/Endpoints/<name>`` with ``AllTraffic/<epoch>``. Each line of a log file is an event;
its timestamp is the line's own ``[MM/DD/YYYY HH:MM:SS`` stamp where it has one, never earlier than the
line before, so the SDK's ``logs_for_job`` (which resumes from a timestamp and a count) sees every line
exactly once however often it polls. Tokens are line offsets.
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from smlocal.api.protocol import ACCOUNT, ApiError

DEFAULT_LIMIT = 10000
_STAMP = re.compile(r"^\[(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)")


@dataclass(frozen=True)
class Stream:
    name: str
    path: Path
    created_ms: int


# a provider: log group name -> its streams (None when the group does not exist)
Provider = Callable[[str], "list[Stream] | None"]


def events(stream: Stream) -> list[dict]:
    """Every line of the stream's file as an event, with non-decreasing timestamps (ms)."""
    try:
        text = stream.path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    last = stream.created_ms
    out = []
    for line in text.splitlines():
        match = _STAMP.match(line)
        if match:
            try:
                stamp = int(_dt.datetime.strptime(match.group(1), "%m/%d/%Y %H:%M:%S").timestamp() * 1000)
                last = max(last, stamp)
            except ValueError:
                pass
        out.append({"timestamp": last, "message": line, "ingestionTime": last})
    return out


def _not_found() -> ApiError:
    return ApiError("ResourceNotFoundException", "The specified log group does not exist.")


def _in_window(event: dict, body: dict) -> bool:
    start, end = body.get("startTime"), body.get("endTime")
    return (start is None or event["timestamp"] >= start) and (end is None or event["timestamp"] < end)


def _token(value: str | None, prefix: str) -> int | None:
    if not value:
        return None
    kind, _, number = value.partition("/")
    if kind not in ("f", "b") or not number.isdigit():
        raise ApiError("InvalidParameterException", f"The specified {prefix}nextToken is invalid.")
    return int(number)


class Logs:
    def __init__(self, providers: Iterable[Provider]):
        self.providers = list(providers)

    def _streams(self, group: str) -> list[Stream]:
        for provider in self.providers:
            found = provider(group)
            if found is not None:
                return found
        raise _not_found()

    def _stream(self, group: str, name: str) -> Stream:
        for stream in self._streams(group):
            if stream.name == name:
                return stream
        raise ApiError("ResourceNotFoundException", "The specified log stream does not exist.")

    def describe_log_streams(self, body: dict) -> dict:
        group = body["logGroupName"]
        streams = [s for s in self._streams(group) if s.name.startswith(body.get("logStreamNamePrefix", ""))]
        if body.get("orderBy") == "LastEventTime":
            streams.sort(key=lambda s: (events(s)[-1:] or [{"timestamp": s.created_ms}])[0]["timestamp"])
        else:
            streams.sort(key=lambda s: s.name)
        if body.get("descending"):
            streams.reverse()
        start = int(body.get("nextToken") or 0)
        limit = body.get("limit", 50)
        answer = []
        for s in streams[start:start + limit]:
            evs = events(s)
            item = {"logStreamName": s.name, "creationTime": s.created_ms, "storedBytes": 0,
                    "arn": f"arn:aws:logs:local:{ACCOUNT}:log-group:{group}:log-stream:{s.name}"}
            if evs:
                item.update(firstEventTimestamp=evs[0]["timestamp"], lastEventTimestamp=evs[-1]["timestamp"],
                            lastIngestionTime=evs[-1]["timestamp"])
            answer.append(item)
        result: dict = {"logStreams": answer}
        if start + limit < len(streams):
            result["nextToken"] = str(start + limit)
        return result

    def get_log_events(self, body: dict) -> dict:
        stream = self._stream(body["logGroupName"], body["logStreamName"])
        evs = [e for e in events(stream) if _in_window(e, body)]
        limit = body.get("limit", DEFAULT_LIMIT)
        position = _token(body.get("nextToken"), "")
        if position is None:
            position = 0 if body.get("startFromHead") else max(0, len(evs) - limit)
        chosen = evs[position:position + limit]
        end = position + len(chosen)
        return {"events": chosen, "nextForwardToken": f"f/{end}", "nextBackwardToken": f"b/{position}"}

    def filter_log_events(self, body: dict) -> dict:
        streams = self._streams(body["logGroupName"])
        names = body.get("logStreamNames")
        prefix = body.get("logStreamNamePrefix", "")
        chosen = [s for s in streams if (names is None or s.name in names) and s.name.startswith(prefix)]
        pattern = _pattern(body.get("filterPattern", ""))
        found = []
        for s in chosen:
            for number, e in enumerate(events(s)):
                if _in_window(e, body) and pattern(e["message"]):
                    found.append({"logStreamName": s.name, "eventId": f"{s.name}/{number}", **e})
        found.sort(key=lambda e: e["timestamp"])
        start = int(body.get("nextToken") or 0)
        limit = body.get("limit", DEFAULT_LIMIT)
        result: dict = {"events": found[start:start + limit],
                        "searchedLogStreams": [{"logStreamName": s.name, "searchedCompletely": True}
                                               for s in chosen]}
        if start + limit < len(found):
            result["nextToken"] = str(start + limit)
        return result


def _pattern(text: str) -> Callable[[str], bool]:
    """CloudWatch's simplest filter patterns: terms that must all appear (quoted phrases kept whole)."""
    terms = [t.strip('"') for t in re.findall(r'"[^"]*"|\S+', text or "")]
    if not terms:
        return lambda message: True
    return lambda message: all(fnmatch.fnmatchcase(message, f"*{t}*") for t in terms)
