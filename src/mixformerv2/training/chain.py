"""Chains: several training stages run one after another, each starting from earlier ones.

A chain is a YAML file (built-in by NAME in ``training/recipes/chains/``, or a path)::

    description: free text
    inputs: {teacher: null}           # files from outside (``--input teacher=PATH``)
    data: {...}                       # the data section shared by the stages (a recipe's ``data``)
    stages:
      - name: d12                     # folder <out>/1-d12, output <out>/1-d12/model.safetensors
        model: {...}                  # as in a recipe
        train: {stage: dense_to_sparse, teacher: "@teacher", ...}
      - name: d12to8
        model: {...}
        data: {sampler: {mode: trident_pro}}   # optional: merged into the chain's data section
        train: {stage: deep_to_shallow, teacher: "@d12", init_weights: "@d12", remove_layers: [0, 3, 6, 9]}

``@NAME`` in ``train.teacher`` / ``train.init_weights`` is the model of an earlier stage, or an
input. Before anything trains, every stage is checked: references, teacher/student sizes, layer
lists, how each ``init_weights`` fits after its transforms, and — when resuming — that no stage
already in the output folder was made with other settings. Finished stages are skipped, a stage
that was stopped resumes from its last epoch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import ConfigError
from .recipes import RECIPE_DIR, Recipe, _keys, parse_recipe

CHAIN_DIR = RECIPE_DIR / "chains"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REF_KEYS = ("teacher", "init_weights")


@dataclass(frozen=True)
class Chain:
    name: str
    source: str
    stages: tuple[tuple[str, Recipe], ...]
    inputs: Mapping[str, str | None]
    description: str = ""

    def folder(self, out_dir: str | Path, index: int) -> Path:
        return Path(out_dir) / f"{index + 1}-{self.stages[index][0]}"


def available_chains() -> list[str]:
    return sorted(p.stem for p in CHAIN_DIR.glob("*.yaml"))


def load_chain(name_or_path: str | Path) -> Chain:
    import yaml

    path = Path(name_or_path)
    if not path.is_file():
        if path.suffix in (".yaml", ".yml") or "/" in str(name_or_path):
            raise ConfigError(f"chain file not found: {path}")
        path = CHAIN_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown chain {str(name_or_path)!r}; built-in chains: {', '.join(available_chains())} "
                              "(or give the path of a YAML file)")
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read chain {path}: {exc}") from None
    return parse_chain(tree, source=str(path), name=path.stem)


def parse_chain(tree: Any, source: str = "<chain>", name: str = "chain") -> Chain:
    top = _keys(tree, source, ("stages",), ("description", "inputs", "data"))
    inputs = top.get("inputs") or {}
    if not isinstance(inputs, Mapping) or any(not isinstance(v, (str, type(None))) for v in inputs.values()):
        raise ConfigError(f"{source}: inputs must map names to paths (or null)")
    stages_tree = top["stages"]
    if not isinstance(stages_tree, list) or not stages_tree:
        raise ConfigError(f"{source}: stages must be a non-empty list")
    stages: list[tuple[str, Recipe]] = []
    for i, entry in enumerate(stages_tree):
        where = f"{source}: stages[{i}]"
        entry = _keys(entry, where, ("name", "model", "train"), ("data", "description"))
        stage_name = entry["name"]
        if not isinstance(stage_name, str) or not _NAME.match(stage_name):
            raise ConfigError(f"{where}: name must be a plain word (letters, digits, _ . -), got {stage_name!r}")
        if stage_name in inputs or any(stage_name == n for n, _ in stages):
            raise ConfigError(f"{where}: the name {stage_name!r} is used twice (stages and inputs need distinct names)")
        data = _merge(top.get("data"), entry.get("data"))
        if data is None:
            raise ConfigError(f"{where}: no data section (give one for the chain or for this stage)")
        recipe_tree = {"model": entry["model"], "data": data, "train": entry["train"],
                       "description": entry.get("description", "")}
        recipe = parse_recipe(recipe_tree, source=f"{where} ({stage_name})", name=f"{name}/{stage_name}")
        stages.append((stage_name, recipe))
    return Chain(name, source, tuple(stages), dict(inputs), str(top.get("description") or "").strip())


# ------------------------------------------------------------------------------------------------
# references and checks
# ------------------------------------------------------------------------------------------------
def _resolve(chain: Chain, out_dir: Path, inputs: Mapping[str, str | None]) -> list[Recipe]:
    """Recipes with ``@NAME`` references replaced by paths (earlier stage outputs or inputs)."""
    outputs = {n: chain.folder(out_dir, i) / "model.safetensors" for i, (n, _) in enumerate(chain.stages)}
    order = {n: i for i, (n, _) in enumerate(chain.stages)}
    resolved = []
    for i, (stage_name, recipe) in enumerate(chain.stages):
        changes = {}
        for key in _REF_KEYS:
            value = getattr(recipe.train, key)
            if not (isinstance(value, str) and value.startswith("@")):
                continue
            ref = value[1:]
            if ref in order:
                if order[ref] >= i:
                    raise ConfigError(f"chain {chain.name}: stage {stage_name} uses @{ref} as {key}, "
                                      "which is not an earlier stage")
                changes[key] = str(outputs[ref])
            elif ref in inputs:
                if not inputs[ref]:
                    raise ConfigError(f"chain {chain.name}: stage {stage_name} needs the input {ref!r}; "
                                      f"give it with --input {ref}=PATH")
                if not Path(inputs[ref]).is_file():
                    raise ConfigError(f"chain {chain.name}: input {ref}: file not found: {inputs[ref]}")
                changes[key] = str(inputs[ref])
            else:
                raise ConfigError(f"chain {chain.name}: stage {stage_name}: unknown reference @{ref} in {key} "
                                  f"(stages: {', '.join(order)}; inputs: {', '.join(inputs) or 'none'})")
        resolved.append(replace(recipe, train=recipe.train.replace(**changes)) if changes else recipe)
    return resolved


def _meta_model(config):
    from .trainer import build_trainable

    with torch.device("meta"):
        return build_trainable(config)


def _check_init(chain: Chain, index: int, recipe: Recipe, source_config) -> None:
    """Does the stage's ``init_weights`` (an earlier stage's model) fit after its transforms?"""
    from .distill import fit_init_state

    train = recipe.train
    source = _meta_model(source_config).state_dict()
    own = _meta_model(recipe.model).state_dict()
    try:
        fit_init_state(source, own, remove=train.init_remove_layers, slice_mlp_hidden=train.init_slice_mlp,
                       backbone_only=train.init_backbone_only, what=f"stage {chain.stages[index][0]}: init_weights")
    except Exception as exc:  # the checkpoint error names the problem; report it as a config error
        raise ConfigError(str(exc)) from None


def check_chain(chain: Chain, out_dir: str | Path, inputs: Mapping[str, str | None] | None = None) -> list[Recipe]:
    """Resolve and check every stage (no training, no weights loaded); returns the resolved recipes."""
    from .distill import check_distillation, teacher_config

    out_dir = Path(out_dir)
    given = {**chain.inputs, **{k: v for k, v in (inputs or {}).items()}}
    unknown = sorted(set(inputs or {}) - set(chain.inputs))
    if unknown:
        raise ConfigError(f"chain {chain.name} has no input(s) {unknown} (its inputs: {', '.join(chain.inputs) or 'none'})")
    recipes = _resolve(chain, out_dir, given)
    configs = {str(chain.folder(out_dir, i) / "model.safetensors"): r.model for i, r in enumerate(recipes)}
    for i, recipe in enumerate(recipes):
        train = recipe.train
        teacher = None
        if train.teacher:
            teacher = configs.get(train.teacher)
            if teacher is None:
                teacher = teacher_config(train.stage, train.teacher, train.teacher_model)
        try:
            check_distillation(recipe.model, teacher, train)
        except ConfigError as exc:
            raise ConfigError(f"chain {chain.name}: stage {chain.stages[i][0]}: {exc}") from None
        if train.init_weights in configs:
            _check_init(chain, i, recipe, configs[train.init_weights])
    return recipes


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------
def run_chain(
    chain: Chain | str | Path,
    out_dir: str | Path,
    *,
    data_roots: Mapping[str, str] | None = None,
    inputs: Mapping[str, str | None] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Run the stages in order (skipping finished ones); returns each stage's model path."""
    from .trainer import Trainer, build_trainable, distributed_env, find_last_checkpoint, seed_everything
    from .recipes import build_dataset

    if not isinstance(chain, Chain):
        chain = load_chain(chain)
    out_dir = Path(out_dir)
    recipes = check_chain(chain, out_dir, inputs)
    if data_roots:
        known = {d.name for r in recipes for d in r.datasets}
        unknown = sorted(set(data_roots) - known)
        if unknown:
            raise ConfigError(f"--data names {unknown} are not datasets of chain {chain.name} (its datasets: {sorted(known)})")
        recipes = [_with_roots(r, data_roots) for r in recipes]
    for r in recipes:
        r.check_roots()
    if workers is not None:
        recipes = [replace(r, train=r.train.replace(workers=workers)) for r in recipes]

    def trainer_for(i: int, recipe: Recipe, model) -> Trainer:
        folder = chain.folder(out_dir, i)
        again = folder.is_dir() and any(folder.iterdir()) and not overwrite
        return Trainer(model, lambda r=recipe: build_dataset(r), recipe.train, folder, device=device,
                       resume=again and resume, overwrite=overwrite, data_config=recipe.data_config(),
                       extra_config={"chain": {"name": chain.name, "stage": chain.stages[i][0]}}, progress=progress)

    # every stage already in the folder must be the same run (checked before anything trains)
    for i, recipe in enumerate(recipes):
        folder = chain.folder(out_dir, i)
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            if not resume:
                raise ConfigError(f"{out_dir} already holds stages of this chain ({folder.name} ...); "
                                  "pass --resume to continue, or --overwrite to start over")
            trainer = trainer_for(i, recipe, _meta_model(recipe.model))
            trainer.dist = distributed_env()
            try:
                trainer._check_out_dir()
            except ConfigError as exc:
                raise ConfigError(f"chain {chain.name}: stage {chain.stages[i][0]}: {exc}") from None

    paths = []
    info = distributed_env()
    for i, recipe in enumerate(recipes):
        folder = chain.folder(out_dir, i)
        model_path = folder / "model.safetensors"
        found = find_last_checkpoint(folder / "checkpoints")
        if not overwrite and model_path.is_file() and found and found[1]["epoch"] >= recipe.train.epochs:
            if info.is_main:
                print(f"stage {i + 1}/{len(recipes)} {chain.stages[i][0]}: done ({model_path})")
            paths.append(model_path)
            continue
        if info.is_main:
            print(f"stage {i + 1}/{len(recipes)} {chain.stages[i][0]}: {recipe.train.stage}, "
                  f"{recipe.train.epochs} epochs -> {folder}")
        seed_everything(recipe.train.seed + info.rank)
        trainer = trainer_for(i, recipe, build_trainable(recipe.model))
        result = trainer.fit()
        paths.append(result.model_path or model_path)
    return paths


def _merge(base: Any, override: Any) -> Any:
    """A stage's data section on top of the chain's: mappings merge key by key, the rest replaces."""
    if override is None:
        return base
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override


def _with_roots(recipe: Recipe, roots: Mapping[str, str]) -> Recipe:
    names = {d.name for d in recipe.datasets}
    return recipe.with_data_roots({k: v for k, v in roots.items() if k in names})
