"""cs231n TensorFlow style: one-hot mask saliency, make_fooling_image(X, target_y, model) with X.copy() and learning_rate = 1 inside, 2 * tf.nn.l2_loss."""
EXPECT_LOST = set()
import numpy as np
import tensorflow as tf


def compute_saliency_maps(X, y, model):
    saliency = None
    X = tf.convert_to_tensor(X)
    with tf.GradientTape() as tape:
        tape.watch(X)
        scores = model(X)
        correct_scores = tf.reduce_sum(scores * tf.one_hot(y, scores.shape[1]), axis=1)
    grads = tape.gradient(correct_scores, X)
    saliency = tf.reduce_max(tf.abs(grads), axis=3)
    return saliency.numpy()


def make_fooling_image(X, target_y, model):
    X_fooling = X.copy()
    learning_rate = 1
    X_fooling = tf.convert_to_tensor(X_fooling)
    for i in range(100):
        with tf.GradientTape() as tape:
            tape.watch(X_fooling)
            scores = model(X_fooling)
            target_score = scores[0, target_y]
        if tf.argmax(scores[0]) == target_y:
            break
        dX = tape.gradient(target_score, X_fooling)
        X_fooling += learning_rate * dX / tf.norm(dX)
    return X_fooling.numpy()


def class_visualization_update_step(X, model, target_y, l2_reg, learning_rate):
    with tf.GradientTape() as tape:
        tape.watch(X)
        loss = model(X)[0, target_y] - l2_reg * 2 * tf.nn.l2_loss(X)
    dX = tape.gradient(loss, X)
    X += learning_rate * dX / tf.norm(dX)
    return X
