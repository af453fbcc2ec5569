"""Mistake: the DCGAN discriminator uses ReLU instead of LeakyReLU(0.01) (the shapes and counts are right)."""
EXPECT_LOST = {"gans_dc_discriminator"}


def dc_discriminator():
    return keras.Sequential([
        keras.Input((784,)), layers.Reshape((28, 28, 1)),
        layers.Conv2D(32, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(1024, activation="relu"), layers.Dense(1)])
