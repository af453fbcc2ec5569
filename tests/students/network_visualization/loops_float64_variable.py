"""Correct, written differently: saliency one image at a time on a float64 Variable, a while loop on a Variable with tf.math.l2_normalize, a tf.roll / tf.clip_by_value visualization loop."""
EXPECT_LOST = set()
import numpy as np
import tensorflow as tf


def compute_saliency_maps(X, y, model):
    maps = []
    for i in range(X.shape[0]):
        x = tf.Variable(np.asarray(X[i:i + 1], np.float64))
        with tf.GradientTape() as tape:
            score = model(x, training=False)[0, int(y[i])]
        g = tape.gradient(score, x).numpy()
        maps.append(np.max(np.abs(g[0]), axis=-1))
    return np.stack(maps).astype(np.float32)


def make_fooling_image(X, target_y, model, learning_rate=1.0, max_iter=100):
    X_fooling = tf.Variable(np.array(X, dtype=np.float32))
    it = 0
    while it < max_iter and int(np.argmax(model(X_fooling, training=False)[0])) != target_y:
        with tf.GradientTape() as tape:
            score = model(X_fooling, training=False)[0, target_y]
        g = tape.gradient(score, X_fooling)
        X_fooling.assign_add(learning_rate * tf.math.l2_normalize(g))
        it += 1
    return X_fooling.numpy()


def class_visualization_update_step(X, model, target_y, l2_reg, learning_rate):
    with tf.GradientTape() as tape:
        tape.watch(X)
        objective = model(X, training=False)[0, target_y] - l2_reg * tf.reduce_sum(tf.square(X))
    g = tape.gradient(objective, X)
    return X + learning_rate * g / tf.sqrt(tf.reduce_sum(tf.square(g)))


def create_class_visualization(target_y, model, l2_reg=1e-3, learning_rate=25.0,
                               num_iterations=100, blur_every=10, max_jitter=16,
                               image_size=224, seed=0, show_every=None):
    rng = np.random.default_rng(seed)
    X = np.clip(rng.normal(size=(1, image_size, image_size, 3)), PIXEL_MIN, PIXEL_MAX)
    X = X.astype(np.float32)
    step = tf.function(class_visualization_update_step)
    for t in range(num_iterations):
        ox, oy = (int(v) for v in rng.integers(-max_jitter, max_jitter + 1, size=2))
        Xt = tf.roll(tf.constant(X), shift=(oy, ox), axis=(1, 2))
        Xt = step(Xt, model, target_y, l2_reg, learning_rate)
        Xt = tf.roll(Xt, shift=(-oy, -ox), axis=(1, 2))
        X = tf.clip_by_value(Xt, PIXEL_MIN, PIXEL_MAX).numpy()
        if blur_every and (t + 1) % blur_every == 0:
            X = blur_image(X, sigma=0.5)
    return X.astype(np.float32)
