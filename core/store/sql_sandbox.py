"""The SQL filter's worker process (run as a script by core.store.query; imports nothing from core).

stdin: an 8-byte little-endian header length, a JSON header {"sql", "memory", "threads",
"timeout"}, then the dataset as an Arrow IPC stream.  stdout: the matching row ids as
raw little-endian int64.  On failure: one line on stderr and exit code 3 (a DuckDB error),
4 (out of memory) or 5 (interrupted at the time limit).

Bounds that hold whatever the query does: the address space is capped at what the
process uses after start-up plus the memory budget (``RLIMIT_AS``), so an allocation
DuckDB does not track (a huge ``repeat()``) fails instead of exhausting the server;
a timer calls DuckDB's ``interrupt()`` on the connection at the time limit, and
``alarm()`` ends the process one second later in any case, even if the server that
started it has gone; DuckDB runs with external access off, no spill folder and its
configuration locked.
"""

import json
import math
import resource
import signal
import struct
import sys
import threading

import duckdb
import pyarrow as pa


def _size_bytes(text: str) -> int:
    units = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
             "b": 1}
    t = text.strip().lower().replace(" ", "")
    for unit in sorted(units, key=len, reverse=True):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * units[unit])
    return int(float(t))


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    """The sandbox process: reads a length-prefixed JSON header (query, timeout) and an Arrow
    stream from stdin, runs the query on an in-memory DuckDB with no file access, writes the
    result (or the error) to stdout.  Returns the exit code."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the default action ends the process
    stdin = sys.stdin.buffer
    (n,) = struct.unpack("<Q", stdin.read(8))
    header = json.loads(stdin.read(n))
    timeout = float(header["timeout"])
    signal.alarm(int(math.ceil(timeout)) + 1)

    table = pa.ipc.open_stream(stdin).read_all()
    con = duckdb.connect(":memory:", config={
        "enable_external_access": False, "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "temp_directory": "", "memory_limit": header["memory"], "threads": int(header["threads"])})
    con.register("dataset", table)
    con.execute("SET lock_configuration = true")
    limit = _vm_size() + 2 * _size_bytes(header["memory"])  # DuckDB's budget plus as much again untracked
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    timer = threading.Timer(timeout, con.interrupt)  # DuckDB's own cancellation, at the time limit
    timer.daemon = True
    timer.start()
    try:
        ids = con.execute(header["sql"]).fetchnumpy()["sieve_row_id"]
    except duckdb.InterruptException:
        print("interrupted at the time limit", file=sys.stderr)
        return 5
    except (duckdb.OutOfMemoryException, MemoryError) as exc:
        print(str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory", file=sys.stderr)
        return 4
    except duckdb.Error as exc:
        print((str(exc).strip().splitlines() or [type(exc).__name__])[0], file=sys.stderr)
        return 3
    sys.stdout.buffer.write(ids.astype("<i8").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
