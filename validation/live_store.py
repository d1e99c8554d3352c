"""The live vLLM (CPU) measurements of validation/live/ in compact form, and the files they
were measured as, back from it byte for byte.

    python validation/live_store.py materialise [RUN[/REP] ...] [--dest DIR] [--logs]
    python validation/live_store.py verify       # every repeat's files against the manifest
    python validation/live_store.py add RUN REP [--src DIR]   # store a measured repeat

    sys.path.insert(0, "validation")              # or run a script in validation/
    from live_store import materialise
    bench = materialise("near", "rep12", tmp)     # tmp/near/rep12/result.json (+ metrics.json ...)

Each run keeps in `validation/live/<run>/` a `requests.parquet` (one row per request of
every repeat: the per-request lists of the `vllm bench serve --save-result --save-detailed`
JSON) and a `repeats.parquet` (one row per repeat: the JSON's aggregates and settings, and
the text of the repeat's metrics.json, command.txt, load.txt and session.txt). The logs of
every repeat (bench.log, server.log) are in `validation/live/logs.tar.xz`, and the sha256 of
every file of every repeat, as measured, in `validation/live/manifest.sha256` (paths from
the repository root, `sha256sum -c` format). `materialise` rebuilds a repeat's files and
checks each against the manifest; by default it writes them where they were measured
(`validation/live/<run>/rep<N>/`, ignored by git), so the paths in calibration provenance
(`calibration/cpu-host-*/meta.yaml`) resolve to files with the recorded sha256.
validation/live/README.md describes the columns.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import lzma
import math
import os
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

LIVE = Path(__file__).resolve().parent / "live"
REQUESTS, REPEATS = "requests.parquet", "repeats.parquet"
LOGS, MANIFEST = "logs.tar.xz", "manifest.sha256"
RESULT, SESSION = "result.json", "session.txt"
TEXTS = {"metrics.json": "metrics_json", "command.txt": "command_txt", "load.txt": "load_txt"}
"""Repeat files kept verbatim as text columns of repeats.parquet."""
LOG_FILES = ("bench.log", "server.log")
REPEAT_FILES = (RESULT, *TEXTS, SESSION)  # what materialise writes
ALL_FILES = (*REPEAT_FILES, *LOG_FILES)  # what a measured repeat holds

# result.json's per-request lists -> requests.parquet columns.
TIMES_US = {"ttfts": "ttft_us", "itls": "itl_us", "latencies": "e2e_us",
            "start_times": "start_time_us", "queue_times": "queue_time_us"}  # fmt: skip
"""Seconds, rounded to 1 µs when measured (calibration/live/common.py:trim_result), stored as
integer microseconds: n / 1e6 is the same double as the measured value."""
COUNTS = {"input_lens": "input_len", "output_lens": "output_len"}
ERRORS = {"errors": "error"}
BLANK = "generated_texts"
"""Blanked when measured (dummy weights make the text meaningless): rebuilt as ''."""
LISTS = {**TIMES_US, **COUNTS, **ERRORS, BLANK: None}
INF = "inf"
"""`vllm bench serve` writes an infinite request rate as the string "inf"; repeats.parquet
holds it as the float inf."""

REQUEST_SCHEMA = pa.schema([
    ("rep", pa.int32()), ("index", pa.int32()),
    ("input_len", pa.int32()), ("output_len", pa.int32()),
    ("start_time_us", pa.int64()), ("queue_time_us", pa.int64()),
    ("ttft_us", pa.int64()), ("e2e_us", pa.int64()), ("itl_us", pa.list_(pa.int32())),
    ("error", pa.string()), ("success", pa.bool_()),
])  # fmt: skip
KEYS = ("rep", "session", "result_keys", *TEXTS.values())
"""repeats.parquet's own columns; the others are result.json's scalar fields by name."""


README_SECTION = """\
## Layout

```
<run>/requests.parquet    one row per request of every repeat of the run
<run>/repeats.parquet     one row per repeat
prefix-trace/trace.jsonl  the trace prefix-trace replays (and sessions-spec.yaml, its source)
logs.tar.xz               <run>/rep<N>/bench.log and server.log of every repeat
manifest.sha256           sha256 of every file of every repeat as measured (sha256sum -c
                          format, paths from the repository root)
runs.csv, README.md       calibration/live/summarize.py's tables (one row per repeat)
service_rate.json         the service rate the open-loop rates are multiples of
overhead/, inprocess/     per-step profiles, front-end CPU, the in-process run (own READMEs)
compact.py                the conversion from per-repeat directories (below)
```

`requests.parquet`, in the order of the bench JSON's per-request lists (the order the
client sent the requests). Times are the JSON's seconds, rounded to 1 µs when measured, as
integer microseconds (n / 1e6 is the very double the JSON held):

| column | type | unit | result.json field |
|---|---|---|---|
| rep | int32 | | N of rep<N> |
| index | int32 | | position in the per-request lists |
| input_len, output_len | int32 | tokens | input_lens, output_lens |
| start_time_us | int64 | µs | start_times (client's time.perf_counter when sent) |
| queue_time_us | int64 | µs | queue_times (client-side wait for a --max-concurrency slot) |
| ttft_us | int64 | µs | ttfts |
| e2e_us | int64 | µs | latencies |
| itl_us | list<int32> | µs | itls (one per output token after the first) |
| error | string | | errors ('' when the request succeeded) |
| success | bool | | derived: error == '' |

`generated_texts` is not stored: blanked when measured (dummy weights), it comes back as
''s. `repeats.parquet`: `rep`, `session` (the session label, session.txt without its
newline), `result_keys` (the JSON's field names in their order), `metrics_json`,
`command_txt`, `load_txt` (those files' text, verbatim: server counters and the server's
KV size; exact server and client commands; machine load), then every scalar field of the
JSON under its own name and type: `date`, `model_id`, `num_prompts`, `request_rate` (an
infinite rate, the JSON's string "inf", is the float inf), `max_concurrency` (null: open
loop), `duration` (s), `completed`, `failed`, the throughputs, and the client's stated
aggregates `{mean,median,std,p50,p90,p99}_{ttft,tpot,itl,e2el}_ms` (ms).

**The files of a repeat** come back byte for byte, each checked against `manifest.sha256`:

```
python validation/live_store.py materialise                 # all, to validation/live/<run>/rep<N>/
python validation/live_store.py materialise near/rep12 --dest /tmp/live --logs
python validation/live_store.py verify                      # rebuild all, compare with the manifest
```

or from Python (`validation/` on `sys.path`): `live_store.materialise(run, rep, dest)` ->
path of its result.json; `live_store.result(run, rep)` -> the JSON as a dict;
`live_store.requests(run)`, `live_store.repeats(run)` -> the tables. Materialised into
`validation/live/` (the default) they sit at the paths they were measured at, which git
ignores; so the `validation/live/<run>/rep<N>/result.json` sources, with sha256, in
`calibration/cpu-host-*/meta.yaml` resolve to the same bytes. `validation/report.py`
materialises the repeats it replays into a temporary directory.

**Conversion.** Until issue 14 (item 7) each repeat was a directory `<run>/rep<N>/` of seven
files (1,645 files, 27 MB in all). `compact.py` stored them with `live_store.add`, which
refuses a table that does not rebuild every file exactly, and compared every rebuilt file,
logs included, with the directories before they were removed. Nothing was dropped but the
blanked texts (rebuilt) and the directory form itself; the logs are kept, compressed, since
neither is derivable from the rest (the server's: its startup with the KV size, warnings,
the engine's periodic throughput and queue stats; the client's: its full arguments). New
repeats land in the store directly: `calibration/live/matrix.py` measures into
`<run>/rep<N>/` as before and then stores the repeat (`live_store.add`).
"""

# -- encoding -------------------------------------------------------------------------------


def rep_number(rep: str | int) -> int:
    """12 for "rep12" or 12."""
    if isinstance(rep, int):
        return rep
    if not (rep.startswith("rep") and rep[3:].isdigit()):
        raise ValueError(f"a repeat is named rep<N>, not {rep!r}")
    return int(rep[3:])


def _us(x: float | None) -> int | None:
    if x is None:
        return None
    n = round(x * 1e6)
    if not isinstance(x, float) or n / 1e6 != x:
        raise ValueError(f"{x!r} is not a time in seconds rounded to 1 µs (trim_result first)")
    return n


def _s(n: int | None) -> float | None:
    return None if n is None else n / 1e6


def encode(result: dict, rep: int, texts: dict[str, bytes]) -> tuple[dict, list[dict]]:
    """One repeat's (repeats row, request rows) from its result.json and other files."""
    row: dict = {"rep": rep, "result_keys": json.dumps(list(result))}
    for name, column in TEXTS.items():
        row[column] = texts[name].decode() if name in texts else None
    session = texts[SESSION].decode() if SESSION in texts else None
    if session is not None and not session.endswith("\n"):
        raise ValueError(f"session.txt of rep{rep} does not end with a newline")
    row["session"] = None if session is None else session[:-1]
    for key, value in result.items():
        if key in LISTS:
            continue
        if key in KEYS:
            raise ValueError(f"result.json field {key!r} clashes with a repeats.parquet column")
        if key == "request_rate" and value == INF:
            value = math.inf
        row[key] = value
    n = len(result.get("input_lens", result.get("ttfts", [])))
    if any(text != "" for text in result.get(BLANK, [])):
        raise ValueError(f"rep{rep}: generated texts are not blanked (trim_result first)")
    requests = []
    for i in range(n):
        req = {"rep": rep, "index": i}
        for key, column in COUNTS.items():
            req[column] = result[key][i] if key in result else None
        for key, column in TIMES_US.items():
            value = result[key][i] if key in result else None
            if key == "itls":
                req[column] = None if value is None else [_us(x) for x in value]
            else:
                req[column] = _us(value)
        error = result["errors"][i] if "errors" in result else None
        req["error"], req["success"] = error, (error == "" if error is not None else None)
        requests.append(req)
    return row, requests


def decode(row: dict, requests: list[dict]) -> dict:
    """The result.json dict of one repeat (fields in their measured order)."""
    requests = sorted(requests, key=lambda r: r["index"])
    out = {}
    for key in json.loads(row["result_keys"]):
        if key == BLANK:
            out[key] = ["" for _ in requests]
        elif key in COUNTS:
            out[key] = [r[COUNTS[key]] for r in requests]
        elif key == "itls":
            out[key] = [None if r["itl_us"] is None else [_s(n) for n in r["itl_us"]]
                        for r in requests]  # fmt: skip
        elif key in TIMES_US:
            out[key] = [_s(r[TIMES_US[key]]) for r in requests]
        elif key in ERRORS:
            out[key] = [r["error"] for r in requests]
        elif key == "request_rate" and row[key] == math.inf:
            out[key] = INF
        else:
            out[key] = row[key]
    return out


def dumps(result: dict) -> bytes:
    """result.json as the live harness writes it (calibration/live/common.py:trim_result)."""
    return json.dumps(result, separators=(",", ":")).encode()


def repeat_files(row: dict, requests: list[dict]) -> dict[str, bytes]:
    """The files of one repeat that the store rebuilds (not the logs): name -> bytes."""
    files = {RESULT: dumps(decode(row, requests))}
    for name, column in TEXTS.items():
        if row.get(column) is not None:
            files[name] = row[column].encode()
    if row.get("session") is not None:
        files[SESSION] = (row["session"] + "\n").encode()
    return files


def _column(name: str, values: list) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    types = {frozenset(): pa.null(), frozenset({bool}): pa.bool_(),
             frozenset({int}): pa.int64(), frozenset({float}): pa.float64(),
             frozenset({str}): pa.string()}  # fmt: skip
    if frozenset(kinds) not in types:
        raise ValueError(f"repeats column {name!r} mixes {sorted(k.__name__ for k in kinds)}")
    return pa.array(values, types[frozenset(kinds)])


def repeats_table(rows: list[dict]) -> pa.Table:
    rows = sorted(rows, key=lambda r: r["rep"])
    names = list(KEYS) + [k for r in rows for k in r if k not in KEYS]
    names = list(dict.fromkeys(names))
    return pa.table({k: _column(k, [r.get(k) for r in rows]) for k in names})


def requests_table(rows: list[dict]) -> pa.Table:
    rows = sorted(rows, key=lambda r: (r["rep"], r["index"]))
    return pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)


def _write_parquet(table: pa.Table, path: Path) -> None:
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=19,
                   use_dictionary=strings)  # fmt: skip
    os.replace(tmp, path)


# -- reading --------------------------------------------------------------------------------


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=64)
def _read_table(path: str, _mtime: int, _size: int) -> pa.Table:
    return pq.read_table(path)


@functools.lru_cache(maxsize=4)
def _read_logs(path: str, _mtime: int, _size: int) -> dict[str, bytes]:
    with tarfile.open(path, "r:xz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


@functools.lru_cache(maxsize=4)
def _read_manifest(path: str, _mtime: int, _size: int) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        sha, name = line.split("  ", 1)
        out[name] = sha
    return out


def runs(live: Path = LIVE) -> list[str]:
    """The runs in the store, by name."""
    return sorted(p.parent.name for p in live.glob(f"*/{REPEATS}"))


def repeats(run: str, live: Path = LIVE) -> pa.Table:
    """repeats.parquet of a run: one row per repeat."""
    return _read_table(*_stamp(live / run / REPEATS))


def requests(run: str, live: Path = LIVE) -> pa.Table:
    """requests.parquet of a run: one row per request of every repeat."""
    return _read_table(*_stamp(live / run / REQUESTS))


def reps(run: str, live: Path = LIVE) -> list[str]:
    """The run's repeats, "rep<N>", by N."""
    path = live / run / REPEATS
    if not path.is_file():
        return []
    return [f"rep{n}" for n in sorted(repeats(run, live).column("rep").to_pylist())]


def manifest(live: Path = LIVE) -> dict[str, str]:
    """Path from the repository root -> sha256 of every measured file of every repeat."""
    path = live / MANIFEST
    return _read_manifest(*_stamp(path)) if path.is_file() else {}


def _rows(run: str, rep: int, live: Path) -> tuple[dict, list[dict]]:
    table = repeats(run, live)
    match = [r for r in table.to_pylist() if r["rep"] == rep]
    if not match:
        raise KeyError(f"no repeat rep{rep} of run {run!r} in {live}")
    req = requests(run, live)
    mask = pc.equal(req.column("rep"), rep)
    return match[0], req.filter(mask).to_pylist()


def files(run: str, rep: str | int, live: Path = LIVE) -> dict[str, bytes]:
    """The rebuilt files of one repeat (result.json, metrics.json, command.txt, load.txt,
    session.txt): name -> bytes."""
    return repeat_files(*_rows(run, rep_number(rep), live))


def result(run: str, rep: str | int, live: Path = LIVE) -> dict:
    """The result.json of one repeat, as a dict."""
    return decode(*_rows(run, rep_number(rep), live))


def logs(run: str, rep: str | int, live: Path = LIVE) -> dict[str, bytes]:
    """bench.log and server.log of one repeat: name -> bytes."""
    path = live / LOGS
    members = _read_logs(*_stamp(path)) if path.is_file() else {}
    prefix = f"{run}/rep{rep_number(rep)}/"
    return {n[len(prefix) :]: b for n, b in members.items() if n.startswith(prefix)}


def _key(run: str, rep: int, name: str) -> str:
    """A file's name in the manifest: its path as measured, from the repository root (the
    same wherever a copy of the store lies)."""
    return f"validation/live/{run}/rep{rep}/{name}"


def _check(live: Path, run: str, rep: int, name: str, data: bytes) -> None:
    key = _key(run, rep, name)
    want = manifest(live).get(key)
    if want is None:
        raise KeyError(f"{key} is not in {live / MANIFEST}")
    if hashlib.sha256(data).hexdigest() != want:
        raise ValueError(f"{key}: rebuilt file does not match its sha256 in {MANIFEST}")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def materialise(
    run: str,
    rep: str | int,
    dest: Path | str | None = None,
    *,
    with_logs: bool = False,
    live: Path = LIVE,
) -> Path:
    """Write one repeat's files to `dest/<run>/rep<N>/` (default: validation/live itself, where
    they were measured; git ignores them), each checked against its sha256 in the manifest.
    `with_logs`: bench.log and server.log too. Returns the path of its result.json."""
    n = rep_number(rep)
    out = (live if dest is None else Path(dest)) / run / f"rep{n}"
    built = files(run, n, live)
    if with_logs:
        built |= logs(run, n, live)
    for name, data in built.items():
        _check(live, run, n, name, data)
        _write(out / name, data)
    return out / RESULT


def materialise_all(
    dest: Path | str | None = None,
    only: Iterable[str] | None = None,
    *,
    with_logs: bool = False,
    live: Path = LIVE,
) -> Path:
    """materialise every repeat (of the runs in `only`, or "run/repN" items); returns the
    root under which they lie (`dest`, default validation/live)."""
    for run, rep in _targets(only, live):
        materialise(run, rep, dest, with_logs=with_logs, live=live)
    return live if dest is None else Path(dest)


def _targets(only: Iterable[str] | None, live: Path) -> list[tuple[str, str]]:
    out = []
    for item in only or runs(live):
        run, _, rep = item.partition("/")
        out += [(run, r) for r in ([f"rep{rep_number(rep)}"] if rep else reps(run, live))]
    return out


def verify(live: Path = LIVE) -> tuple[int, int]:
    """Rebuild every file of every repeat (logs included) and compare with the manifest;
    raises on the first mismatch or on manifest entries without data. Returns (files,
    repeats)."""
    seen, count = set(), 0
    for run, rep in _targets(None, live):
        n = rep_number(rep)
        for name, data in (files(run, n, live) | logs(run, n, live)).items():
            _check(live, run, n, name, data)
            seen.add(_key(run, n, name))
        count += 1
    missing = sorted(set(manifest(live)) - seen)
    if missing:
        raise ValueError(f"{len(missing)} manifest entries have no data, e.g. {missing[0]}")
    return len(seen), count


# -- writing --------------------------------------------------------------------------------


def _logs_archive(members: dict[str, bytes]) -> bytes:
    """A reproducible tar.xz: sorted names, no owners, mtime 0."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(members[name]))
    return lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME)


def add(items: Iterable[tuple[str, str | int, Path]], live: Path = LIVE) -> None:
    """Store measured repeats: (run, rep, directory holding its files: result.json,
    trimmed, and any of metrics.json, command.txt, load.txt, session.txt, bench.log,
    server.log). A repeat already stored is replaced. Every repeat of every touched run is
    rebuilt and checked against the files (new) or the manifest (old) before anything is
    written."""
    items = [(run, rep_number(rep), Path(src)) for run, rep, src in items]
    sums = dict(manifest(live))
    log_path = live / LOGS
    members = dict(_read_logs(*_stamp(log_path))) if log_path.is_file() else {}
    tables = {}
    for run in dict.fromkeys(run for run, _, _ in items):
        new = {rep: src for r, rep, src in items if r == run}
        rows, reqs = [], []
        if (live / run / REPEATS).is_file():
            rows = [r for r in repeats(run, live).to_pylist() if r["rep"] not in new]
            reqs = [r for r in requests(run, live).to_pylist() if r["rep"] not in new]
        for rep, src in new.items():
            measured = {n: (src / n).read_bytes() for n in ALL_FILES if (src / n).is_file()}
            if RESULT not in measured:
                raise FileNotFoundError(src / RESULT)
            row, req = encode(json.loads(measured[RESULT]), rep, measured)
            rows.append(row)
            reqs += req
            prefix = _key(run, rep, "")
            sums = {k: v for k, v in sums.items() if not k.startswith(prefix)}
            sums |= {prefix + n: hashlib.sha256(b).hexdigest() for n, b in measured.items()}
            members = {k: v for k, v in members.items() if not k.startswith(f"{run}/rep{rep}/")}
            members |= {f"{run}/rep{rep}/{n}": measured[n] for n in LOG_FILES if n in measured}
        rep_table, req_table = repeats_table(rows), requests_table(reqs)
        # The round trip, from the tables about to be written, for every repeat of the run.
        by_rep: dict[int, list[dict]] = {}
        for r in req_table.to_pylist():
            by_rep.setdefault(r["rep"], []).append(r)
        for row in rep_table.to_pylist():
            for name, data in repeat_files(row, by_rep.get(row["rep"], [])).items():
                key = _key(run, row["rep"], name)
                if hashlib.sha256(data).hexdigest() != sums.get(key):
                    raise ValueError(f"{key}: the compact form does not rebuild it exactly")
        tables[run] = (rep_table, req_table)
    for run, (rep_table, req_table) in tables.items():
        (live / run).mkdir(parents=True, exist_ok=True)
        _write_parquet(req_table, live / run / REQUESTS)
        _write_parquet(rep_table, live / run / REPEATS)
    _write(log_path, _logs_archive(members))
    _write(live / MANIFEST, "".join(f"{sums[k]}  {k}\n" for k in sorted(sums)).encode())


# -- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("materialise", help="write repeats' files (default: all, in place)")
    m.add_argument("targets", nargs="*", help="RUN or RUN/repN (default: every repeat)")
    m.add_argument("--dest", type=Path, help="root to write <run>/rep<N>/ under "
                   "(default: validation/live, where they were measured)")  # fmt: skip
    m.add_argument("--logs", action="store_true", help="bench.log and server.log too")
    sub.add_parser("verify", help="rebuild every file and compare with manifest.sha256")
    a = sub.add_parser("add", help="store one measured repeat (replaces it if stored)")
    a.add_argument("run")
    a.add_argument("rep", help="repN")
    a.add_argument("--src", type=Path, help="its directory (default validation/live/RUN/REP)")
    args = ap.parse_args(argv)
    if args.cmd == "materialise":
        targets = _targets(args.targets, LIVE)
        root = materialise_all(args.dest, [f"{r}/{p}" for r, p in targets], with_logs=args.logs)
        print(f"{len(targets)} repeats -> {root}")  # noqa: T201
    elif args.cmd == "verify":
        n_files, n_reps = verify()
        print(f"{n_files} files of {n_reps} repeats match {LIVE / MANIFEST}")  # noqa: T201
    else:
        add([(args.run, args.rep, args.src or LIVE / args.run / args.rep)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
