"""Post VII's class-free ``model.add_loss()`` notebook, wired as ``decoder(encoder(x))``.

A reading of the notebook that post VII ("A strange performance problem when no class is used")
describes only in words; ``notebook_globals`` lists the readings. Same cells as
``notebook_globals``, except that the VAE is ``keras.Model(encoder_input,
decoder(encoder(encoder_input)))``: the encoder model is called on the input, the wiring of post
IV and of many notebooks, while ``add_loss`` still gets the KL of the ``mu``/``log_var`` globals
made when the encoder was constructed.

Those globals are not outputs of the nested encoder call, so Keras 2 reaches them by inserting
the encoder's inner layers into the VAE a second time: ``vae.layers`` lists ``encoder`` and
also ``encoder_conv_0`` ... ``mu``, ``log_var``, and the traced step runs the encoder's
convolutions twice, once for the reconstruction and once for the KL. Both copies share the
same variables, so loss and gradients are those of every other recipe.

On Keras 3 (every backend) the cells raise as written, as ``notebook_globals`` does: symbolic
``Model.add_loss`` is gone. The Keras 3 port, the same on every backend, keeps the wiring: the
model-level ``add_loss`` model of ``model_add_loss``'s port gets ``keras.Model(encoder_input,
[encoder(encoder_input), mu, log_var])``, which again holds the encoder's layers twice.
"""

from vae_impls.notebook_globals import built_from, new_kernel, run_cells


def build(keras, net):
    return built_from(run_cells(new_kernel(keras, net, port=False, wiring="encoder_call")))


def build_keras3_port(keras, net):
    return built_from(run_cells(new_kernel(keras, net, port=True, wiring="encoder_call")))
