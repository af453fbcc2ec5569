"""Correct: Keras' BinaryCrossentropy(from_logits=True), the keras-io DCGAN way."""
EXPECT_LOST = set()
import tensorflow as tf
import keras


def discriminator_loss(logits_real, logits_fake):
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    return bce(tf.ones_like(logits_real), logits_real) + bce(tf.zeros_like(logits_fake), logits_fake)


def generator_loss(logits_fake):
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    return bce(tf.ones_like(logits_fake), logits_fake)
