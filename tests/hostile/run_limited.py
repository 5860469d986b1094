"""Run symcost's resource cases, each as ``python -m symcost ARGS`` in a child process under limits.

Usage: ``python tests/hostile/run_limited.py CASES.json FOLDER``; prints ``{id: result}`` as JSON. Each case
runs in its own empty folder under FOLDER with ``RLIMIT_AS`` = 1 GiB (address space: a blowup is a
MemoryError, which symcost must word as one Error line), ``RLIMIT_CPU`` = 20 s (the same on an idle and a
loaded machine; past it the kernel stops the process), a 120 s wall-clock limit (a read that blocks uses no
CPU), and optionally
``RLIMIT_FSIZE`` (a file-size cap: the write fails as on a full disk) or a SIGINT sent after a delay (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

LIMIT_BYTES = 1 << 30
SECONDS = 20  # CPU time
WALL_SECONDS = 120
ROOT = Path(__file__).resolve().parent.parent.parent


def prepare(case: dict, folder: Path) -> None:
    """A case's files in ``folder``: text, text repeated, raw bytes (``hex``), a FIFO, and symlinks
    (tests/test_hostile.py prepares its in-process cases with this too)."""
    for name, content in (case.get("files") or {}).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and "repeat" in content:
            target.write_text(content["text"] * content["repeat"], encoding="utf-8")
        elif isinstance(content, dict) and "fifo" in content:
            os.mkfifo(target)
        elif isinstance(content, dict) and "hex" in content:
            target.write_bytes(bytes.fromhex(content["hex"]))
        else:
            target.write_text(content, encoding="utf-8")
    for link, source in (case.get("links") or {}).items():
        os.symlink(source, folder / link)


def run_case(case: dict, folder: Path) -> dict:
    folder.mkdir()
    prepare(case, folder)
    made = sorted(p.name for p in folder.iterdir())
    fsize = case.get("fsize")

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_CPU, (SECONDS, SECONDS + 1))
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    args = [a.replace("{ROOT}", str(ROOT)) for a in shlex.split(case["args"])]
    started = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = usage.ru_utime + usage.ru_stime
    proc = subprocess.Popen([sys.executable, "-m", "symcost", *args], cwd=folder, preexec_fn=limits,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    timed_out = False
    try:
        if "interrupt" in case:
            time.sleep(case["interrupt"])
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WALL_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - before
    timed_out = timed_out or proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) or cpu > SECONDS
    left = sorted(p.name for p in folder.iterdir())
    return {"exit": proc.returncode, "stderr": err[-4000:], "stdout": out[-2000:], "timed_out": timed_out,
            "seconds": round(time.perf_counter() - started, 2), "cpu": round(cpu, 2), "made": made, "left": left}  # fmt: skip


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    base = Path(sys.argv[2])
    results = {case["id"]: run_case(case, base / case["id"]) for case in cases}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
