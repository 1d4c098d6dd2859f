"""The KL-loss recipes of the "Variational Autoencoder with Tensorflow" posts, one module each.

Every recipe builds the same convolutional VAE (``vae_impls.network``) and minimizes the same
objective (``vae_impls.objective``); they differ only in how the KL term reaches the optimizer.
``vae_impls.registry`` lists them. Nothing here imports the ``bench`` harness.
"""
