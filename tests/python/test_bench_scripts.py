"""The table and plot scripts under bench/ (they produce the results the issue notes quote)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
sys.path.insert(0, BENCH)

import accuracy_table as acc_table  # noqa: E402
import plot_runs  # noqa: E402
import run_log  # noqa: E402


def write_run(folder, name, accs, momentum=None, seconds=10.0, val=None):
    """A fake ``<name>.jsonl`` with one line per epoch (test top-1 ``accs[e]``, optional validation top-1)."""
    with open(os.path.join(folder, name + ".jsonl"), "w") as f:
        for e, acc in enumerate(accs, 1):
            row = {"epoch": e, "epochs": len(accs), "train_loss": 2.0 / e, "seconds": seconds + e, "test_top1": acc}
            if momentum is not None:
                row["test_top1_momentum"] = momentum[e - 1]
            if val is not None:
                row["val_top1"] = val[e - 1]
            f.write(json.dumps(row) + "\n")


def accuracy_table(folder, epochs, methods, seeds="0,1"):
    out = subprocess.run([sys.executable, os.path.join(BENCH, "accuracy_table.py"), "--results", str(folder),
                          "--epochs", str(epochs), "--methods", methods, "--seeds", seeds],
                         check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: line.split() for line in out.splitlines()[2:]}


def test_accuracy_table_medians_means_std_and_unfinished_runs(tmp_path):
    write_run(tmp_path, "vanilla-seed0", [10, 50, 60, 70, 80, 90], val=[1, 2, 3, 4, 5, 6])   # median of last 5 = 70
    write_run(tmp_path, "vanilla-seed1", [10, 52, 62, 72, 82, 92], val=[1, 2, 3, 6, 7, 8])   # 72
    write_run(tmp_path, "automix-seed0", [1, 2, 3, 4, 5, 6], momentum=[6, 5, 4, 3, 2, 1])   # 4 / 3
    write_run(tmp_path, "mixup-seed0", [1, 2, 3, 4, 5])                     # stopped after epoch 5: not finished
    write_run(tmp_path, "mixup_clean-term_epochs8-seed0", [1, 2, 3, 4, 5, 6, 7, 8])  # its own run length
    rows = accuracy_table(tmp_path, 6, "vanilla,automix,mixup,samix:eta=0,mixup:clean-term:epochs=8")
    # mean ± sample std of 70 and 72; no momentum head; validation medians 4 and 6 → 5 ± 1.41
    assert rows["vanilla"][1:12] == ["2", "6", "71.00", "±", "1.41", "-", "5.00", "±", "1.41", "70.00,72.00", "13.5"]
    assert rows["automix"][1:7] == ["1", "6", "4.00", "3.00", "-", "4.00"]
    assert "(no finished run)" in " ".join(rows["mixup"])
    assert "(no finished run)" in " ".join(rows["samix:eta=0"])
    assert rows["mixup:clean-term:epochs=8"][1:4] == ["1", "8", "6.00"]


def test_accuracy_table_method_tokens():
    assert acc_table.parse_method("samix:eta=0:mask-loss-weight=0") == \
        ("samix", ["--eta", "0", "--mask-loss-weight", "0"])
    assert acc_table.file_stem("samix:eta=0:mask-loss-weight=0") == "samix_eta0_mask-loss-weight0"
    token = "samix-p:mixer=results/ssl/samix-i-seed0.mixer.safetensors"
    assert acc_table.parse_method(token) == ("samix-p", ["--mixer", "results/ssl/samix-i-seed0.mixer.safetensors"])
    assert acc_table.file_stem(token) == "samix-p_mixer-samix-i-seed0"
    with pytest.raises(SystemExit):
        acc_table.parse_method("samix:eta=")


def test_accuracy_table_issue14_rows_and_commands():
    # The cause-separating rows are expressible as tokens and become samix-bench train flags.
    assert acc_table.expand("issue14").split(",") == ["samix:mixer-loss=official", "samix:mask-loss-scope=sample",
                                                       "automix:mixer-loss=eta", "mixup:clean-term"]
    assert acc_table.expand("main") == "vanilla,mixup,cutmix,automix,samix"
    assert acc_table.parse_method("samix:mixer-loss=official") == ("samix", ["--mixer-loss", "official"])
    assert acc_table.parse_method("samix:mask-loss-scope=sample") == ("samix", ["--mask-loss-scope", "sample"])
    assert acc_table.parse_method("automix:mixer-loss=eta") == ("automix", ["--mixer-loss", "eta"])
    assert acc_table.parse_method("mixup:clean-term") == ("mixup", ["--clean-term"])
    # epochs=N is the row's own run length (equal-compute rows), not a repeated flag.
    assert acc_table.split_epochs("mixup:epochs=250", 100) == ("mixup", 250)
    assert acc_table.split_epochs("mixup:clean-term", 100) == ("mixup:clean-term", 100)
    assert acc_table.file_stem("mixup:epochs=250") == "mixup_epochs250"
    for bad in ("mixup:epochs=x", "mixup:epochs=0"):
        with pytest.raises(SystemExit):
            acc_table.split_epochs(bad, 100)
    a = acc_table.argparse.Namespace(samix_bench="sb", data="/d", model="resnet20", epochs=100, batch=100, lr=0.1,
                                     weight_decay=5e-4, val_split=5000, train_subset=10000, threads=1, eval_every=5)
    cmd, epochs = acc_table.command(a, "mixup:epochs=250:clean-term", 2, "/r/mixup_epochs250_clean-term-seed2.jsonl")
    assert epochs == 250
    s = " ".join(cmd)
    assert "--mix mixup --clean-term --epochs 250" in s and "--val-split 5000" in s and "--seed 2" in s
    assert "--epochs 100" not in s and "--save-mixer" not in s
    cmd, _ = acc_table.command(a, "samix:mixer-loss=official", 0, "/r/samix_mixer-lossofficial-seed0.jsonl")
    assert "--mixer-loss official" in " ".join(cmd) and "--save-mixer" in cmd


def test_accuracy_table_print_commands(tmp_path):
    write_run(tmp_path, "vanilla-seed0", [1, 2])
    out = subprocess.run([sys.executable, os.path.join(BENCH, "accuracy_table.py"), "--results", str(tmp_path),
                          "--epochs", "2", "--methods", "vanilla,mixup:clean-term", "--seeds", "0,1", "--val-split", "5000",
                          "--print-commands"], check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(out) == 3                                  # vanilla seed 0 is finished
    assert all("--run" in l and "--val-split 5000" in l and "--threads 1" in l for l in out)
    assert any("--methods mixup:clean-term --seeds 1" in l for l in out)


def write_ssl_run(folder, name, knn, probe, masks=None, finished=True, val=None):
    """A fake SSL run: two epoch lines, optional mask-comparison records, then the final record
    (with ``val_knn_top1`` / ``val_probe_top1`` = ``val``)."""
    with open(os.path.join(folder, name + ".jsonl"), "w") as f:
        for e in (1, 2):
            f.write(json.dumps({"epoch": e, "loss": 1.0 / e, "seconds": 30.0 + e}) + "\n")
        for mask, loss in (masks or {}).items():
            f.write(json.dumps({"mask_comparison": True, "mask": mask, "loss_mb": loss, "own_share": 0.5}) + "\n")
        if finished:
            final = {"final": True, "knn_top1": knn, "probe_top1": probe}
            if val is not None:
                final.update(val_knn_top1=val[0], val_probe_top1=val[1])
            f.write(json.dumps(final) + "\n")


def test_ssl_table_method_tokens():
    import ssl_table
    assert ssl_table.parse_method("samix-c") == ("samix-c", [])
    assert ssl_table.parse_method("samix-c:kmeans-warm-start:clusters=50") == \
        ("samix-c", ["--kmeans-warm-start", "--clusters", "50"])
    assert ssl_table.file_stem("samix-c:kmeans-warm-start:clusters=50") == "samix-c_kmeans-warm-start_clusters50"
    with pytest.raises(SystemExit):
        ssl_table.parse_method("samix-c:clusters=")


def test_ssl_table_passes_the_validation_split(monkeypatch):
    import ssl_table
    seen = []
    monkeypatch.setattr(ssl_table, "stream_run", lambda cmd, path, label, checkpoint=None: seen.append(cmd))
    a = ssl_table.argparse.Namespace(samix_bench="sb", data="/d", model="resnet20", epochs=150, batch=128, queue=4096,
                                     knn_every=10, probe_epochs=100, train_subset=10000, threads=1, compare_masks=0,
                                     val_split=5000)
    token = "samix-c:cluster-features=key:cluster-pca-dim=0:detach-cluster-head-mixed"
    ssl_table.run_one(a, token, 1, "/r/x-seed1.jsonl")
    s = " ".join(seen[0])
    assert "--val-split 5000" in s and "--seed 1" in s and "--epochs 150" in s
    assert "--cluster-features key --cluster-pca-dim 0 --detach-cluster-head-mixed" in s


def test_ssl_table_means_and_mask_comparison(tmp_path):
    write_ssl_run(tmp_path, "moco-seed0", 40.0, 50.0, val=(44.0, 54.0))
    write_ssl_run(tmp_path, "moco-seed1", 42.0, 52.0, val=(46.0, 56.0))
    write_ssl_run(tmp_path, "samix-i-seed0", 30.0, 45.0, masks={"mixer": 4.0, "mixup": 5.0})
    write_ssl_run(tmp_path, "samix-i-seed1", 32.0, 47.0)
    with open(tmp_path / "samix-i-seed1.masks.jsonl", "w") as f:   # a comparison run after the fact
        for mask, loss in {"mixer": 4.5, "mixup": 5.5}.items():
            f.write(json.dumps({"mask_comparison": True, "mask": mask, "loss_mb": loss}) + "\n")
    write_ssl_run(tmp_path, "samix-c-seed0", 1.0, 1.0, masks={"mixer": 9.0}, finished=False)
    out = subprocess.run([sys.executable, os.path.join(BENCH, "ssl_table.py"), "--results", str(tmp_path),
                          "--methods", "moco,samix-i,samix-c", "--seeds", "0,1"],
                         check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    rows = {l.split()[0]: l.split() for l in lines[2:5]}
    assert rows["moco"][1:7] == ["2", "41.00", "51.00", "31.5", "45.00", "55.00"]
    assert rows["samix-i"][1:7] == ["2", "31.00", "46.00", "31.5", "-", "-"]
    assert "(no finished run)" in lines[4]
    masks = {(l.split()[0], l.split()[1]): l.split() for l in lines if l.startswith("samix")}
    assert masks[("samix-i", "mixer")][2:4] == ["2", "4.250"]
    assert masks[("samix-i", "mixup")][2:4] == ["2", "5.250"]
    assert masks[("samix-i", "mixup")][4] == "–"                  # no local term recorded
    assert ("samix-c", "mixer") not in masks                      # unfinished runs are left out


def test_stream_run_renames_only_on_success(tmp_path):
    path = str(tmp_path / "run.jsonl")
    lines = 'import json\nfor e in (1, 2): print(json.dumps({"epoch": e}))'
    run_log.stream_run([sys.executable, "-c", lines], path, "ok")
    assert [r["epoch"] for r in run_log.load(path)] == [1, 2] and not os.path.exists(path + ".partial")
    bad = str(tmp_path / "bad.jsonl")
    with pytest.raises(SystemExit, match="failed"):
        run_log.stream_run([sys.executable, "-c", 'print("{\\"epoch\\": 1}"); raise SystemExit(3)'], bad, "bad")
    assert not os.path.exists(bad) and run_log.load(bad + ".partial") == [{"epoch": 1}]


def fake_checkpoint(path, epochs_done):
    header = json.dumps({"__metadata__": {"epochs_done": str(epochs_done)}}).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)


def test_stream_run_resumes_after_the_checkpointed_epoch(tmp_path):
    path, ckpt = str(tmp_path / "run.jsonl"), str(tmp_path / "run.jsonl.ckpt")
    with open(path + ".partial", "w") as f:      # epochs 1-3 printed, only 1-2 checkpointed
        for e in (1, 2, 3):
            f.write(json.dumps({"epoch": e, "old": True}) + "\n")
    fake_checkpoint(ckpt, 2)
    assert run_log.checkpoint_epochs(ckpt) == 2
    lines = 'import json\nfor e in (3, 4): print(json.dumps({"epoch": e}))'
    run_log.stream_run([sys.executable, "-c", lines], path, "resume", checkpoint=ckpt)
    rows = run_log.load(path)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and [r.get("old") for r in rows] == [True, True, None, None]
    assert not os.path.exists(ckpt)               # a finished run drops its checkpoint
    # a log that does not match its checkpoint starts over (and the stale checkpoint is removed)
    path2, ckpt2 = str(tmp_path / "b.jsonl"), str(tmp_path / "b.jsonl.ckpt")
    with open(path2 + ".partial", "w") as f:
        f.write(json.dumps({"epoch": 1}) + "\n")
    fake_checkpoint(ckpt2, 3)
    run_log.stream_run([sys.executable, "-c", lines], path2, "mismatch", checkpoint=ckpt2)
    assert [r["epoch"] for r in run_log.load(path2)] == [3, 4]


def test_plot_runs_curves_average_seeds(tmp_path):
    write_run(tmp_path, "mixup-seed0", [10, 20], seconds=1)
    write_run(tmp_path, "mixup-seed1", [30, 40], seconds=1)
    write_run(tmp_path, "samix-seed0", [5, 6], momentum=[7, 8])
    c = plot_runs.curves(str(tmp_path))
    assert dict(c["mixup"]["test_top1"]) == {1: [10, 30], 2: [20, 40]}
    assert dict(c["samix"]["test_top1_momentum"]) == {1: [7], 2: [8]}
    assert "test_top1_momentum" not in c["mixup"]
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    subprocess.run([sys.executable, os.path.join(BENCH, "plot_runs.py"), str(tmp_path), "--out", str(out)], check=True,
                   capture_output=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
