"""Correct: GAN losses written with softplus (-log sigmoid(s) = softplus(-s)), as cs231n write-ups often do."""
EXPECT_LOST = set()
import tensorflow as tf


def discriminator_loss(logits_real, logits_fake):
    return tf.reduce_mean(tf.nn.softplus(-logits_real)) + tf.reduce_mean(tf.nn.softplus(logits_fake))


def generator_loss(logits_fake):
    return tf.reduce_mean(tf.nn.softplus(-logits_fake))
