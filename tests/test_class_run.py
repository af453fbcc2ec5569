"""benchmarks/class_run.py (#20): the synthetic class is deterministic, has the promised
mix and the layout ``grade`` reads. Nothing is graded here (that is the benchmark's job)."""
import csv
import importlib.util
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _class_run():
    spec = importlib.util.spec_from_file_location("class_run", REPO / "benchmarks" / "class_run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_counts_round_by_largest_remainder():
    cr = _class_run()
    assert cr._counts(40) == {"reference": 20, "blank": 8, "corpus": 12}
    assert cr._counts(10) == {"reference": 5, "blank": 2, "corpus": 3}
    assert cr._counts(4) == {"reference": 2, "blank": 1, "corpus": 1}
    for n in range(0, 50):
        assert sum(cr._counts(n).values()) == n


def test_another_mix_gives_the_demos_class():
    """--students 2 --mix 0.5 0.5 0: one reference and one blank release per assignment."""
    cr = _class_run()
    mix = (("reference", 0.5), ("blank", 0.5), ("corpus", 0.0))
    plan = cr.plan_class(2, ["conv_1x1", "gans"], mix=mix)
    for name in ("conv_1x1", "gans"):
        assert sorted(k for _, a, k, _ in plan if a == name) == ["blank", "reference"]


def test_class_is_deterministic_mixed_and_laid_out_for_grade(tmp_path):
    cr = _class_run()
    names = ["conv_1x1", "gans"]          # gans: a corpus folder with SKIP_GRADING, still usable
    plan = cr.build_class(tmp_path / "a" / "submissions", 10, names, seed=3)
    assert plan == cr.plan_class(10, names, seed=3)      # what was written is the plan, every time
    assert plan != cr.plan_class(10, names, seed=4)
    for name in names:
        kinds = Counter(k for _, a, k, _ in plan if a == name)
        assert kinds == {"reference": 5, "blank": 2, "corpus": 3}, (name, kinds)
        cases = [c for _, a, k, c in plan if a == name and k == "corpus"]
        assert len(set(cases)) == 3, cases                # round-robin: distinct while cases last
        assert all((REPO / "tests" / "students" / name / f"{c}.py").exists() for c in cases)
    subs = tmp_path / "a" / "submissions"
    assert sorted(p.name for p in subs.iterdir()) == [f"student{i:03d}" for i in range(10)]
    for student, name, kind, case in plan:
        files = list((subs / student / name).iterdir())
        assert [f.name for f in files] == [f"{name}.ipynb"]
        data = files[0].read_bytes()
        if kind == "reference":
            assert data == (REPO / "solutions" / name / f"{name}.ipynb").read_bytes()
        elif kind == "blank":
            assert data == (REPO / "notebooks" / name / f"{name}.ipynb").read_bytes()
        else:
            assert f"student corpus case {case}".encode() in data
    with open(tmp_path / "a" / "class.csv") as f:
        rows = [tuple(r.values()) for r in csv.DictReader(f)]
    assert rows == [tuple(r) for r in plan]
