"""Saliency from the gradient of the softmax cross-entropy loss instead of the correct-class score."""
EXPECT_LOST = {"network_visualization_saliency_check", "network_visualization_saliency_real"}
import numpy as np
import tensorflow as tf


def compute_saliency_maps(X, y, model):
    X = tf.convert_to_tensor(X, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(X)
        scores = model(X, training=False)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, scores))
    grads = tape.gradient(loss, X)
    return tf.reduce_max(tf.abs(grads), axis=-1).numpy()
