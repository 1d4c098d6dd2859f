"""A sweep: one base config and settings that each take a list of values.

Every combination of the values is a variant, named by its settings ("training.batch_size=256,
device.xla=autojit"; "" is the base config itself). The plan runs every variant's matrix in the
same interleaved, shuffled rounds, so a drift of the machine falls on every value alike; each
run records its variant, and the report compares the variants side by side.
"""

import itertools

from bench.config import settings as config_module
from bench.errors import UsageError

BASE = ""  # the variant of a plain benchmark: the config as loaded


def parse_axis(text: str) -> tuple:
    """``"training.batch_size=128,256"`` -> ("training.batch_size", ("128", "256"))."""
    setting, equals, values = text.partition("=")
    choices = tuple(value.strip() for value in values.split(",") if value.strip())
    if not equals or not setting.strip() or not choices:
        raise UsageError(
            f"--vary {text!r}: write SETTING=VALUE,VALUE,... (e.g. training.batch_size=128,256)"
        )
    if len(set(choices)) != len(choices):
        raise UsageError(f"--vary {text!r}: a value is given twice")
    return setting.strip(), choices


def variants(axes: list) -> list:
    """Every combination of the axes' values, as variant names, in the order given."""
    settings = [setting for setting, _ in axes]
    if len(set(settings)) != len(settings):
        raise UsageError(f"--vary names a setting twice: {', '.join(settings)}")
    return [
        variant_name(zip(settings, values))
        for values in itertools.product(*(values for _, values in axes))
    ]


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
