"""Shared by the table scripts: run one benchmark command, streaming its JSON lines into
``<path>.partial`` and renaming it to ``path`` only when the command succeeds.

With ``checkpoint`` (a trainer checkpoint the command resumes from and rewrites after every epoch),
an interrupted run continues where it stopped: the lines of the epochs the checkpoint holds are kept,
later ones (printed but not saved) are dropped, and the command's new lines are appended.
"""
import json
import os
import struct
import subprocess
import sys


def load(path):
    """The JSON objects of a results file, one per line."""
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


def checkpoint_epochs(path):
    """``epochs_done`` from a safetensors checkpoint's metadata (header only), or None."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        return int(header["__metadata__"]["epochs_done"])
    except (OSError, ValueError, KeyError, struct.error):
        return None


def stream_run(cmd, path, label, checkpoint=None):
    tmp = path + ".partial"
    kept = []
    done = checkpoint_epochs(checkpoint) if checkpoint and os.path.exists(checkpoint) else None
    if done is not None and os.path.exists(tmp):
        kept = [r for r in load(tmp) if "epoch" in r and r["epoch"] <= done]
        if len(kept) != done:  # the log does not match the checkpoint: start over
            kept = []
            os.remove(checkpoint)
        else:
            print(f"{label}: resuming after epoch {done}", file=sys.stderr, flush=True)
    elif checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    with open(tmp, "w") as out:
        for r in kept:
            out.write(json.dumps(r) + "\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            out.write(line)
            out.flush()
            print(f"  {label}: {line.strip()}", file=sys.stderr, flush=True)
        if proc.wait() != 0:
            raise SystemExit(f"{label} failed (exit {proc.returncode}); partial log in {tmp}")
    os.replace(tmp, path)
    if checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)


def parse_method(token):
    """A table's method token → (name, extra CLI arguments): ``samix:eta=0:kmeans-warm-start`` →
    ("samix", ["--eta", "0", "--kmeans-warm-start"]) (``key=value`` options and bare flags)."""
    name, *opts = token.split(":")
    extra = []
    for o in opts:
        k, eq, v = o.partition("=")
        if not k or (eq and not v):
            raise SystemExit(f"bad method option {o!r} in {token!r} (expected a flag or key=value)")
        extra += ["--" + k] + ([v] if eq else [])
    return name, extra
