"""The report's figures, one PNG each in the results folder; each function returns its path.

Each figure is meant to be read without the report: title, axis labels with units, legend. Every
PNG is written with a palette of at most 256 colours (the figures are flat colours, text and grey
digits, which 256 colours hold without visible loss), and the pictures of each run (latent space,
reconstructions, decoded grid: a panel per run) at a lower resolution than the charts, so that
report.html, which embeds them all, stays small enough to mail.
"""

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: the report runs on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402
from PIL import Image  # noqa: E402

from bench import recipes  # noqa: E402
from vae_impls import registry  # noqa: E402
from vae_impls.keras_api import APIS, PORT_API, floor_api  # noqa: E402

API_MARKERS = dict(zip(APIS, "osD"))
API_LINESTYLES = dict(zip(APIS, ("-", "--", ":")))
COMPAT_COLOURS = {
    "works": "#7fc97f",
    "port": "#80b1d3",
    "fails": "#f4746b",
    "n/a": "#d9d9d9",
    "unknown": "#ffffff",
}


def recipe_colour(recipe: str):
    """The same colour for a recipe in every figure."""
    return plt.get_cmap("tab10")(recipes.order_key(recipe)[0] % 10)


CHART_DPI = 110
# The per-run pictures hold a panel per run: at the charts' resolution a full matrix's latent grid
# alone is megabytes. At this one a decoded digit still spans ~20 pixels.
PICTURE_DPI = 80
PALETTE_COLOURS = 256
SUPTITLE_INCHES = 0.45  # kept free above the panels for a figure's title


def _save(fig, folder, name: str, dpi: int = CHART_DPI) -> Path:
    path = Path(folder) / name
    # tight_layout alone lets the panels of a tall figure run into its title
    title_room = SUPTITLE_INCHES / fig.get_figheight() if fig.get_suptitle() else 0
    fig.tight_layout(rect=(0, 0, 1, 1 - title_room))
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=dpi)
    plt.close(fig)
    _write_palette_png(rendered, path)
    return path


def _write_palette_png(rendered: io.BytesIO, path: Path) -> None:
    """The rendered PNG as a palette PNG at ``path``: a quarter or less of the bytes of the RGBA
    one. No dithering: it would speckle flat colours and cost bytes."""
    rendered.seek(0)
    with Image.open(rendered) as image:
        palette = image.convert("RGB").quantize(
            PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
    palette.save(path, format="PNG", optimize=True)


def _legend(ax, **options) -> None:
    if ax.get_legend_handles_labels()[0]:  # a folder without epochs leaves a panel empty
        ax.legend(**options)


def _short(text: str, width: int = 34) -> str:
    text = str(text).splitlines()[0] if str(text) else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_gap(ratios, process_ratios, compat, folder) -> Path:
    """Each recipe x API's step time relative to plain_ae with its CI and the per-process ratios
    beside it; recipes that did not run are marked."""
    shown = compat[
        (compat.observed != "") & (compat.recipe != registry.FLOOR)
    ]  # the floor is the 1 line
    recipe_names = list(dict.fromkeys(shown.recipe))
    apis = list(dict.fromkeys(shown.api))
    fig, ax = plt.subplots(figsize=(max(9, 1.3 * len(recipe_names) + 3), 5))
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label=f"floor: {registry.FLOOR} = 1")
    # x in data units, y as a fraction of the axes: markers for missing runs sit at the bottom edge
    bottom = blended_transform_factory(ax.transData, ax.transAxes)
    width = 0.8 / max(len(apis), 1)
    floor_points = process_ratios[process_ratios.compared_with == registry.FLOOR]
    for offset, api in enumerate(apis):
        x_of = {recipe: i - 0.4 + width * (offset + 0.5) for i, recipe in enumerate(recipe_names)}
        rows = ratios[(ratios.api == api) & ratios.recipe.isin(x_of)]
        errors = np.nan_to_num([rows.ratio - rows.ci_low, rows.ci_high - rows.ratio])
        drawn = ax.errorbar(
            [x_of[r] for r in rows.recipe],
            rows.ratio,
            yerr=errors,
            fmt=API_MARKERS.get(api, "o"),
            capsize=4,
            label=f"{api} (ratio, 95% CI)",
        )
        points = floor_points[(floor_points.api == api) & floor_points.recipe.isin(x_of)]
        ax.scatter(
            [x_of[r] + width / 4 for r in points.recipe],
            points.ratio,
            s=8,
            alpha=0.6,
            color=drawn[0].get_color(),
            label=f"{api}: one process" if len(points) else None,
        )
        for row in shown[(shown.api == api) & (shown.observed != "ok")].itertuples():
            ax.plot(x_of[row.recipe], 0.04, "x", color="red", markersize=8, mew=2, transform=bottom)
            label = "fails" if row.observed == "failed" else row.observed
            ax.text(
                x_of[row.recipe],
                0.08,
                f"{api}: {label}",
                transform=bottom,
                ha="center",
                va="bottom",
                rotation=90,
                fontsize=7,
                color="red",
            )
    ax.set_ylim(bottom=min(0.8, ax.get_ylim()[0]))  # room below the floor line for the red markers
    ax.set_xticks(range(len(recipe_names)), recipe_names, rotation=20, ha="right")
    ax.set_ylabel(
        f"step time relative to {registry.FLOOR} (same API; {PORT_API}: {floor_api(PORT_API)})"
    )
    ax.set_title("Cost of each KL recipe: step time ratio to the plain autoencoder")
    ax.legend(
        fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1)
    )  # beside the points, never on them
    return _save(fig, folder, "gap.png")


def plot_claims(claim_rows, folder) -> Path:
    """Each claim of the posts: our ratio with its 95% CI and the interval its verdict was (or
    would be) decided on, against the claimed range, its margin drawn lighter on either side."""
    labels = [
        f"{row.claim.recipe} / {row.claim.baseline}\n({row.api}, post {row.claim.post})"
        for row in claim_rows.itertuples()
    ]
    fig, ax = plt.subplots(figsize=(8, 1 + 0.55 * max(len(labels), 1)))
    for y, row in enumerate(claim_rows.itertuples()):
        _claimed_band(ax, y, row, first=y == 0)
        _our_intervals(ax, y, row, first=y == 0)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("step time ratio (recipe / baseline)")
    ax.set_title("The posts' claims against our measurement")
    _legend(ax, fontsize=8, loc="best")
    return _save(fig, folder, "claims.png")


def _claimed_band(ax, y: int, row, first: bool) -> None:
    """The claimed range, and lighter around it the margin the verdict widens it by."""
    claim = row.claim
    high = claim.high if math.isfinite(claim.high) else max(claim.low * 2, row.ci_high)
    band = {"color": "orange", "linewidth": 9, "solid_capstyle": "butt"}
    ax.plot(
        [claim.low - claim.margin, high + claim.margin],
        [y, y],
        alpha=0.15,
        label="± its margin" if first else None,
        **band,
    )
    ax.plot([claim.low, high], [y, y], alpha=0.4, label="claimed range" if first else None, **band)


def _our_intervals(ax, y: int, row, first: bool) -> None:
    """Our ratio with its 95% CI, over the interval its verdict was (or would be) decided on."""
    if math.isfinite(row.verdict_low):
        ax.plot(
            [row.verdict_low, row.verdict_high],
            [y, y],
            color="grey",
            linewidth=1.5,
            label="the verdict's interval" if first else None,
        )
    ax.errorbar(
        [row.ratio],
        [y],
        xerr=np.nan_to_num([[row.ratio - row.ci_low], [row.ci_high - row.ratio]]),
        fmt="o",
        color="black",
        capsize=4,
        label="ours (95% CI)" if first else None,
    )


def plot_sweep(ratios, variants: list, folder) -> Path:
    """Each recipe x API's ratio to the floor (95% CI) at each variant of a sweep."""
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(variants)), 5))
    positions = {variant: index for index, variant in enumerate(variants)}
    for (recipe, api), rows in ratios.groupby(["recipe", "api"], sort=False):
        rows = rows.sort_values("variant", key=lambda column: column.map(positions))
        ax.errorbar(
            rows.variant.map(positions),
            rows.ratio,
            fmt=API_MARKERS.get(api, "o"),
            yerr=np.nan_to_num([rows.ratio - rows.ci_low, rows.ci_high - rows.ratio]),
            capsize=4,
            linestyle=API_LINESTYLES.get(api, "-"),
            color=recipe_colour(recipe),
            label=f"{recipe} ({api})",
        )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label=f"floor: {registry.FLOOR} = 1")
    ax.set_xticks(
        range(len(variants)), [variant.replace(",", "\n") for variant in variants], fontsize=8
    )
    ax.set_ylabel(f"step time relative to {registry.FLOOR}")
    ax.set_title("Does each gap survive the setting? Ratio to the floor per variant")
    _legend(ax, fontsize=7, loc="best")
    return _save(fig, folder, "sweep.png")


def _median_over_repeats(epochs, column):
    """Per recipe x API x epoch: median of ``column`` over repeats, warm-up flag kept."""
    return (
        epochs.groupby(["recipe", "api", "epoch"], sort=False)
        .agg(value=(column, "median"), warmup=("warmup", "any"))
        .reset_index()
    )


def plot_epoch_times(epochs, folder) -> Path:
    """Seconds per epoch per recipe (median over repeats), one panel per API, warm-up epochs
    marked."""
    medians = _median_over_repeats(epochs, "seconds")
    apis = [api for api in APIS if api in set(medians.api)] or ["(no epochs)"]
    fig, axes = plt.subplots(
        1, len(apis), figsize=(5.5 * len(apis), 4.5), sharey=True, squeeze=False
    )
    for ax, api in zip(axes[0], apis):
        panel = medians[medians.api == api]
        warmup_epochs = panel.epoch[panel.warmup]
        if len(warmup_epochs):
            ax.axvspan(
                warmup_epochs.min() - 0.5,
                warmup_epochs.max() + 0.5,
                color="grey",
                alpha=0.2,
                label="warm-up (not timed)",
            )
        for recipe, curve in panel.groupby("recipe", sort=False):
            ax.plot(curve.epoch, curve.value, marker="o", color=recipe_colour(recipe), label=recipe)
        ax.set_title(api)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _legend(ax, fontsize=7)
    axes[0][0].set_ylabel("seconds per epoch (median over repeats)")
    fig.suptitle("Epoch times")
    return _save(fig, folder, "epoch_times.png")


def plot_loss_curves(epochs, folder) -> Path:
    """Total loss, BCE and KL per recipe x API across epochs (median over repeats)."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, column, title in zip(
        axes, ("loss", "bce", "kl"), ("total loss", "reconstruction (BCE)", "KL")
    ):
        medians = _median_over_repeats(epochs, column)
        for (recipe, api), curve in medians.groupby(["recipe", "api"], sort=False):
            ax.plot(
                curve.epoch,
                curve.value,
                color=recipe_colour(recipe),
                linestyle=API_LINESTYLES.get(api, "-"),
                label=f"{recipe} ({api})",
            )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{title}, epoch mean (per image)")
    _legend(axes[0], fontsize=7)
    fig.suptitle("Training curves (median over repeats; plain_ae has no KL term)")
    return _save(fig, folder, "loss_curves.png")


def plot_compat(compat, folder) -> Path:
    """Recipe x API matrix: works / fails (with the error) / port / n/a."""
    recipes = list(dict.fromkeys(compat.recipe))
    apis = list(dict.fromkeys(compat.api))
    kinds = list(COMPAT_COLOURS)
    codes = np.zeros((len(recipes), len(apis)))
    fig, ax = plt.subplots(figsize=(3.2 * len(apis) + 2.5, 0.6 * len(recipes) + 1.8))
    for row in compat.itertuples():
        i, j = recipes.index(row.recipe), apis.index(row.api)
        codes[i, j] = kinds.index(row.cell) if row.cell in kinds else kinds.index("unknown")
        text = row.cell + (f"\n{_short(row.error)}" if row.error else "")
        if row.observed not in ("", "ok", "failed"):
            text += f"\n({row.observed})"
        ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.imshow(
        codes,
        cmap=ListedColormap(list(COMPAT_COLOURS.values())),
        vmin=0,
        vmax=len(kinds) - 1,
        aspect="auto",
    )
    ax.set_xticks(range(len(apis)), apis)
    ax.set_yticks(range(len(recipes)), recipes)
    ax.set_xlabel("Keras API")
    ax.legend(
        handles=[
            Patch(color=colour, label=kind)
            for kind, colour in COMPAT_COLOURS.items()
            if kind != "unknown"
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=8,
    )
    ax.set_title("Which recipe runs on which Keras API (registry, overridden by observed failures)")
    return _save(fig, folder, "compat.png")


def _panels(count: int, size: float):
    """A figure with ``count`` panels, at most 4 a row; returns (figure, the used axes)."""
    columns = min(count, 4)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat[:count]


def plot_latent(artifacts, folder):
    """Latent means of test digits coloured by label, one panel per artifact run; None without
    artifacts."""
    if not artifacts:
        return None
    fig, axes = _panels(len(artifacts), 4.5)
    for ax, (label, data) in zip(axes, artifacts):
        points = ax.scatter(
            data["latent_mu"][:, 0],
            data["latent_mu"][:, 1],
            c=data["latent_labels"],
            cmap="tab10",
            s=4,
            vmin=-0.5,
            vmax=9.5,
        )
        fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("z[0] (latent mean)")
        ax.set_ylabel("z[1] (latent mean)")
    fig.suptitle("Latent space of test digits (z_dim = 2)")
    return _save(fig, folder, "latent.png", PICTURE_DPI)


def plot_reconstructions(artifacts, folder):
    """Originals above their reconstructions, per artifact run; None without artifacts."""
    if not artifacts:
        return None
    fig, axes = plt.subplots(
        2 * len(artifacts), 1, figsize=(10, 1.6 * 2 * len(artifacts)), squeeze=False
    )
    for index, (label, data) in enumerate(artifacts):
        for ax, key in zip(axes[2 * index : 2 * index + 2, 0], ("originals", "reconstructions")):
            ax.imshow(
                np.hstack(list(data[key][:10])),
                cmap="gray",
                vmin=0,
                vmax=1,
                interpolation="nearest",  # a digit's own pixels, enlarged: sharp and small
            )
            ax.set_title(f"{label}: {key}", fontsize=9)
            ax.axis("off")
    fig.suptitle("Test digits and their reconstructions")
    return _save(fig, folder, "reconstructions.png", PICTURE_DPI)


def _tile(images: np.ndarray) -> np.ndarray:
    """g*g images in row-major order -> one (g*28, g*28) image, the first row at the top."""
    side = int(round(np.sqrt(len(images))))
    rows = [np.hstack(list(images[r * side : (r + 1) * side])) for r in range(side)]
    return np.vstack(rows)


def plot_latent_grid(artifacts, folder):
    """Digits decoded from a grid of latent points, per artifact run; None without artifacts."""
    if not artifacts:
        return None
    fig, axes = _panels(len(artifacts), 4.5)
    for ax, (label, data) in zip(axes, artifacts):
        xmin, xmax, ymin, ymax = data["grid_extent"]
        ax.imshow(_tile(data["grid_images"]), cmap="gray", extent=(xmin, xmax, ymin, ymax))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("z[0]")
        ax.set_ylabel("z[1]")
    fig.suptitle("Decoder output over a grid of latent points")
    return _save(fig, folder, "latent_grid.png", PICTURE_DPI)
