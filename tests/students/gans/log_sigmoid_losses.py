"""Mistake the notebook warns about: log(sigmoid(s)) in float32, right on moderate logits, inf on the large ones."""
EXPECT_LOST = {"gans_discriminator_loss", "gans_generator_loss"}
import tensorflow as tf


def discriminator_loss(logits_real, logits_fake):
    return -tf.reduce_mean(tf.math.log(tf.sigmoid(logits_real))) - tf.reduce_mean(tf.math.log(1 - tf.sigmoid(logits_fake)))


def generator_loss(logits_fake):
    return -tf.reduce_mean(tf.math.log(tf.sigmoid(logits_fake)))
