"""The λ contract: the five loss weights' names, defaults, trained ranges and normalizers, and the `lambdas` section of
config.json that carries them from a training run to the generator, the pipeline, the CLI and the app's sliders.

Every other module takes these from here or from a model's config.json; none types them again.
"""
import math
import warnings
from dataclasses import dataclass

from .checks import checked_number

LAMBDA_NAMES = ("content", "style", "tv", "adv", "cycle")
# What a new training run starts from; a trained model's own values live in its config.json.
TRAINING_DEFAULTS = {"content": 1.0, "style": 3.0, "tv": 0.1, "adv": 0.1, "cycle": 0.5}
TRAINING_RANGES = {"content": (0.1, 10.0), "style": (0.3, 30.0), "tv": (0.01, 1.0), "adv": (0.001, 1.0), "cycle": (0.001, 5.0)}
# Hinge logits of a spectrally normalized D are O(1) by construction and their mean hovers near 0,
# so a running average would be a poor scale: the adversarial term keeps a fixed normalizer of 1.
FIXED_NORMALIZERS = {"adv": 1.0}
SAMPLING = "log-uniform per example"
OBJECTIVE = "sum_k lambda_k * L_k / normalizer_k, divided by sum_k lambda_k"
LEGACY_KEYS = {"normalisers": "normalizers"}  # config.json written before the spelling was settled


@dataclass(frozen=True)
class LambdaSpec:
    """defaults and ranges per λ name; normalizers: each loss term's scale at training time (empty before step 1)."""

    defaults: dict[str, float]
    ranges: dict[str, tuple[float, float]]
    normalizers: dict[str, float]

    @classmethod
    def for_training(cls, defaults: dict[str, float] | None = None, ranges: dict | None = None) -> "LambdaSpec":
        """A new run's spec; ValueError when a default lies outside its range."""
        spec = cls({**TRAINING_DEFAULTS, **(defaults or {})},
                   {n: tuple(map(float, r)) for n, r in {**TRAINING_RANGES, **(ranges or {})}.items()}, {})
        problem = spec.problem(need_normalizers=False)
        if problem:
            raise ValueError(problem)
        return spec

    @classmethod
    def from_config(cls, section) -> "LambdaSpec":
        """The `lambdas` section of a config.json; ValueError naming the first thing that is wrong."""
        if not isinstance(section, dict):
            raise ValueError("no 'lambdas' section")
        section = {LEGACY_KEYS.get(k, k): v for k, v in section.items()}
        for part in ("defaults", "ranges", "normalizers"):
            values = section.get(part)
            if not isinstance(values, dict):
                raise ValueError(f"no 'lambdas.{part}'")
            missing = [n for n in LAMBDA_NAMES if n not in values]
            if missing:
                raise ValueError(f"'lambdas.{part}' lacks {', '.join(missing)}")
        ranges = section["ranges"]
        for name in LAMBDA_NAMES:
            if not (isinstance(ranges[name], list) and len(ranges[name]) == 2 and all(map(_positive, ranges[name]))):
                raise ValueError(f"'lambdas.ranges.{name}' must be [low, high] with 0 < low <= high")
        spec = cls({n: section["defaults"][n] for n in LAMBDA_NAMES}, {n: tuple(ranges[n]) for n in LAMBDA_NAMES},
                   {n: section["normalizers"][n] for n in LAMBDA_NAMES})
        problem = spec.problem(need_normalizers=True)
        if problem:
            raise ValueError(problem)
        return spec

    def problem(self, need_normalizers: bool) -> str | None:
        for name in LAMBDA_NAMES:
            lo, hi = self.ranges[name]
            if not (_positive(lo) and _positive(hi) and lo <= hi):
                return f"'lambdas.ranges.{name}' must be [low, high] with 0 < low <= high"
            if not (_positive(self.defaults[name]) and lo <= self.defaults[name] <= hi):
                return f"'lambdas.defaults.{name}' ({self.defaults[name]}) must lie in its range [{lo:g}, {hi:g}]"
            if need_normalizers and not _positive(self.normalizers.get(name)):
                return f"'lambdas.normalizers.{name}' must be a positive number"
        return None

    def to_config(self) -> dict:
        return {"names": list(LAMBDA_NAMES), "defaults": dict(self.defaults), "ranges": {n: list(r) for n, r in self.ranges.items()},
                "sampling": SAMPLING, "normalizers": dict(self.normalizers), "objective": OBJECTIVE}

    def with_normalizers(self, normalizers: dict[str, float]) -> "LambdaSpec":
        return LambdaSpec(self.defaults, self.ranges, dict(normalizers))

    def resolve(self, overrides: dict | None = None) -> list[float]:
        """The defaults overridden by `overrides`, in LAMBDA_NAMES order; out-of-range values clamped with a warning."""
        if overrides is not None and not isinstance(overrides, dict):
            raise ValueError(f"lambdas must be a dict of weights by name, such as {{'style': 3.0}}; got {overrides!r}")
        values = dict(self.defaults)
        unknown = set(overrides or {}) - set(LAMBDA_NAMES)
        if unknown:
            raise ValueError(f"unknown lambda(s) {sorted(unknown)}; expected some of {list(LAMBDA_NAMES)}")
        for name, value in (overrides or {}).items():
            lo, hi = self.ranges[name]
            value = checked_number(value, f"lambda_{name}")
            if not lo <= value <= hi:
                clamped = min(max(value, lo), hi)
                warnings.warn(f"lambda_{name}={value:g} is outside the trained range [{lo:g}, {hi:g}]; using {clamped:g}", stacklevel=4)
                value = clamped
            values[name] = value
        return [values[n] for n in LAMBDA_NAMES]

    def sample(self, uniform) -> list[float]:
        """Log-uniform per weight within its range (YOTO); `uniform()` draws from U[0, 1)."""
        return [math.exp(math.log(lo) + uniform() * (math.log(hi) - math.log(lo))) for lo, hi in (self.ranges[n] for n in LAMBDA_NAMES)]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def log_normalization(ranges: dict) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Center and half-width of each trained log range: the networks map log λ through them to about [-1, 1], so each
    slider spans the same input range."""
    logs = [(math.log(ranges[n][0]), math.log(ranges[n][1])) for n in LAMBDA_NAMES]
    return tuple((lo + hi) / 2 for lo, hi in logs), tuple(max((hi - lo) / 2, 1e-3) for lo, hi in logs)
