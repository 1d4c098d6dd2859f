"""KL loss through ``model.add_loss()`` on the functional VAE, built inside a class (post VII).

The class builds encoder, decoder and VAE, then computes the KL term from its ``self.mu`` and
``self.log_var`` tensors through a function that receives them as arguments (the post's rule),
and attaches it with ``self.model.add_loss(kl)`` and ``self.model.add_metric(kl, name="kl")``.
The reconstruction term comes from ``compile(loss="binary_crossentropy")`` and ``fit(x, x)``;
the reported BCE is ``loss - kl``, as for every recipe that logs only the KL.

Differences from the post: the shared ``Sampling`` layer replaces the ``Lambda``; the shared
objective's ops replace ``keras.backend``.

Keras 3 removed symbolic ``Model.add_loss`` (it raises ``NotImplementedError`` on every
backend), so the recipe as written fails there. ``build_keras3_port``, the same on every
backend, keeps the loss at model level the Keras 3 way: a ``keras.Model`` subclass whose
``call`` runs the same encoder and decoder and calls ``self.add_loss(kl)``, with a ``Mean``
tracker for the KL metric (``vae_impls.added_losses``).
"""

from vae_impls import network
from vae_impls.added_losses import model_logging_added_losses
from vae_impls.common import Built
from vae_impls.objective import kl_loss


class VariationalAutoencoder:
    """The post's ``MyVariationalAutoencoder`` reduced to solution_type 2."""

    def __init__(self, keras, net):
        self.keras, self.net = keras, net
        self._build_encoder()
        self.decoder = network.decoder_model(keras, net)
        self.model = keras.Model(self.encoder_input, self.decoder(self.encoder_output), name="vae")

    def _build_encoder(self):
        keras, net = self.keras, self.net
        self.encoder_input = network.encoder_input(keras, net)
        self.mu, self.log_var = network.encoder_body(keras, net, self.encoder_input)
        self.encoder_output = network.sampling_layer(keras, net)([self.mu, self.log_var])
        self.encoder = keras.Model(self.encoder_input, self.encoder_output, name="encoder")

    def compile_vae(self):
        def get_kl_loss(mu, log_var):
            return kl_loss(self.keras, mu, log_var, self.net.fact)

        kl = get_kl_loss(mu=self.mu, log_var=self.log_var)
        self.model.add_loss(kl)
        self.model.add_metric(kl, name="kl", aggregation="mean")
        self.model.compile(
            loss="binary_crossentropy", **network.compile_options(self.keras, self.net)
        )

    def built(self):
        return Built(
            model=self.model,
            mean_encoder=self.keras.Model(self.encoder_input, self.mu),
            decoder=self.decoder,
        )


def build(keras, net):
    vae = VariationalAutoencoder(keras, net)
    vae.compile_vae()
    return vae.built()


def model_with_kl_loss(keras, net, encoder, decoder):
    """A ``keras.Model`` whose ``call`` adds the KL term: Keras 3's model-level ``add_loss``.

    ``encoder`` maps images to ``[z, mu, log_var]``.
    """

    class VAEWithKLLoss(model_logging_added_losses(keras, ("kl",))):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder

        def call(self, images, training=None):
            z, mu, log_var = self.encoder(images, training=training)
            self.add_loss(kl_loss(keras, mu, log_var, net.fact))
            return self.decoder(z, training=training)

    model = VAEWithKLLoss(name="vae")
    model(keras.Input(shape=net.input_shape))
    model.compile(loss="binary_crossentropy", **network.compile_options(keras, net))
    return model


def build_keras3_port(keras, net):
    vae = VariationalAutoencoder(keras, net)
    encoder = keras.Model(
        vae.encoder_input, [vae.encoder_output, vae.mu, vae.log_var], name="encoder"
    )
    model = model_with_kl_loss(keras, net, encoder, vae.decoder)
    return Built(
        model=model, mean_encoder=keras.Model(vae.encoder_input, vae.mu), decoder=vae.decoder
    )
