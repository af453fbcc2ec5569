"""A cs231n 2017 TensorFlow write-up's losses: tf.shape + (H*W, C) reshape, 2 * tf.nn.l2_loss, slicing TV."""
EXPECT_LOST = set()
import tensorflow as tf


def content_loss(content_weight, content_current, content_original):
    # 2 * l2_loss(x) = sum(x ** 2)
    return content_weight * 2 * tf.nn.l2_loss(content_current - content_original)


def gram_matrix(features, normalize=True):
    shape = tf.shape(features)
    H, W, C = shape[1], shape[2], shape[3]          # features: (1, H, W, C), as cs231n documents
    F = tf.reshape(features, (H * W, C))
    gram = tf.matmul(tf.transpose(F), F)
    if normalize:
        gram /= tf.cast(H * W * C, tf.float32)
    return gram


def style_loss(feats, style_layers, style_targets, style_weights):
    loss = 0
    for i in range(len(style_layers)):
        G = gram_matrix(feats[style_layers[i]])
        loss += style_weights[i] * 2 * tf.nn.l2_loss(G - style_targets[i])
    return loss


def tv_loss(img, tv_weight):
    w_variance = tf.reduce_sum(tf.square(img[:, :, 1:, :] - img[:, :, :-1, :]))
    h_variance = tf.reduce_sum(tf.square(img[:, 1:, :, :] - img[:, :-1, :, :]))
    return tv_weight * (w_variance + h_variance)
