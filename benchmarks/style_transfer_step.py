"""Seconds per style-transfer step on the pretrained EfficientNet-Lite0 (CPU).

    python benchmarks/style_transfer_step.py            # sizes 128, 160, 192
    python benchmarks/style_transfer_step.py 160 --steps 30

Times one optimization step as the reference solution runs it: features of the current
image at the six FEATURE_LAYERS, content + style + TV loss, gradient w.r.t. the image,
an Adam update and clamping, inside ``tf.function`` (after tracing; the trace time is
printed separately) and, for comparison, eagerly. The losses are the reference
solution's (its cells are run from the solution notebook). Use ``nice`` on a shared
machine; the numbers in the notebook come from this script on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))
from helpers import env  # noqa: E402  (before TensorFlow)


def make_step(ns, size, use_function=True):
    import keras
    import tensorflow as tf
    from helpers import style
    model = style.feature_model()
    content = style.image_input("chelsea", size)
    style_img = style.image_input("gravel", size)
    layers, weights, content_layer = [0, 2, 3, 4], [30.0] * 4, 4
    content_target = ns["extract_features"](content, model)[content_layer]
    style_feats = ns["extract_features"](style_img, model)
    targets = [ns["gram_matrix"](style_feats[i]) for i in layers]
    img = tf.Variable(content)
    opt = keras.optimizers.Adam(0.05)

    def step():
        with tf.GradientTape() as tape:
            feats = ns["extract_features"](img, model)
            loss = (ns["content_loss"](1e-3, feats[content_layer], content_target)
                    + ns["style_loss"](feats, layers, targets, weights) + ns["tv_loss"](img, 1e-2))
        grad = tape.gradient(loss, img)
        opt.apply([grad], [img])
        img.assign(tf.clip_by_value(img, style.PIXEL_MIN, style.PIXEL_MAX))
        return loss
    return (tf.function(step) if use_function else step), tuple(content.shape)


def time_step(step, steps):
    t0 = time.perf_counter()
    step()                                   # trace (tf.function) / warm up (eager)
    first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        float(step())                        # float() waits for the result
        times.append(time.perf_counter() - t0)
    return first, min(times), statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sizes", nargs="*", type=int, default=[128, 160, 192], help="shorter side, px")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--eager-size", type=int, default=160, help="size for the eager comparison (0: skip)")
    args = p.parse_args(argv)
    import tensorflow as tf
    env.quiet_tensorflow()
    from style_transfer_expected import LOSS_CELLS, solution_namespace
    ns = solution_namespace(LOSS_CELLS + ("style_transfer_extract_features",))
    print(f"CPU cores visible: {os.cpu_count()}, TF intra-op threads: "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")
    print(f"{'size':>5} {'input':>18} {'trace s':>8} {'min s':>8} {'median s':>9}"
          f"  per step, tf.function, {args.steps} steps (min ~ an idle machine)")
    for size in args.sizes:
        step, shape = make_step(ns, size)
        first, best, median = time_step(step, args.steps)
        print(f"{size:5d} {str(shape):>18} {first:8.2f} {best:8.3f} {median:9.3f}")
    if args.eager_size:
        step, shape = make_step(ns, args.eager_size, use_function=False)
        _, best, median = time_step(step, max(5, args.steps // 4))
        print(f"eager {args.eager_size}: min {best:.3f} s, median {median:.3f} s per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
