"""Training recipes: one YAML file = model + data + optimisation settings.

A recipe is found by NAME (``src/mixformerv2/training/recipes/NAME.yaml``) or by file path::

    description: free text (optional)
    model: mixformerv2-b              # a preset name, or ModelConfig fields,
                                      # optionally on top of a preset: {preset: mixformerv2-s, depth: 2};
                                      # a MixViT teacher: mixvit-b or {architecture: mixvit, ...}
    data:
      datasets:                       # one entry per training dataset
        - {name: got10k, root: data/got10k/train, ratio: 1, kwargs: {split: vottrain}}
      sampler: {...}                  # data.sampling.SamplerConfig fields
      processing: {...}               # data.sampling.ProcessingConfig fields
    train: {...}                      # TrainConfig fields

Unknown or missing keys are reported with the file name. Dataset roots may be left empty in
the file and given on the command line (``--data got10k=/data/got10k/train``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config import ModelConfig, get_preset
from ..errors import ConfigError
from .trainer import TrainConfig

RECIPE_DIR = Path(__file__).with_name("recipes")
_TOP_REQUIRED = ("model", "data", "train")
_TOP_OPTIONAL = ("description",)
_DATA_REQUIRED = ("datasets",)
_DATA_OPTIONAL = ("sampler", "processing")
_DATASET_KEYS = ("name", "root", "ratio", "kwargs")


@dataclass(frozen=True)
class DatasetSpec:
    """One training dataset: reader name (``data.formats.open_dataset``), root, sampling ratio."""

    name: str
    root: str | None = None
    ratio: float = 1.0
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "root": self.root, "ratio": self.ratio, "kwargs": dict(self.kwargs)}


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    model: ModelConfig
    datasets: tuple[DatasetSpec, ...]
    sampler: Mapping[str, Any]
    processing: Mapping[str, Any]
    train: TrainConfig
    description: str = ""

    def data_config(self) -> dict[str, Any]:
        return {
            "datasets": [d.to_dict() for d in self.datasets],
            "sampler": dict(self.sampler),
            "processing": dict(self.processing),
        }

    def with_data_roots(self, roots: Mapping[str, str]) -> "Recipe":
        """Replace the roots of the datasets named in ``roots`` (every entry with that name)."""
        names = {d.name for d in self.datasets}
        unknown = sorted(set(roots) - names)
        if unknown:
            raise ConfigError(
                f"--data names {unknown} are not datasets of recipe {self.name!r} (its datasets: {sorted(names)})"
            )
        datasets = tuple(
            dataclasses.replace(d, root=str(roots[d.name])) if d.name in roots else d for d in self.datasets
        )
        return dataclasses.replace(self, datasets=datasets)

    def check_roots(self) -> None:
        missing = [d.name for d in self.datasets if not d.root]
        if missing:
            raise ConfigError(
                f"recipe {self.name!r}: no root for dataset(s) {missing}; give them on the command line, "
                + " ".join(f"--data {n}=/path/to/{n}" for n in missing)
            )
        absent = [f"{d.name}: {d.root}" for d in self.datasets if not Path(d.root).exists()]
        if absent:
            raise ConfigError(f"recipe {self.name!r}: dataset root(s) not found: {'; '.join(absent)}")


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml") or "/" in str(name_or_path):
        raise ConfigError(f"recipe file not found: {path}")
    builtin = RECIPE_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    raise ConfigError(f"unknown recipe {str(name_or_path)!r}; built-in recipes: {', '.join(available_recipes())} "
                      "(or give the path of a YAML file)")


def load_recipe(name_or_path: str | Path) -> Recipe:
    import yaml

    path = resolve_recipe_path(name_or_path)
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}") from None
    return parse_recipe(tree, source=str(path), name=path.stem)


def _keys(section: Any, where: str, required: tuple, optional: tuple = ()) -> Mapping[str, Any]:
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping (got {type(section).__name__})")
    unknown = sorted(set(section) - set(required) - set(optional))
    missing = [k for k in required if k not in section]
    problems = []
    if unknown:
        problems.append(f"unknown keys {unknown}")
    if missing:
        problems.append(f"missing keys {missing}")
    if problems:
        raise ConfigError(f"{where}: {'; '.join(problems)} (allowed: {sorted(required + optional)})")
    return section


def parse_recipe(tree: Any, source: str = "<recipe>", name: str = "recipe") -> Recipe:
    top = _keys(tree, source, _TOP_REQUIRED, _TOP_OPTIONAL)
    model = _parse_model(top["model"], f"{source}: model")
    data = _keys(top["data"] or {}, f"{source}: data", _DATA_REQUIRED, _DATA_OPTIONAL)
    datasets = _parse_datasets(data["datasets"], f"{source}: data.datasets")
    sampler = _settings(data.get("sampler"), f"{source}: data.sampler", "SamplerConfig")
    processing = _settings(data.get("processing"), f"{source}: data.processing", "ProcessingConfig")
    train_section = top["train"] or {}
    if not isinstance(train_section, Mapping):
        raise ConfigError(f"{source}: train must be a mapping")
    try:
        train = TrainConfig.from_dict(train_section, source=f"{source}: train")
    except TypeError as exc:
        raise ConfigError(f"{source}: train: {exc}") from None
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(source) else f"{source}: {msg}") from None
    for key, want in _network_inputs(model).items():
        if key in processing and processing[key] != want:
            raise ConfigError(
                f"{source}: data.processing.{key} is {processing[key]} but the model's {key} is {want}; "
                "the crops must match the network (leave it out to take the model's)"
            )
    return Recipe(name, source, model, datasets, sampler, processing, train, str(top.get("description") or "").strip())


def _network_inputs(model) -> dict[str, Any]:
    """Processing settings the network fixes (the crops' sizes, the motion channels)."""
    return {"template_size": model.template_size, "search_size": model.search_size,
            "motion_input": bool(getattr(model, "motion_input", False))}


def _parse_model(section: Any, where: str):
    """A ModelConfig, or a MixViTConfig for ``architecture: mixvit`` / a MixViT preset name."""
    from ..models.mixvit import MIXVIT_PRESETS, MixViTConfig

    try:
        if isinstance(section, str) and section in MIXVIT_PRESETS:
            return MixViTConfig.from_dict(section)
        if isinstance(section, Mapping) and section.get("architecture", "mixformerv2") == "mixvit":
            return MixViTConfig.from_dict(section)
        if isinstance(section, Mapping) and section.get("architecture", "mixformerv2") != "mixformerv2":
            raise ConfigError(f"unknown architecture {section['architecture']!r} (mixformerv2 or mixvit)")
        if isinstance(section, str):
            return get_preset(section).model
        if not isinstance(section, Mapping):
            raise ConfigError("must be a preset name or a mapping of ModelConfig fields")
        fields = dict(section)
        fields.pop("architecture", None)
        preset = fields.pop("preset", None)
        known = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"unknown keys {unknown} (allowed: preset, {', '.join(sorted(known))})")
        if preset is not None:
            return get_preset(preset).model.replace(**fields)
        missing = [k for k in ("embed_dim", "depth", "num_heads", "template_size", "search_size", "feat_sz")
                   if k not in fields]
        if missing:
            raise ConfigError(f"missing keys {missing} (or name a base preset: `preset: mixformerv2-s`)")
        return ModelConfig(**fields)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _parse_datasets(section: Any, where: str) -> tuple[DatasetSpec, ...]:
    if not isinstance(section, list) or not section:
        raise ConfigError(f"{where} must be a non-empty list of {{name, root, ratio, kwargs}}")
    out = []
    for i, entry in enumerate(section):
        here = f"{where}[{i}]"
        _keys(entry, here, ("name",), ("root", "ratio", "kwargs"))
        name, root, ratio, kwargs = entry["name"], entry.get("root"), entry.get("ratio", 1), entry.get("kwargs") or {}
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{here}: name must be a reader name such as got10k, lasot, trackingnet, coco, folder")
        if root is not None and not isinstance(root, str):
            raise ConfigError(f"{here}: root must be a path or empty (got {root!r})")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            raise ConfigError(f"{here}: ratio must be a positive number (got {ratio!r})")
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"{here}: kwargs must be a mapping (got {kwargs!r})")
        out.append(DatasetSpec(name, root, float(ratio), dict(kwargs)))
    return tuple(out)


def _settings(section: Any, where: str, class_name: str) -> dict[str, Any]:
    """Sampler/processing settings; checked against the dataclass when the data layer has one."""
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    cls = _data_class(class_name)
    if cls is not None and dataclasses.is_dataclass(cls):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (allowed: {sorted(known)})")
    return dict(section)


def _data_class(name: str):
    try:
        from ..data import sampling
    except ImportError:
        return None
    return getattr(sampling, name, None)


def parse_assignments(items: list[str] | None, option: str, value: str = "PATH") -> dict[str, str]:
    """``['name=value', ...]`` given to ``option`` -> {'name': 'value'} (the value may hold '=')."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, root = item.partition("=")
        if not sep or not name.strip() or not root.strip():
            raise ConfigError(f"{option} expects NAME={value} (got {item!r})")
        out[name.strip()] = root.strip()
    return out


def parse_data_overrides(items: list[str] | None) -> dict[str, str]:
    """``['got10k=/data/got10k/train', ...]`` -> {'got10k': '/data/got10k/train'}."""
    return parse_assignments(items, "--data", "ROOT")


def build_dataset(recipe: Recipe):
    """Open the recipe's datasets and wrap them in a ``data.sampling.TrackingSampler``."""
    from ..data.formats import open_dataset
    from ..data.sampling import ProcessingConfig, SamplerConfig, TrackingSampler

    recipe.check_roots()
    readers = [open_dataset(d.name, d.root, **dict(d.kwargs)) for d in recipe.datasets]
    try:
        sampler_cfg = SamplerConfig(**dict(recipe.sampler))
        known = {f.name for f in dataclasses.fields(ProcessingConfig)} if dataclasses.is_dataclass(ProcessingConfig) \
            else set()
        # crops made for the network by default
        defaults = {k: v for k, v in _network_inputs(recipe.model).items() if k in known}
        processing_cfg = ProcessingConfig(**{**defaults, **dict(recipe.processing)})
    except TypeError as exc:
        raise ConfigError(f"{recipe.source}: data settings: {exc}") from None
    return TrackingSampler(readers, [d.ratio for d in recipe.datasets], sampler_cfg, processing_cfg,
                           seed=recipe.train.seed)
