"""List* operations: the service's filters, sort orders and NextToken paging over stored records.

Pure functions over records, shared by every resource kind: a List request names its time filters
(``CreationTimeAfter``...), ``NameContains``, ``StatusEquals``, ``SortBy`` / ``SortOrder`` and
``MaxResults``; ``NextToken`` is the offset of the next page in the same sorted listing.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

from smlocal.api.protocol import validation

DEFAULT_MAX_RESULTS = 10


def _matches(record: Mapping, request: Mapping, name_key: str, status_key: str | None) -> bool:
    for field, key, after in (("CreationTimeAfter", "CreationTime", True),
                              ("CreationTimeBefore", "CreationTime", False),
                              ("LastModifiedTimeAfter", "LastModifiedTime", True),
                              ("LastModifiedTimeBefore", "LastModifiedTime", False)):
        if field in request:
            value = record.get(key, record.get("CreationTime", 0))
            if (value <= request[field]) if after else (value >= request[field]):
                return False
    if "NameContains" in request and request["NameContains"].lower() not in record[name_key].lower():
        return False
    if status_key and "StatusEquals" in request and record.get(status_key) != request["StatusEquals"]:
        return False
    return True


def page(records: Iterable[Mapping], request: Mapping, *, name_key: str, status_key: str | None,
         summary: Callable[[Mapping], dict], result_key: str, default_order: str = "Descending") -> dict:
    """One List* answer: ``{result_key: [summaries], "NextToken": ...}``."""
    chosen = [r for r in records if _matches(r, request, name_key, status_key)]
    sort_by = request.get("SortBy", "CreationTime")
    if sort_by == "Name":
        key = lambda r: r[name_key].lower()  # noqa: E731
    elif sort_by == "Status" and status_key:
        key = lambda r: (r.get(status_key) or "", r.get("CreationTime", 0))  # noqa: E731
    else:
        key = lambda r: (r.get("CreationTime", 0), r[name_key])  # noqa: E731
    # the service's default order: Descending, but Ascending for ListTrainingJobs (API reference)
    chosen.sort(key=key, reverse=request.get("SortOrder", default_order) == "Descending")
    start = 0
    if request.get("NextToken"):
        try:
            start = int(request["NextToken"])
        except ValueError:
            raise validation(f"Invalid pagination token {request['NextToken']!r}.") from None
    size = request.get("MaxResults", DEFAULT_MAX_RESULTS)
    answer: dict = {result_key: [summary(r) for r in chosen[start:start + size]]}
    if start + size < len(chosen):
        answer["NextToken"] = str(start + size)
    return answer


def pick(record: Mapping, *keys: str) -> dict:
    """The fields of a summary that the record has."""
    return {k: record[k] for k in keys if k in record and record[k] is not None}
