"""Write a starting module for a recipe of your own: NAME.py, which `verify` passes as written.

The module has what every recipe has: a docstring, ``build(keras, net)`` returning a compiled
model, and ``RECIPE = Recipe(...)`` saying where it runs as written. Edit its loss the way yours
adds the KL, then `python -m bench verify NAME.py` and `python -m bench run --recipe NAME.py`.
--dir says where (default: the current folder); nothing already at NAME.py (a file, a folder, a
symlink, dangling or not) is ever overwritten or written through.
"""

import keyword
import os
import re
from pathlib import Path

from bench.console import say
from bench.errors import UsageError, quoted
from vae_impls import registry

MAX_NAME_LENGTH = 64  # a module name anyone types, far below any file system's limit

TEMPLATE = '''\
"""{name}: the KL added in a custom train_step (edit this line to say how yours adds it).

Written by `python -m bench new-recipe {name}`. `build(keras, net)` builds the shared network
with kl-bench's builders (fixed layer names: every recipe starts from the same weights), adds
the loss the way this recipe does, and says which log keys hold the loss, BCE and KL.
"""

from vae_impls.common import Built, no_targets
from vae_impls.registry import Recipe

RECIPE = Recipe(
    name="{name}",
    post="own",
    technique="custom train_step with tf.GradientTape",
    runs_as_written=frozenset({{"keras2", "keras3"}}),
)


def build(keras, net):
    # Here, not above: kl-bench imports this module to plan, and plans without TensorFlow.
    import tensorflow as tf

    from vae_impls import network

    images = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, images)
    z = network.sampling_layer(keras, net)([mu, log_var])  # verify fixes its noise
    encoder = keras.Model(images, [z, mu, log_var], name="encoder")
    decoder = network.decoder_model(keras, net)

    class VAE(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder
            self.trackers = [keras.metrics.Mean(name=key) for key in ("loss", "bce", "kl")]

        @property
        def metrics(self):
            return self.trackers

        def call(self, x, training=None):
            return self.decoder(self.encoder(x, training=training)[0], training=training)

        def train_step(self, data):
            x = data[0] if isinstance(data, tuple) else data
            with tf.GradientTape() as tape:
                z, mu, log_var = self.encoder(x, training=True)
                pixels = self.decoder(z, training=True)
                bce = tf.reduce_mean(keras.losses.binary_crossentropy(x, pixels))
                kl = -net.fact * tf.reduce_mean(1 + log_var - tf.square(mu) - tf.exp(log_var))
                loss = bce + kl
            gradients = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
            for tracker, value in zip(self.trackers, (loss, bce, kl)):
                tracker.update_state(value)
            return {{tracker.name: tracker.result() for tracker in self.trackers}}

    vae = VAE(name="{name}")
    vae.compile(**network.compile_options(keras, net))
    return Built(
        model=vae,
        mean_encoder=keras.Model(images, mu),
        decoder=decoder,
        fit_targets=no_targets,
        log_keys={{"loss": ("loss",), "bce": ("bce",), "kl": ("kl",)}},
    )
'''


def add_arguments(parser) -> None:
    parser.add_argument("name", help="the recipe's name: letters, digits and '_'")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the folder to write NAME.py in (default: the current folder)",
    )


def run(args) -> int:
    path = target(args.name, args.dir)
    write_new(path, TEMPLATE.format(name=args.name))
    say(f"wrote {path}; next: python -m bench verify {path}")
    return 0


def target(name: str, folder: Path) -> Path:
    """Where NAME.py goes; a UsageError for a name that cannot be a module file, a clash, a
    folder that is not one, or anything already at that path (a symlink included)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise UsageError(f"recipe name {quoted(name)} must be letters, digits and '_'")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"recipe name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}: "
            "it is the module file's name"
        )
    if keyword.iskeyword(name):
        raise UsageError(f"recipe name {name!r} is a Python keyword: no module can have it")
    if name in registry.RECIPES:
        raise UsageError(f"recipe name {name!r} is a built-in recipe's: choose another")
    if not folder.is_dir():
        raise UsageError(f"--dir {quoted(str(folder))}: no such folder")
    path = folder / f"{name}.py"
    if os.path.lexists(path):
        raise UsageError(f"{path} exists{_symlink_note(path)}: it is never overwritten")
    return path


def write_new(path: Path, text: str) -> None:
    """``text`` into a new file at ``path``, never through anything there (a symlink that
    appeared since ``target``, say); a UsageError for a folder that cannot be written."""
    try:
        with open(path, "x", encoding="utf-8") as written:  # O_EXCL: never follows a symlink
            written.write(text)
    except FileExistsError:
        raise UsageError(f"{path} exists{_symlink_note(path)}: it is never overwritten") from None
    except OSError as error:
        raise UsageError(
            f"--dir {path.parent}: cannot write {path.name} there ({error.strerror or error})"
        ) from None


def _symlink_note(path: Path) -> str:
    return " (a symlink)" if path.is_symlink() else ""
