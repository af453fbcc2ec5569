"""sample feeds <START> at every step instead of the previous word: loses the sample cell. Its training is right, and the
graded BLEU-4 run captions from the trained parameters with the grader's own sample (caption_judge), so it keeps those points."""
EXPECT_LOST = {"rnn_captioning_model_sample"}
import numpy as np


class CaptioningRNN(CaptioningRNN):             # the class above, with my sample
    def sample(self, features, max_length=30):
        p = self.params
        N = features.shape[0]
        captions = np.full((N, max_length), self._null, dtype=np.int32)
        h = features @ p["W_proj"] + p["b_proj"]
        start, _ = word_embedding_forward(np.full((N, 1), self._start), p["W_embed"])
        for t in range(max_length):
            h, _ = rnn_step_forward(start[:, 0], h, p["Wx"], p["Wh"], p["b"])
            captions[:, t] = np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1)
        return captions
