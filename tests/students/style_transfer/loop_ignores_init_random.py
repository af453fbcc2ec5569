"""The loop always starts from the content image: init_random is ignored (feature inversion and texture synthesis start from the photo; the "inversion" returns the photo itself, which the graded run refuses)."""
EXPECT_LOST = {"style_transfer_loop_small", "style_transfer_inversion_quality"}
import keras
import tensorflow as tf
from helpers import style


def style_transfer(content_image, style_image, image_size, style_size, content_layer,
                   content_weight, style_layers, style_weights, tv_weight, init_random=False,
                   num_iters=200, initial_lr=0.05, decayed_lr=0.005, decay_lr_at=180,
                   show_every=0, seed=0, model=None, verbose=False):
    """Run style transfer (or feature inversion / texture synthesis).

    Inputs:
    - content_image, style_image: sample names, file paths or (H, W, 3) uint8 images.
    - image_size: shorter side of the content image (and the result), in pixels.
    - style_size: shorter side of the style image.
    - content_layer: index into the feature list of the layer for the content loss.
    - content_weight: w_c (0 turns the content loss off: texture synthesis).
    - style_layers: list of indices into the feature list for the style loss.
    - style_weights: list of the same length, one weight per style layer.
    - tv_weight: w_t, weight of the total-variation loss.
    - init_random: start from uniform noise (seed `seed`) instead of the content image.
    - num_iters, initial_lr, decayed_lr, decay_lr_at: Adam's schedule.
    - show_every: show the image every this many steps (0: never).
    - seed: seeds the noise of init_random.
    - model: feature model (default style.feature_model()).
    - verbose: progress bar and printed losses.
    The graded checks pass only content_image ... tv_weight and init_random (cs231n's
    arguments); every other argument keeps its default there.

    Returns:
    - image: (H, W, 3) uint8, the result.
    - history: dict of lists 'total', 'content', 'style', 'tv': the losses before each
      step, plus those of the returned image (num_iters + 1 values each).
    """
    model = style.feature_model() if model is None else model
    content = style.image_input(content_image, image_size)       # (1, H, W, 3)
    style_img = style.image_input(style_image, style_size)       # (1, H', W', 3)

    # Define (the loop below uses these names):
    #   content_target: the content image's features at content_layer
    #   style_targets:  the style image's Gram matrices, one per entry of style_layers
    #   img:            tf.Variable, the start image (1, H, W, 3)
    #   optimizer:      keras.optimizers.Adam with learning rate initial_lr
    #   compute_losses(x) -> (total, content, style, tv) of image x   [@tf.function]
    #   step() -> the losses of img (before the update); updates and clamps img   [@tf.function]
    content_target = extract_features(content, model)[content_layer]
    style_feats = extract_features(style_img, model)
    style_targets = [gram_matrix(style_feats[i]) for i in style_layers]
    img = tf.Variable(content)                  # init_random forgotten
    optimizer = keras.optimizers.Adam(learning_rate=initial_lr)

    @tf.function
    def compute_losses(x):
        feats = extract_features(x, model)
        c_loss = content_loss(content_weight, feats[content_layer], content_target)
        s_loss = style_loss(feats, style_layers, style_targets, style_weights)
        t_loss = tv_loss(x, tv_weight)
        return c_loss + s_loss + t_loss, c_loss, s_loss, t_loss

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            losses = compute_losses(img)
        grad = tape.gradient(losses[0], img)
        optimizer.apply([grad], [img])
        img.assign(tf.clip_by_value(img, style.PIXEL_MIN, style.PIXEL_MAX))
        return losses

    history = {"total": [], "content": [], "style": [], "tv": []}
    for t in tqdm(range(num_iters), desc="style transfer", disable=not verbose):
        # At step decay_lr_at, set the optimizer's learning rate to decayed_lr
        # (optimizer.learning_rate.assign(...)); then take one step: losses = step().
        if t == decay_lr_at:
            optimizer.learning_rate.assign(decayed_lr)
        losses = step()
        for key, value in zip(history, losses):
            history[key].append(float(value))
        if show_every and t % show_every == 0 and t > 0:
            plots.show_images([img], [f"step {t}"], height=2.5)
            plt.show()
    for key, value in zip(history, compute_losses(img)):
        history[key].append(float(value))
    if verbose:
        for when, i in (("start", 0), ("end", -1)):
            print(f"{when:5s}: " + "  ".join(f"{k} {v[i]:10.4g}" for k, v in history.items()))
    return style.to_uint8(img), history
