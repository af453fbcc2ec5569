"""Deadlines and late work: the course file, a submission's time, the penalty (#21).

The instructor edits one TOML file (``--course-file``, else ``DIR/course.toml``; README
"Deadlines and late work" has an example): ``[course] timezone``, ``[defaults]`` and
``[assignments.<name>]`` (``due``, ``policy`` one of :data:`KINDS`, ``percent`` of the raw
score per started day or hour, ``cap`` percent in all, ``cutoff_hours`` after which late
work scores 0), and ``[extensions.<student>]`` (``<assignment> = new due date`` or a number
of days more). :func:`read_course_file` reports every problem with its file and key.

A submission's time comes from, in this order: ``timestamp.txt`` beside the notebook
(nbgrader's exchange writes it; naive times are UTC, as nbgrader reads them), the LMS's
late mark in ``DIR/lms-intake.json`` (a mark without a time), else the notebook file's
modification time. The penalty is always computed from the raw autograded score
(:func:`compute_penalty`, a pure function), so grading again never charges it twice and
drops a penalty that a new due date or extension no longer justifies.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .reports import note_feedback

COURSE_FILE = "course.toml"
KINDS = ("none", "per_day", "per_hour", "cutoff")
_PERIOD = {"per_day": ("day", 86400), "per_hour": ("hour", 3600)}
_POLICY_KEYS = {"policy", "percent", "cap", "cutoff_hours"}
UTC = dt.timezone.utc
_NO_TIME = "no submission time"     # a reason for the instructor only, not the student's feedback


class CourseFileError(ValueError):
    """The course file is wrong; the message lists every problem with its file and key."""


@dataclass(frozen=True)
class Policy:
    """How late work loses points: ``kind`` (one of :data:`KINDS`), ``percent`` of the raw
    score per started period, at most ``cap`` percent, and 0 points once more than
    ``cutoff_hours`` late (None: no cut-off)."""
    kind: str = "none"
    percent: float = 0.0
    cap: float = 100.0
    cutoff_hours: float | None = None


@dataclass(frozen=True)
class Deadline:
    due: dt.datetime
    policy: Policy


@dataclass(frozen=True)
class Course:
    """A read course file: ``deadlines`` {assignment: Deadline}, ``extensions``
    {(student, assignment): new due datetime}, ``tz`` for display."""
    path: Path
    deadlines: dict
    extensions: dict
    tz: dt.tzinfo = UTC


@dataclass(frozen=True)
class Submitted:
    """When a submission was made: ``at`` (aware datetime, or None when unknown), ``source``
    (``timestamp.txt``, ``lms``, ``mtime`` or ""), ``lms_late`` (the LMS's mark, if any) and
    ``note`` (why a source was passed over)."""
    at: dt.datetime | None = None
    source: str = ""
    lms_late: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class Penalty:
    points: float = 0.0
    reason: str = ""


# --------------------------------------------------------------------------- course file


def find_course_file(submissions, given=None):
    """The course file to use: ``given`` (must exist), else ``submissions/course.toml``, else None."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"no course file at {path}")
        return path
    path = Path(submissions) / COURSE_FILE
    return path if path.is_file() else None


def _when(value, tz, where, problems):
    """A TOML date-time, date (its end) or string -> aware datetime; else a problem and None."""
    if isinstance(value, str):
        try:
            text = value.strip()
            value = (dt.date if len(text) == 10 else dt.datetime).fromisoformat(text)
        except ValueError:
            problems.append(f"{where}: {value!r} is not a date (use 2026-12-01T23:59:00 or "
                            "\"2026-12-01 23:59\")")
            return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(23, 59, 59))
    if not isinstance(value, dt.datetime):
        problems.append(f"{where}: {value!r} is not a date")
        return None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _number(table, key, where, problems, low=0.0, high=None):
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        problems.append(f"{where}.{key}: {value!r} is not a number")
    elif value < low or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        problems.append(f"{where}.{key}: {value!r} is out of range; give a number {span}")
    else:
        return float(value)
    return None


def _policy(own, defaults, where, problems):
    """The Policy of a table ``own`` over ``defaults``; a problem names the table it is in."""
    table = {**defaults, **own}
    at = {key: where if key in own else "[defaults]" for key in table}
    kind = table.get("policy", "none")
    if kind not in KINDS:
        problems.append(f"{at['policy']}.policy: {kind!r} is not one of {', '.join(KINDS)}")
        kind = "none"
    percent = _number(table, "percent", at.get("percent"), problems, high=100.0)
    if kind in _PERIOD and "percent" not in table:
        problems.append(f"{where}: policy {kind!r} needs percent (of the raw score per {_PERIOD[kind][0]})")
    cap = _number(table, "cap", at.get("cap"), problems, high=100.0)
    cutoff = _number(table, "cutoff_hours", at.get("cutoff_hours"), problems)
    return Policy(kind, percent or 0.0, 100.0 if cap is None else cap,
                  0.0 if cutoff is None and kind == "cutoff" else cutoff)


def _table(data, key, where, problems):
    """``data[key]`` when it is a table (a missing one is empty), else a problem and {}."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a table, not {value!r}")
        return {}
    return value


def _extension(value, due, tz, where, problems):
    """A new due date: a date, or a number of days after ``due``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _when(value, tz, where, problems)
    if value >= 0:
        return due + dt.timedelta(days=value)
    problems.append(f"{where}: {value!r} days is negative")


def read_course_file(path, assignments=None):
    """Read and check a course file; raise :class:`CourseFileError` listing every problem.

    assignments: the course's assignment names; a deadline or an extension for any other
    name is an error (a typo would otherwise charge nobody).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CourseFileError(f"{path}: cannot be read as TOML: {exc}") from None
    problems = [f"[{key}]: unknown table (course, defaults, assignments, extensions)"
                for key in sorted(set(data) - {"course", "defaults", "assignments", "extensions"})]
    zone, tz = _table(data, "course", "[course]", problems).get("timezone", "UTC"), UTC
    try:
        from zoneinfo import ZoneInfo
        tz = ZoneInfo(str(zone)) if zone != "UTC" else UTC
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError
        problems.append(f"[course].timezone: {zone!r} is not a known time zone (e.g. \"UTC\", \"Europe/Berlin\")")
    defaults = _table(data, "defaults", "[defaults]", problems)
    problems += [f"[defaults].{key}: unknown key ({', '.join(sorted(_POLICY_KEYS))})"
                 for key in sorted(set(defaults) - _POLICY_KEYS)]
    _policy({}, defaults, "[defaults]", problems)
    known = set(assignments) if assignments is not None else None
    deadlines = {}
    for name, table in _table(data, "assignments", "[assignments]", problems).items():
        where = f"[assignments.{name}]"
        if known is not None and name not in known:
            problems.append(f"{where}: unknown assignment {name!r} (known: {', '.join(sorted(known))})")
            continue
        table = _table({name: table}, name, where, problems)
        problems += [f"{where}.{key}: unknown key (due, {', '.join(sorted(_POLICY_KEYS))})"
                     for key in sorted(set(table) - _POLICY_KEYS - {"due"})]
        if "due" not in table:
            problems.append(f"{where}: no due date (due = 2026-12-01T23:59:00)")
            continue
        due = _when(table["due"], tz, f"{where}.due", problems)
        policy = _policy(table, defaults, where, problems)
        if due is not None:
            deadlines[name] = Deadline(due, policy)
    extensions = {}
    for student, table in _table(data, "extensions", "[extensions]", problems).items():
        for name, value in _table({student: table}, student, f"[extensions.{student}]", problems).items():
            where = f"[extensions.{student}].{name}"
            if name not in deadlines:
                why = "unknown assignment" if known is not None and name not in known else "no due date for"
                problems.append(f"{where}: {why} {name!r} to extend")
                continue
            when = _extension(value, deadlines[name].due, tz, where, problems)
            if when is not None:
                extensions[(student, name)] = when
    if problems:
        raise CourseFileError(f"{path}: " + "; ".join(dict.fromkeys(problems)))
    return Course(path, deadlines, extensions, tz)


# --------------------------------------------------------------------------- submission time


def parse_timestamp(text):
    """nbgrader's ``timestamp.txt`` (``2026-12-01 13:45:10.123456 UTC``, or ISO with an
    offset) -> aware datetime; a time without a zone is UTC, as nbgrader reads it."""
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    text = re.sub(r"\s*(UTC|GMT|Z)$", "+00:00", text)
    when = dt.datetime.fromisoformat(text)    # ValueError names the text
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _regular(path):
    """os.lstat of a regular file (never through a link), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def read_lms_record(submissions):
    """``DIR/lms-intake.json`` as a dict ({} when there is none or it cannot be read)."""
    try:
        record = json.loads((Path(submissions) / "lms-intake.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    record = record if isinstance(record, dict) else {}
    return {key: {s: v for s, v in record[key].items() if isinstance(v, dict)}
            for key in ("late", "files") if isinstance(record.get(key), dict)}


def submission_time(folder, assignment, student="", lms=None):
    """When ``folder`` (``DIR/<student>/<assignment>/``) was submitted: a :class:`Submitted`.

    In order: its ``timestamp.txt``, the LMS's late mark (``lms``: the lms-intake record),
    the notebook's modification time. A file unpacked by ``lms-intake`` has the time it was
    unpacked, not submitted, so its mtime is never used.
    """
    folder, notes, lms = Path(folder), [], lms or {}
    if _regular(ts := folder / "timestamp.txt"):
        try:
            with open(ts, "rb") as f:
                return Submitted(parse_timestamp(f.read(200).decode("utf-8")), "timestamp.txt")
        except (OSError, ValueError) as exc:
            notes.append(f"timestamp.txt not read ({exc})")
    mark = (lms.get("late", {}).get(student) or {}).get(assignment)
    from_lms = assignment in (lms.get("files", {}).get(student) or {})
    if isinstance(mark, bool):
        return Submitted(None, "lms", mark, "; ".join(notes))
    if from_lms:
        notes.append("the LMS's zip gives no submission time")
        return Submitted(None, "", None, "; ".join(notes))
    nbs = [folder / f"{assignment}.ipynb"] if _regular(folder / f"{assignment}.ipynb") else \
        sorted(folder.glob("*.ipynb"))
    times = [st.st_mtime for st in map(_regular, nbs) if st]
    if times:
        return Submitted(dt.datetime.fromtimestamp(max(times), UTC), "mtime", None, "; ".join(notes))
    return Submitted(None, "", None, "; ".join(notes + ["no notebook time"]))


# --------------------------------------------------------------------------- the penalty


def _fmt(when, tz):
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _span(delta):
    """A positive timedelta as ``2 days 3 h 5 min`` (minutes rounded up)."""
    minutes = math.ceil(delta.total_seconds() / 60)
    days, rest = divmod(minutes, 1440)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{rest // 60} h"] if rest // 60 else []
    parts += [f"{rest % 60} min"] if rest % 60 or not parts else []
    return " ".join(parts)


def _unknown_time(raw, deadline, extension, submitted, policy, tz):
    """The penalty when no time is known: at most the LMS's late mark (by its own due date)."""
    if submitted.source != "lms":
        return Penalty(0.0, f"{_NO_TIME} ({submitted.note or 'no source'}): not checked against the due date")
    if not submitted.lms_late:
        return Penalty(0.0, "")
    said = "the LMS marks it late (by the LMS's due date) but gives no time"
    if extension is not None:
        return Penalty(0.0, f"{said}; not penalised, as it has an extension to {_fmt(deadline, tz)}")
    if policy.cutoff_hours == 0:
        return Penalty(raw, f"{said}; late work scores 0 (-{raw:g} points)")
    unsure = "" if policy.cutoff_hours is None else \
        f"; whether it was more than {policy.cutoff_hours:g} h late (the cut-off) cannot be told"
    if policy.kind in _PERIOD:
        unit = _PERIOD[policy.kind][0]
        pct = min(policy.percent, policy.cap)
        points = round(raw * pct / 100, 2)
        return Penalty(points, f"{said}: charged as 1 {unit} late, the least: {pct:g}% of "
                               f"{raw:g} points = -{points:g}{unsure}")
    return Penalty(0.0, f"{said}: not penalised{unsure}")


def compute_penalty(raw, due, extension, submitted, policy, tz=UTC):
    """The late penalty of one submission (a pure function of its arguments).

    raw: the raw autograded score (never an already penalised one).
    due: the assignment's due datetime; extension: the student's new due datetime or None.
    submitted: a :class:`Submitted`; policy: a :class:`Policy`; tz: for the reason's times.
    Returns a :class:`Penalty`: points to deduct (0 <= points <= raw) and a reason that
    says how much and why ("" when on time).
    """
    deadline = extension or due
    if submitted.at is None:
        return _unknown_time(raw, deadline, extension, submitted, policy, tz)
    late = submitted.at - deadline
    if late <= dt.timedelta(0):
        return Penalty(0.0, "")
    ext = f" (extended from {_fmt(due, tz)})" if extension is not None else ""
    where = (f"submitted {_fmt(submitted.at, tz)} ({submitted.source}), {_span(late)} after "
             f"the due date {_fmt(deadline, tz)}{ext}")
    if policy.cutoff_hours is not None and late > dt.timedelta(hours=policy.cutoff_hours):
        cut = "late work" if policy.cutoff_hours == 0 else \
            f"work more than {policy.cutoff_hours:g} h late (the cut-off)"
        return Penalty(raw, f"{where}: {cut} scores 0 (-{raw:g} points)")
    if policy.kind in _PERIOD:
        unit, seconds = _PERIOD[policy.kind]
        periods = math.ceil(late.total_seconds() / seconds)
        pct = min(policy.cap, periods * policy.percent)
        capped = f", capped at {policy.cap:g}%" if periods * policy.percent > policy.cap else ""
        points = round(raw * pct / 100, 2)
        return Penalty(points, f"{where}: {periods} started {unit}{'s' if periods != 1 else ''} "
                               f"x {policy.percent:g}% = {periods * policy.percent:g}%{capped} "
                               f"of {raw:g} points = -{points:g}")
    return Penalty(0.0, f"{where}: no late penalty")


# --------------------------------------------------------------------------- results, feedback

def feedback_note(penalty, raw):
    """(headline, text) of the late note at the top of the student's feedback; ("", "")
    when there is nothing to say (on time, or no time known and nothing charged)."""
    if not penalty.reason or (not penalty.points and penalty.reason.startswith(_NO_TIME)):
        return "", ""
    head = (f"Late penalty: -{penalty.points:g} points (raw score {raw:g}, final "
            f"{raw - penalty.points:g})" if penalty.points else "Late work")
    return head, penalty.reason


def apply_late(results, course, submissions, work, log=print):
    """Deduct late penalties from ``results`` (in place) and note them in their feedback.

    Each graded result keeps its raw score in ``raw_score`` and gets ``late_penalty``,
    ``late_reason``, ``submitted_at`` and ``time_source``; ``score`` becomes raw minus the
    penalty. Computed from the raw score every time, so applying it again changes nothing.
    course: a :class:`Course`, or None (only earlier late notes are removed from feedback).
    """
    lms = read_lms_record(submissions) if course is not None else {}
    charged = 0
    for r in results:
        raw = r.score if r.raw_score is None else r.raw_score
        penalty = Penalty()
        if course is not None and r.status in ("graded", "incomplete"):
            deadline = course.deadlines.get(r.assignment)
            r.raw_score, r.submitted_at, r.time_source = raw, "", ""
            if deadline is not None:
                sub = submission_time(Path(submissions) / r.student / r.assignment, r.assignment,
                                      r.student, lms)
                penalty = compute_penalty(raw, deadline.due, course.extensions.get(
                    (r.student, r.assignment)), sub, deadline.policy, course.tz)
                r.submitted_at = sub.at.astimezone(course.tz).isoformat(timespec="seconds") if sub.at else ""
                r.time_source = sub.source
            r.late_penalty, r.late_reason = penalty.points, penalty.reason
            r.score = round(raw - penalty.points, 4)
            charged += penalty.points > 0
        note_feedback(Path(work) / "feedback" / r.student / r.assignment, *feedback_note(penalty, raw))
    if course is not None:
        log(f"  late work: {charged} submission(s) lost points (deadlines from {course.path})")
    return results
