"""Write data/expected/gan_replay.npz (and, with --full, data/expected/gan_scores.json).

Run from the repository root::

    python tools/make_gan_replay.py           # the replay sketches, on 1, 2 and 4 threads (minutes)
                                              # and each CPU kind this CPU can run (others kept)
    python tools/make_gan_replay.py --full    # also the recipe's full runs (about 12 CPU minutes)

The sketches are :func:`helpers.gan_replay.sketch` of the solution notebook's functions, once
with its simultaneous train step and once with the alternating one (D's update, then G's on
the updated D; both are correct). ``--full`` trains each graded recipe
(:data:`helpers.gan_training.RECIPES`, seed 0) from the solution's functions, exactly as a
grading kernel does, and stores the scores that a replayed submission is given, with the
digest of the files they depend on (:data:`helpers.gan_replay.SCORE_INPUTS`). Reference
code is read from solutions/gans/gans.ipynb, which is why this lives here and not in helpers/.
"""
from pathlib import Path
import json
import os
import sys

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers import env  # noqa: E402,F401

from helpers import gan_replay, gan_training  # noqa: E402
from helpers.grading import gan_judge  # noqa: E402
from helpers.grading.gan_judge import FUNCTIONS  # noqa: E402  (the solution functions of each recipe)



def solution_functions():
    """The solution notebook's answer cells, executed: dict name -> object (the judge's own)."""
    return gan_judge.solution_functions()


def alternating(train_step_ns):
    tf = train_step_ns["tf"]

    def step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
        with tf.GradientTape() as tape:
            d_loss = d_loss_fn(D(x, training=True), D(G(z, training=True), training=True))
        D_opt.apply(tape.gradient(d_loss, D.trainable_variables), D.trainable_variables)
        with tf.GradientTape() as tape:
            g_loss = g_loss_fn(D(G(z, training=True), training=True))
        G_opt.apply(tape.gradient(g_loss, G.trainable_variables), G.trainable_variables)
        return d_loss, g_loss
    return step


def fns_for(label, ns, order="simultaneous"):
    d, g, dl, gl = (ns[n] for n in FUNCTIONS[label])
    step = ns["gan_train_step"] if order == "simultaneous" else alternating(ns)
    return dict(discriminator=d, generator=g, d_loss_fn=dl, g_loss_fn=gl, train_step=step)


def cpus_here():
    """The kinds of :data:`helpers.gan_replay.CPUS` this CPU runs (oneDNN can be capped below
    its own instruction set with ``ONEDNN_MAX_CPU_ISA``, not above)."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    kinds = {"AVX512_CORE": {"avx512f", "avx512bw", "avx512vl", "avx512dq"}, "AVX2": {"avx2", "fma"}}
    return [cpu for cpu in gan_replay.CPUS if kinds[cpu] <= flags]


def thread_env(threads, cpu=None):
    """The environment of a grading kernel with ``threads`` threads (as helpers.grading.sandbox
    sets it), oneDNN capped at instruction set ``cpu`` if given."""
    t = str(threads)
    cap = {"ONEDNN_MAX_CPU_ISA": cpu} if cpu else {}
    return {**os.environ, **cap, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": t,
            "OPENBLAS_NUM_THREADS": t, "MKL_NUM_THREADS": t, "TF_NUM_INTRAOP_THREADS": t,
            "TF_NUM_INTEROP_THREADS": t}


def sketch_here(threads, cpu, out):
    """Every sketch, in this process (started with :func:`thread_env`), saved to ``out``."""
    ns = solution_functions()
    arrays = {}
    for label in gan_replay.REPLAY_STEPS:
        for order in gan_replay.ORDERS:
            arrays.update(gan_replay.pack(label, order, threads, cpu,
                                          gan_replay.sketch(label, **fns_for(label, ns, order))))
            print(f"{label} ({order}, {threads} thread(s), {cpu}): sketched", flush=True)
    np.savez(out, **arrays)


def stored():
    """The sketches stored now ({} if none): those of CPU kinds this machine cannot run are kept."""
    if not gan_replay.SKETCHES.exists():
        return {}
    with np.load(gan_replay.SKETCHES) as data:
        return {k: data[k] for k in data.files}


if __name__ == "__main__":
    if "--threads" in sys.argv:      # a child: one thread count, one CPU kind
        arg = sys.argv.index
        sketch_here(int(sys.argv[arg("--threads") + 1]), sys.argv[arg("--cpu") + 1], sys.argv[arg("--out") + 1])
        sys.exit(0)
    import subprocess
    import tempfile
    arrays = stored()
    with tempfile.TemporaryDirectory() as tmp:
        for cpu in cpus_here():
            for threads in gan_replay.THREADS:   # TensorFlow's thread count is fixed when it starts
                part = Path(tmp) / f"{cpu}-{threads}.npz"
                subprocess.run([sys.executable, __file__, "--threads", str(threads), "--cpu", cpu, "--out", str(part)],
                               env=thread_env(threads, cpu), check=True)
                with np.load(part) as data:
                    arrays.update({k: data[k] for k in data.files})
    np.savez(gan_replay.SKETCHES, **arrays)
    print(f"wrote {gan_replay.SKETCHES} ({len(arrays)} arrays; CPUs here: {', '.join(cpus_here())})")
    if "--full" in sys.argv:
        os.environ["COURSE_GRADING"] = "1"
        os.environ["COURSE_GAN_FULL_RUN"] = "1"
        ns = solution_functions()
        scores = {}
        for label in gan_replay.REPLAY_STEPS:
            score = gan_training.graded_score(label, None, sample_noise=ns["sample_noise"], **fns_for(label, ns))
            scores[label] = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in score.items()}
        scores["measured_with"] = gan_replay.score_inputs_digest()
        gan_replay.SCORES.write_text(json.dumps(scores, indent=1) + "\n")
        print(f"wrote {gan_replay.SCORES}")
