"""Post VII's notebook in a real Jupyter kernel: the ``notebook_numpy_fit`` reading, run by the
harness as cells of a notebook (``bench/measure/notebook_kernel.ipynb``) in a local IPython kernel.

A reading of the notebook that post VII ("A strange performance problem when no class is used")
describes only in words; ``notebook_globals`` lists the readings. The post suspected the data
handling between the notebook and the graphics card; here everything a kernel adds to a plain
process (its namespace, its message channels and their threads, output capture) is part of the
measurement, and the only difference from ``notebook_numpy_fit``. The registry's ``kernel_of``
tells the harness to run this recipe in a kernel; ``build`` gives the same model, so that the
equivalence tests check what the kernel trains.
"""

from vae_impls import notebook_numpy_fit

build = notebook_numpy_fit.build
build_keras3_port = notebook_numpy_fit.build_keras3_port
