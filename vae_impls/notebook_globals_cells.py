"""Notebook cells for post VII's class-free ``model.add_loss()`` VAE, shared by its readings.

Executed by ``vae_impls.notebook_globals.run_cells`` in a kernel namespace that already holds
``keras``, ``net`` (the shared ``NetworkSpec``), ``port`` (build the Keras 3 port instead of the
cells as written) and ``wiring`` (how the VAE connects the encoder to the decoder, one of
``WIRINGS``). Every name the cells make is a global of that namespace. Not meant to be imported.
"""
from vae_impls import network
from vae_impls.model_add_loss import model_with_kl_loss
from vae_impls.objective import kl_loss

# "encoder_tensor": decoder applied to the sampling layer's output tensor, as the post's class does.
# "encoder_call": decoder applied to the encoder model called on the input (post IV's wiring).
WIRINGS = ("encoder_tensor", "encoder_call")
if wiring not in WIRINGS:
    raise ValueError(f"unknown wiring {wiring!r}; valid: {', '.join(WIRINGS)}")

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
    return kl_loss(keras, mu, log_var, net.fact)


# Cell 10: the VAE, its loss and compile. With "encoder_call" the KL still reads the encoder's
# inner mu/log_var globals, which the VAE reaches only through the encoder's layers themselves.
z = encoder(encoder_input) if wiring == "encoder_call" else encoder_output
if not port:
    vae = keras.Model(encoder_input, decoder(z), name="vae")
    kl = get_kl_loss(mu=mu, log_var=log_var)
    vae.add_loss(kl)
    vae.add_metric(kl, name="kl", aggregation="mean")
    vae.compile(loss="binary_crossentropy", **network.compile_options(keras, net))
else:
    sampler = keras.Model(encoder_input, [z, mu, log_var], name="encoder_with_moments")
    vae = model_with_kl_loss(keras, net, sampler, decoder)
