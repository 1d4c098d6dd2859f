"""A sweep: one base config and settings that each take a list of values.

Every combination of the values is a variant, named by its settings ("training.batch_size=256,
device.xla=autojit"; "" is the base config itself). The plan runs every variant's matrix in the
same interleaved, shuffled rounds, so a drift of the machine falls on every value alike; each
run records its variant, and the report compares the variants side by side.
"""

import itertools
import math
import re

from bench.config import plan
from bench.config import settings as config_module
from bench.errors import UsageError, quoted

BASE = ""  # the variant of a plain benchmark: the config as loaded


def parse_axis(text: str) -> tuple:
    """``"training.batch_size=128,256"`` -> ("training.batch_size", ("128", "256"))."""
    setting, equals, values = text.partition("=")
    setting = setting.strip()
    choices = tuple(value.strip() for value in values.split(",") if value.strip())
    if not equals or not re.fullmatch(r"[\w.]+", setting) or not choices:
        raise UsageError(
            f"--vary {quoted(text)}: write SETTING=VALUE,VALUE,... "
            f"(e.g. training.batch_size=128,256)"
        )
    if len(set(choices)) != len(choices):
        raise UsageError(f"--vary {quoted(text)}: a value is given twice")
    return setting, choices


def checked_variants(base, texts: list) -> list:
    """The variants of the ``--vary`` texts on ``base``, each one's config checked. The plan's
    size (``plan.MAX_PLANNED_RUNS``) is checked first, from the number of combinations alone:
    a sweep too large to run is refused before any of its variants is made or checked."""
    axes = [parse_axis(text) for text in texts]
    _check_settings_named_once(axes)
    plan.check_plan_size(base.matrix, math.prod(len(values) for _, values in axes))
    names = variants(axes)
    for name in names:
        config_of(base, name)
    return names


def variants(axes: list) -> list:
    """Every combination of the axes' values, as variant names, in the order given."""
    _check_settings_named_once(axes)
    settings = [setting for setting, _ in axes]
    return [
        variant_name(zip(settings, values))
        for values in itertools.product(*(values for _, values in axes))
    ]


def _check_settings_named_once(axes: list) -> None:
    settings = [setting for setting, _ in axes]
    if len(set(settings)) != len(settings):
        raise UsageError(f"--vary names a setting twice: {quoted(', '.join(settings))}")


def variant_name(settings) -> str:
    return ",".join(f"{setting}={value}" for setting, value in settings)


def settings_of(variant: str) -> list:
    """(setting, value text) pairs of a variant name."""
    return [tuple(item.split("=", 1)) for item in variant.split(",")] if variant else []


def config_of(base, variant: str):
    """The config a run of ``variant`` trains under: the base with the variant's settings."""
    for setting, text in settings_of(variant):
        base = config_module.with_setting(base, setting, text)
    return base
