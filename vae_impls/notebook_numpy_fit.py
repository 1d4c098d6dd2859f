"""Post VII's class-free ``model.add_loss()`` notebook, trained on numpy arrays as the post does.

A reading of the notebook that post VII ("A strange performance problem when no class is used")
describes only in words; ``notebook_globals`` lists the readings. The VAE is ``notebook_globals``'s,
cell for cell. What differs is the data: the post calls ``vae.fit(x_train, x_train,
batch_size=..., shuffle=True)`` on numpy arrays, and Keras then builds its own input pipeline
from the arrays, reshuffled each epoch; every other recipe gets the harness' tf.data pipeline.
``Built.fit_on_arrays`` asks the harness for the post's call.

Keras 3: as ``notebook_globals``, the cells raise as written; the port trains the port cells on
numpy arrays.
"""

from dataclasses import replace

from vae_impls import notebook_globals


def build(keras, net):
    return replace(notebook_globals.build(keras, net), fit_on_arrays=True)


def build_keras3_port(keras, net):
    return replace(notebook_globals.build_keras3_port(keras, net), fit_on_arrays=True)
