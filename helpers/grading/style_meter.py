"""The judge's own style-transfer losses: graded runs measured by trusted code.

``style_transfer``'s graded runs (:func:`helpers.style.graded_histories`) return images;
in the grader's trusted kernel the hidden tests measure them with these functions instead of
the submission's, so the measurement is not the student kernel's word. They follow the
quiz's definitions (cs231n's) and signatures. This module is part of the grading
machinery: the student's sandbox sees ``helpers/grading/`` empty, so a submission cannot
import it as its answer.
"""
from __future__ import annotations


def style_losses():
    """{name: function} for :data:`helpers.style.LOSS_FUNCTIONS`, as the quiz defines them.

    - extract_features(x, model) -> list of the model's activations (N, H_i, W_i, C_i).
    - gram_matrix(features (1, H, W, C), normalize=True) -> (C, C), over H * W * C if normalized.
    - content_loss(w, current, original) -> w * sum((current - original)^2).
    - style_loss(feats, layers, targets, weights) -> sum_i weights[i] *
      sum((gram(feats[layers[i]]) - targets[i])^2).
    - tv_loss(img (1, H, W, 3), w) -> w * (sum of squared vertical and horizontal differences).
    """
    import tensorflow as tf

    def extract_features(x, model):
        out = model(x, training=False)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def gram_matrix(features, normalize=True):
        f = tf.convert_to_tensor(features, tf.float32)
        flat = tf.reshape(f, (-1, f.shape[-1]))                       # (H * W, C)
        gram = tf.matmul(flat, flat, transpose_a=True)                # (C, C)
        return gram / tf.cast(tf.size(f), tf.float32) if normalize else gram

    def content_loss(weight, current, original):
        return weight * tf.reduce_sum(tf.square(tf.convert_to_tensor(current, tf.float32)
                                                - tf.convert_to_tensor(original, tf.float32)))

    def style_loss(feats, layers, targets, weights):
        return tf.add_n([tf.constant(0.0)] + [
            w * tf.reduce_sum(tf.square(gram_matrix(feats[layer]) - tf.cast(t, tf.float32)))
            for layer, t, w in zip(layers, targets, weights)])

    def tv_loss(img, weight):
        img = tf.convert_to_tensor(img, tf.float32)
        return weight * (tf.reduce_sum(tf.square(img[:, 1:] - img[:, :-1]))
                         + tf.reduce_sum(tf.square(img[:, :, 1:] - img[:, :, :-1])))

    return dict(extract_features=extract_features, gram_matrix=gram_matrix,
                content_loss=content_loss, style_loss=style_loss, tv_loss=tv_loss)
