"""Fooling image with raw gradient steps: X += learning_rate * g, the gradient is not normalized by its L2 norm."""
EXPECT_LOST = {"network_visualization_fooling_check", "network_visualization_fooling_quality"}   # the quality cell: mean change 6.3% > 5%
import numpy as np
import tensorflow as tf


def make_fooling_image(X, target_y, model, learning_rate=1.0, max_iter=100):
    X_fooling = tf.Variable(tf.convert_to_tensor(X, tf.float32))
    for _ in range(max_iter):
        with tf.GradientTape() as tape:
            scores = model(X_fooling, training=False)
            target_score = scores[0, target_y]
        if int(tf.argmax(scores[0])) == target_y:
            break
        g = tape.gradient(target_score, X_fooling)
        X_fooling.assign_add(learning_rate * g)
    return np.asarray(X_fooling)
