"""The grader's machinery without a kernel: a check run in the grader on a function served from another thread
gives the verdict the check gives in place (the student's exceptions, in-place changes, generators and gradients
cross), what crosses is data only, and ``nbrun.kill_run`` finds a child of its own session and an orphan.
The grader itself, through papermill, is tested in tests/test_exercises.py."""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from inpaint_utils import checks, nbrun
from inpaint_utils.checks import remote


def _served(check, fn, allowed=None):
    """``(verdict in place, verdict through the socket)``; the serving side runs in a thread."""
    ours, theirs = socket.socketpair()
    thread = threading.Thread(target=remote.serve_on, args=(theirs, check.__name__[len("check_"):], lambda: fn))
    local = check(fn)
    thread.start()
    graded = remote.grade_connection(ours, allowed or [check.__name__[len("check_"):]])
    thread.join(timeout=60)
    ours.close()
    theirs.close()
    return local, graded


def l2_right(pred, target, mask):
    mask = mask.expand(pred.shape[0], 1, *pred.shape[-2:])
    return (mask * (pred - target) ** 2).sum() / (mask.sum() * pred.shape[1])


def l2_mean(pred, target, mask):                    # averaged over every pixel: a wrong answer
    return (mask * (pred - target) ** 2).mean()


def l2_in_place(pred, target, mask):                # right value, but changes its input
    pred.sub_(target)
    mask = mask.expand(pred.shape[0], 1, *pred.shape[-2:])
    return (mask * pred ** 2).sum() / (mask.sum() * pred.shape[1])


def l2_detached(pred, target, mask):                # right value, no gradient
    return l2_right(pred, target, mask).detach()


def l2_raises(pred, target, mask):
    raise ValueError("shapes do not match")


def square_global_rng(size, ratio, generator):      # ignores the generator: not reproducible
    side = round((ratio * size * size) ** 0.5)
    top, left = torch.randint(0, size - side + 1, (2,)).tolist()
    mask = torch.zeros(1, 1, size, size)
    mask[..., top:top + side, left:left + side] = 1.0
    return mask


def square_right(size, ratio, generator):
    side = round((ratio * size * size) ** 0.5)
    top, left = torch.randint(0, size - side + 1, (2,), generator=generator).tolist()
    mask = torch.zeros(1, 1, size, size)
    mask[..., top:top + side, left:left + side] = 1.0
    return mask


@pytest.mark.parametrize("check, fn", [
    (checks.check_masked_l2, l2_right), (checks.check_masked_l2, l2_mean), (checks.check_masked_l2, l2_in_place),
    (checks.check_masked_l2, l2_detached), (checks.check_masked_l2, l2_raises),
    (checks.check_mask_generator, square_right), (checks.check_mask_generator, square_global_rng),
    (checks.check_masked_l2, None),
], ids=["right", "mean", "in_place", "detached", "raises", "generator", "global_rng", "not_a_function"])
def test_a_served_function_gets_the_verdict_it_gets_in_place(check, fn, capsys):
    local, graded = _served(check, fn)
    assert graded is not None
    name, result, report = graded
    assert name == check.__name__[len("check_"):]
    assert (result.passed, result.score, result.messages) == (local.passed, local.score, local.messages)
    assert result.report() in report
    # the kernel is told the verdict (its print may land in the grader's capture: one process here)
    assert f"[grader] {result.line()}" in capsys.readouterr().out + report


def test_the_verdicts_differ_where_they_should():
    """The cases above are not all alike: the wrong ones fail with the message that names the mistake."""
    for fn, message in ((l2_in_place, "changed its input `pred` in place"), (l2_detached, "gradient"),
                        (l2_raises, "raised ValueError: shapes do not match")):
        _, (_, result, _) = _served(checks.check_masked_l2, fn)
        assert not result.passed and any(message in m for m in result.failures), (fn.__name__, result.failures)
    assert _served(checks.check_masked_l2, l2_right)[1][1].passed


def test_a_check_not_handed_out_is_not_graded(capsys):
    _, graded = _served(checks.check_psnr, l2_right, allowed=["masked_l2"])
    assert graded is None and "is not graded in this notebook" in capsys.readouterr().out


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/inpaint-grader-pwned",))


def test_what_crosses_is_data_only(tmp_path):
    assert remote.unpack(remote.pack({"a": [1, 2.5, None, "s", (1, 2)], "t": torch.ones(2)}))["a"][4] == (1, 2)
    with pytest.raises(remote.RemoteError, match="unreadable message"):
        remote.unpack(pickle.dumps(_Payload()))
    assert not Path("/tmp/inpaint-grader-pwned").exists()


def test_a_kernel_that_stops_answering_gives_no_verdict():
    ours, theirs = socket.socketpair()

    def kernel():                                   # greets, then dies in the middle of the check
        remote._send(theirs, {"op": "hello", "check": "masked_l2", "function": "f", "callable": True})
        remote._recv(theirs)
        theirs.close()

    thread = threading.Thread(target=kernel)
    thread.start()
    assert remote.grade_connection(ours, ["masked_l2"]) is None
    thread.join(timeout=60)
    ours.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="kill_run walks /proc (Linux)")
def test_kill_run_finds_a_new_session_child_and_an_orphan(tmp_path):
    marker = f"test-{os.getpid()}-{time.monotonic_ns()}"
    script = ("import subprocess, sys, time\n"
              "child = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"   # out of the process group
              "orphan = subprocess.Popen([sys.executable, '-c', 'import subprocess, time; "
              "p = subprocess.Popen([\"sleep\", \"1000\"], start_new_session=True); print(p.pid, flush=True)'],"
              " stdout=subprocess.PIPE, text=True)\n"                                    # its parent exits at once
              "print(child.pid, orphan.stdout.readline().strip(), flush=True)\n"
              "time.sleep(1000)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, nbrun.RUN_ENV: marker})
    try:
        child, orphan = (int(x) for x in proc.stdout.readline().split())
        assert _alive(child) and _alive(orphan)
        killed = nbrun.kill_run(proc.pid, marker)
        assert {proc.pid, child, orphan} <= set(killed)
        proc.wait(timeout=30)
        for _ in range(50):
            if not (_alive(child) or _alive(orphan)):
                break
            time.sleep(0.1)
        assert not _alive(child) and not _alive(orphan)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
