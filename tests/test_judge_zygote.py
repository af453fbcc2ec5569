"""Judge kernels forked from a zygote that has imported TensorFlow (helpers/grading/judge_zygote.py):
each is a fresh process with its own environment, and the judge can interrupt, restart and
kill it as it does a kernel it started itself."""
import os
import shutil
import tempfile
import time
import uuid

import pytest
from jupyter_client.connect import write_connection_file

from helpers.grading import judge_zygote, sandbox


@pytest.fixture(scope="module")
def zygote():
    env = sandbox.kernel_env(1, sandbox=False)
    z = judge_zygote.Zygote.get(env)
    yield z, env
    judge_zygote.Zygote.close_all()
    assert z.proc.poll() is not None, "the zygote outlived close_all()"


def _kernel(zygote, mark):
    z, env = zygote
    d = tempfile.mkdtemp(prefix="zk-", dir="/tmp")          # short: Unix socket paths live here
    cf = os.path.join(d, "k.json")
    write_connection_file(cf, transport="ipc", ip=os.path.join(d, "k"), key=uuid.uuid4().hex.encode())
    env = dict(env, COURSE_JUDGE_DRAWS=mark, HOME=d, MPLCONFIGDIR=d)
    km = z.start(env, d, cf)
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc, d


def _run(kc, code, timeout=30):
    out = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: out.append(
        m["content"].get("text", "") if m["msg_type"] == "stream" else m["content"].get("ename", "")))
    return reply["content"]["status"], "".join(out).strip()


def test_each_judge_is_a_fresh_process_with_its_own_environment(zygote):
    (km1, kc1, d1), (km2, kc2, d2) = _kernel(zygote, "one"), _kernel(zygote, "two")
    try:
        probe = ("import os, sys, helpers.grading.bridge as b\n"
                 "print(os.environ['COURSE_JUDGE_DRAWS'], os.getcwd(), 'tensorflow' in sys.modules,"
                 " hasattr(b, '_left_by_another'))\n"
                 "b._left_by_another = True")
        assert _run(kc1, probe) == ("ok", f"one {d1} True False")
        assert _run(kc2, probe) == ("ok", f"two {d2} True False"), "a judge saw another judge's state"
        assert km1.pid != km2.pid and km1.pid != zygote[0].proc.pid
    finally:
        for km, kc, d in ((km1, kc1, d1), (km2, kc2, d2)):
            kc.stop_channels()
            km.shutdown_kernel()
            shutil.rmtree(d, ignore_errors=True)


def test_interrupt_restart_and_kill_reach_the_forked_kernel_and_its_children(zygote):
    km, kc, d = _kernel(zygote, "x")
    try:
        msg_id = kc.execute("import time; time.sleep(60)")
        time.sleep(1)
        t = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - t < 10
        old = km.pid
        km.restart_kernel()
        kc.wait_for_ready(timeout=60)
        assert km.pid != old and not judge_zygote.ForkedKernel(None, {}, d, "", old, 0).is_alive()
        status, out = _run(kc, "import subprocess; p = subprocess.Popen(['sleep', '120']); print(p.pid)")
        child = int(out)
        km.shutdown_kernel()
        assert not km.is_alive() and not km.has_kernel
        end = time.monotonic() + 5
        while judge_zygote._start_time(child) is not None and time.monotonic() < end:
            time.sleep(0.05)
        assert judge_zygote._start_time(child) is None, "the kernel's own child process survived"
        km.kill()                                   # gone: no signal is sent to a reused pid
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
        shutil.rmtree(d, ignore_errors=True)


def test_grading_forks_its_judges_from_the_zygote(tmp_path):
    """A graded run's judge is a child of this process's zygote, and grades as before."""
    import json

    from helpers.grading import batch
    from test_judge import _judged_course
    _judged_course(tmp_path, "import os\n"
                             "assert open(f'/proc/{os.getppid()}/cmdline', 'rb').read().rstrip(b'\\x00')"
                             ".endswith(b'helpers.grading.judge_zygote'), 'not forked'\n"
                             "assert f(3) == 3")
    batch.grade(tmp_path / "sub", work=tmp_path / "work", solutions=tmp_path / "solutions",
                feedback=False, workers=1, log=lambda *a, **k: None)
    result = json.loads((tmp_path / "work" / "results" / "amy" / "loop.json").read_text())
    assert (result["score"], result["max_score"], result["reason"]) == (2.0, 2.0, ""), result


def test_without_a_zygote_the_judge_starts_as_a_new_process(tmp_path, monkeypatch):
    """A zygote that cannot start (here: it exits at once) costs nothing but the speed: the
    judge starts the usual way, the run grades as before, and no new zygote is tried per
    submission."""
    import json

    from helpers.grading import batch
    from test_judge import _judged_course
    judge_zygote.Zygote.close_all()
    monkeypatch.setattr(judge_zygote.Zygote, "command", ("false",))
    _judged_course(tmp_path, "assert f(3) == 3")
    batch.grade(tmp_path / "sub", work=tmp_path / "work", solutions=tmp_path / "solutions",
                feedback=False, workers=1, log=lambda *a, **k: None)
    result = json.loads((tmp_path / "work" / "results" / "amy" / "loop.json").read_text())
    assert (result["score"], result["max_score"], result["reason"]) == (2.0, 2.0, ""), result
    [zygote] = judge_zygote.Zygote._live.values()
    assert zygote.broken
    with pytest.raises(judge_zygote.ZygoteError, match="failed earlier"):     # the grader's threads: cores / workers
        judge_zygote.Zygote.get(sandbox.kernel_env(os.cpu_count() or 1, sandbox=False))
    judge_zygote.Zygote.close_all()


def _wait_gone(pid, start, seconds=10):
    end = time.monotonic() + seconds
    while judge_zygote._start_time(pid) == start and time.monotonic() < end:
        time.sleep(0.05)
    return judge_zygote._start_time(pid) != start


@pytest.mark.parametrize("how", ["stdin closed", "SIGKILL"])
def test_judges_end_with_the_grading_process(how):
    """However the grading process ends (its pipe to the zygote closes; the zygote is killed),
    no judge it forked outlives it. A kill sent at once after the fork reaches the kernel too."""
    import signal
    env = sandbox.kernel_env(2, sandbox=False)
    z = judge_zygote.Zygote(env)
    d = tempfile.mkdtemp(prefix="zk-", dir="/tmp")
    try:
        cf = os.path.join(d, "k.json")
        write_connection_file(cf, transport="ipc", ip=os.path.join(d, "k"), key=uuid.uuid4().hex.encode())
        early = z.start(dict(env, HOME=d, MPLCONFIGDIR=d), d, cf)
        early.shutdown_kernel()                          # killed before its kernel has booted
        assert _wait_gone(early.pid, early.start, 1)
        km = z.start(dict(env, HOME=d, MPLCONFIGDIR=d), d, cf)
        kc = km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        status, out = _run(kc, "from threadpoolctl import threadpool_info\n"
                               "print(max(i['num_threads'] for i in threadpool_info()))")
        assert (status, out) == ("ok", "2"), "the judge runs the BLAS threads its job asks for"
        kc.stop_channels()
        if how == "SIGKILL":
            os.kill(z.proc.pid, signal.SIGKILL)
        else:
            z.proc.stdin.close()
        z.proc.wait(timeout=10)
        assert _wait_gone(km.pid, km.start, 15), f"the judge outlived its zygote ({how})"
    finally:
        z.close()
        shutil.rmtree(d, ignore_errors=True)
