"""Shared by the table scripts: run one benchmark command, streaming its JSON lines into
``<path>.partial`` and renaming it to ``path`` only when the command succeeds."""
import json
import os
import subprocess
import sys


def load(path):
    """The JSON objects of a results file, one per line."""
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


def stream_run(cmd, path, label):
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    tmp = path + ".partial"
    with open(tmp, "w") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            out.write(line)
            out.flush()
            print(f"  {label}: {line.strip()}", file=sys.stderr, flush=True)
        if proc.wait() != 0:
            raise SystemExit(f"{label} failed (exit {proc.returncode}); partial log in {tmp}")
    os.replace(tmp, path)
