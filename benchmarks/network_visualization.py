"""Time EfficientNet-Lite0 (helpers.pretrained) on one 224x224 image: a forward pass and a
saliency gradient, eager and inside tf.function. Run from the repository root:

    python benchmarks/network_visualization.py [--repeats 20]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import env  # noqa: E402,F401
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from helpers import pretrained  # noqa: E402


def timeit(fn, repeats):
    fn()                                           # warm up (and trace)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.asarray(fn())
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    t = time.perf_counter()
    model = pretrained.load_pretrained()
    print(f"load_pretrained (read weights without torch + build Keras model): "
          f"{time.perf_counter() - t:.2f} s")
    X, y, _ = pretrained.example_images(["coffee"])
    x, label = tf.constant(X), tf.constant(y)

    def forward(x):
        return model(x, training=False)

    def saliency(x, label):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.gather(model(x, training=False), label, axis=1, batch_dims=1)
        return tf.reduce_max(tf.abs(tape.gradient(score, x)), axis=-1)

    fwd_c, sal_c = tf.function(forward), tf.function(saliency)
    rows = [("forward pass, eager", timeit(lambda: forward(x), args.repeats)),
            ("forward pass, tf.function", timeit(lambda: fwd_c(x), args.repeats)),
            ("saliency gradient, eager", timeit(lambda: saliency(x, label), args.repeats)),
            ("saliency gradient, tf.function", timeit(lambda: sal_c(x, label), args.repeats))]
    print(f"one 224x224 image, median of {args.repeats} runs, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads:")
    for name, ms in rows:
        print(f"  {name:32s} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
