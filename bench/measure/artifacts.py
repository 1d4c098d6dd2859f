"""Pictures of what a run learned: its latent space and a few reconstructions, as the posts show.

Taken once every timing of the process is done, so that predicting never runs between timed
steps; a problem here leaves the run's timing valid and is told in its error.
"""

from dataclasses import replace
from pathlib import Path

from bench.errors import summarize_exception
from bench.results.records import RunResult

ARTIFACT_SAMPLES = 2000  # test digits whose latent means are pictured
ARTIFACT_DIGITS = 10  # originals shown beside their reconstructions
GRID_SIZE = 15  # decoded images per side of the latent-space grid


def save_artifacts_or_say_why(result: RunResult, built, data, path) -> RunResult:
    """``result`` naming the pictures saved at ``path``, or saying why none were."""
    try:
        save_artifacts(built, data, Path(path))
        return replace(result, artifacts=path)
    except Exception as error:
        return replace(result, error=f"artifacts not saved: {summarize_exception(error)}")


def save_artifacts(built, data, path: Path) -> None:
    """The latent means of test digits, a few originals and their reconstructions, and a grid
    decoded across the latent space, in one npz file that appears whole or not at all."""
    import numpy as np

    def predict(model, inputs):
        return np.asarray(model.predict(inputs, batch_size=256, verbose=0), dtype=np.float32)

    images, labels = data.x_test[:ARTIFACT_SAMPLES], data.y_test[:ARTIFACT_SAMPLES]
    latent = predict(built.mean_encoder, images)
    originals = data.x_test[:ARTIFACT_DIGITS]
    reconstructions = predict(built.decoder, predict(built.mean_encoder, originals))
    extent = np.array(
        [latent[:, 0].min(), latent[:, 0].max(), latent[:, 1].min(), latent[:, 1].max()], np.float32
    )
    xs = np.linspace(extent[0], extent[1], GRID_SIZE)
    ys = np.linspace(extent[3], extent[2], GRID_SIZE)  # top row of the picture = largest y
    grid = np.array([(x, y) for y in ys for x in xs], np.float32)
    grid_images = predict(built.decoder, grid)[..., 0]  # GRID_SIZE**2 digits in row-major order
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(
        partial,
        latent_mu=latent,
        latent_labels=labels,
        originals=originals[..., 0],
        reconstructions=reconstructions[..., 0],
        grid_images=grid_images,
        grid_extent=extent,
    )
    partial.replace(path)
