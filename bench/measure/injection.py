"""The deliberate slowdown that ``bench.config.injection`` parses, applied inside a worker."""

import time


def slow_down(tf, model, milliseconds: float) -> None:
    """Wrap ``model.train_step`` so that each step first sleeps ``milliseconds``."""
    original, seconds = model.train_step, milliseconds / 1000

    def sleep():
        time.sleep(seconds)
        return 0.0

    def slowed_train_step(*args, **kwargs):
        delay = tf.py_function(sleep, [], tf.float32)
        with tf.control_dependencies([delay]):
            return original(*args, **kwargs)

    model.train_step = slowed_train_step
