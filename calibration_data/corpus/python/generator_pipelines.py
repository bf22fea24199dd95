"""Composable generator stages for streaming record processing."""
import itertools
import json
from typing import Any, Callable, Dict, Iterable, Iterator, List, TypeVar

T = TypeVar("T")
Record = Dict[str, Any]


def read_jsonl(lines: Iterable[str]) -> Iterator[Record]:
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {n}: {exc.msg}") from None


def where(pred: Callable[[Record], bool]):
    def stage(records: Iterable[Record]) -> Iterator[Record]:
        return (r for r in records if pred(r))
    return stage


def select(*fields: str):
    def stage(records: Iterable[Record]) -> Iterator[Record]:
        for r in records:
            yield {f: r.get(f) for f in fields}
    return stage


def batched(items: Iterable[T], size: int) -> Iterator[List[T]]:
    if size < 1:
        raise ValueError("size must be >= 1")
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def sliding_window(items: Iterable[T], width: int) -> Iterator[tuple]:
    it = iter(items)
    window = tuple(itertools.islice(it, width))
    if len(window) == width:
        yield window
    for x in it:
        window = window[1:] + (x,)
        yield window


def dedupe(key: Callable[[Record], Any]):
    def stage(records: Iterable[Record]) -> Iterator[Record]:
        seen = set()
        for r in records:
            k = key(r)
            if k not in seen:
                seen.add(k)
                yield r
    return stage


def pipeline(source: Iterable, *stages: Callable[[Iterable], Iterable]) -> Iterable:
    data = source
    for stage in stages:
        data = stage(data)
    return data


def running_average() -> Iterator[float]:
    """Coroutine: send numbers in, receive the running mean back."""
    total = 0.0
    count = 0
    average = 0.0
    while True:
        value = yield average
        total += value
        count += 1
        average = total / count


if __name__ == "__main__":
    raw = [
        '{"id": 1, "user": "ann", "amount": 12.5}',
        '{"id": 2, "user": "bob", "amount": 3.0}',
        "# comment line",
        '{"id": 1, "user": "ann", "amount": 12.5}',
        '{"id": 3, "user": "cy", "amount": 40.0}',
        '{"id": 4, "user": "ann", "amount": 7.25}',
    ]
    rows = pipeline(
        read_jsonl(raw),
        dedupe(lambda r: r["id"]),
        where(lambda r: r["amount"] > 5),
        select("user", "amount"),
    )
    for batch in batched(rows, 2):
        print(batch)

    avg = running_average()
    next(avg)
    for v in (10, 20, 60):
        print("mean so far:", avg.send(v))
    print(list(sliding_window(range(6), 3)))
