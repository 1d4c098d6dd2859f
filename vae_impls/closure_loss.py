"""A loss function closing over the symbolic ``mu``/``log_var`` (post III): the broken recipe.

The recipe from older Keras books: a ``vae_loss(x, x_decoded)`` function passed to
``compile(loss=...)`` adds the KL term computed from the encoder's ``mu`` and ``log_var``,
which it reads from the enclosing scope instead of receiving them as arguments. Under TF2 eager
execution the loss runs inside the traced train step, where those symbolic Keras tensors cannot
be used, so the first training step raises on Keras 2 and on Keras 3 with every backend, each
in its own words. kl-bench records that error.

Differences from the post: the shared network and ``Sampling`` layer; the KL uses the shared
form. The failure does not depend on either.
"""

from vae_impls import network
from vae_impls.common import Built
from vae_impls.objective import kl_loss, reconstruction_loss


def build(keras, net):
    images = network.encoder_input(keras, net)
    mu, log_var = network.encoder_body(keras, net, images)
    z = network.sampling_layer(keras, net)([mu, log_var])
    decoder = network.decoder_model(keras, net)
    vae = keras.Model(images, decoder(z), name="vae")

    def vae_loss(x, x_decoded):
        return reconstruction_loss(keras, x, x_decoded) + kl_loss(keras, mu, log_var, net.fact)

    vae.compile(loss=vae_loss, **network.compile_options(keras, net))
    return Built(model=vae, mean_encoder=keras.Model(images, mu), decoder=decoder)
