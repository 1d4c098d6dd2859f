"""The same network as a plain autoencoder: z = mu, binary cross-entropy only (the floor).

No sampling and no KL term, so no KL recipe can be faster than this except by noise: kl-bench
reports every recipe's step time as a ratio to it. It minimizes a different objective on
purpose; its ``kl`` is reported as missing. With the sampling noise fixed at zero, every VAE
recipe's reconstruction term equals this model's loss, which the tests use. It runs as written
on every API.
"""

from vae_impls import network
from vae_impls.common import Built


def build(keras, net):
    images = network.encoder_input(keras, net)
    mu, _ = network.encoder_body(keras, net, images)
    decoder = network.decoder_model(keras, net)
    autoencoder = keras.Model(images, decoder(mu), name="autoencoder")
    autoencoder.compile(loss="binary_crossentropy", **network.compile_options(keras, net))
    # The loss is the BCE: a BCE metric would only compute it a second time per step.
    return Built(
        model=autoencoder,
        mean_encoder=keras.Model(images, mu),
        decoder=decoder,
        log_keys={"loss": ("loss",), "bce": ("loss",)},
    )
