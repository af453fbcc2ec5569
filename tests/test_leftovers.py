"""Folders left by killed grading processes are swept (helpers/grading/leftovers.py), and
a judge kernel keeps its temporary files in its own folder."""
import json
import os
import subprocess
import time

import pytest

from helpers.grading import leftovers


def _dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _folder(where, name, age):
    d = where / name
    (d / "inner").mkdir(parents=True)
    (d / "inner" / "f").write_text("x")
    t = time.time() - age
    os.utime(d, (t, t))
    return d


def test_sweep_removes_only_old_folders_of_dead_graders(tmp_path):
    dead, alive, old, young = _dead_pid(), os.getppid(), leftovers.MAX_AGE + 60, 60
    gone = [_folder(tmp_path, f"course-{kind}-{dead}-abc", old) for kind in leftovers.KINDS]
    kept = [_folder(tmp_path, f"course-job-{alive}-abc", old),              # its grader is alive
            _folder(tmp_path, f"course-judge-{dead}-young", young),         # a job may still run
            _folder(tmp_path, f"course-job-{os.getpid()}-mine", old),       # this process's own
            _folder(tmp_path, f"course-other-{dead}-abc", old),             # not ours
            _folder(tmp_path, "course-job-abc", old)]                       # no pid: an old name
    (tmp_path / f"course-job-{dead}-link").symlink_to(kept[0])
    assert leftovers.sweep(tmp_path) == 3
    assert not any(d.exists() for d in gone)
    assert all(d.exists() for d in kept) and (kept[0] / "inner" / "f").exists()


def test_prefix_names_this_process():
    assert leftovers.prefix("judge") == f"course-judge-{os.getpid()}-"
    with pytest.raises(AssertionError):
        leftovers.prefix("other")


@pytest.mark.parametrize("fork", ["1", "0"])
def test_a_judge_keeps_its_temporary_files_in_its_own_folder(tmp_path, monkeypatch, fork):
    """TensorFlow's autograph writes a file per converted function into the temporary folder
    and removes it at exit, which a killed kernel never reaches: the judge's folder holds them
    (forked from the zygote or started as a new process)."""
    from helpers.grading import batch, judge_zygote
    from test_judge import _judged_course
    monkeypatch.setenv(judge_zygote.ENABLE_ENV, fork)
    _judged_course(tmp_path, "import os, tempfile\n"
                             "here = os.path.realpath(tempfile.gettempdir())\n"
                             "assert here == os.path.realpath(os.environ['HOME']), here\n"
                             f"assert os.path.basename(here).startswith('course-judge-{os.getpid()}-'), here\n"
                             "assert f(3) == 3")
    batch.grade(tmp_path / "sub", work=tmp_path / "work", solutions=tmp_path / "solutions",
                feedback=False, workers=1, log=lambda *a, **k: None)
    result = json.loads((tmp_path / "work" / "results" / "amy" / "loop.json").read_text())
    assert (result["score"], result["max_score"], result["reason"]) == (2.0, 2.0, ""), result
