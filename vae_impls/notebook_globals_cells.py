"""Notebook cells for ``notebook_globals``: run by ``runpy`` with ``keras``, ``net`` and ``port``
given as the kernel's existing globals. Not meant to be imported."""
from vae_impls import network
from vae_impls.model_add_loss import model_with_kl_loss
from vae_impls.objective import kl_loss

# Cell 7: the encoder
encoder_input = network.encoder_input(keras, net)
mu, log_var = network.encoder_body(keras, net, encoder_input)
encoder_output = network.sampling_layer(keras, net)([mu, log_var])
encoder = keras.Model(encoder_input, encoder_output, name="encoder")
mean_encoder = keras.Model(encoder_input, mu)

# Cell 8: the decoder
decoder = network.decoder_model(keras, net)


# Cell 9: the KL term, as a function of explicit tensor arguments
def get_kl_loss(mu, log_var):
    return kl_loss(mu, log_var, net.fact)


# Cell 10: the VAE, its loss and compile
if not port:
    vae = keras.Model(encoder_input, decoder(encoder_output), name="vae")
    kl = get_kl_loss(mu=mu, log_var=log_var)
    vae.add_loss(kl)
    vae.add_metric(kl, name="kl", aggregation="mean")
    vae.compile(loss="binary_crossentropy", metrics=[keras.metrics.BinaryCrossentropy(name="bce")],
                **network.compile_options(keras, net))
else:
    sampler = keras.Model(encoder_input, [encoder_output, mu, log_var], name="encoder_with_moments")
    vae = model_with_kl_loss(keras, net, sampler, decoder)
