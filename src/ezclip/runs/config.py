"""Finding and composing the Hydra configs; building the objects a config names.

`conf/` and `experiments/` live at the root of a clone of the repository, which an editable
install (`pip install -e .`, `make install`) runs from. Installed otherwise (a wheel), ezclip
finds them through `EZCLIP_CONF` and `EZCLIP_EXPERIMENTS`, or says to run from a clone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_CLONE = Path(__file__).resolve().parents[3]  # src/ezclip/runs/config.py -> the repository root


def _resource_dir(name: str, env: str, marker: str) -> Path:
    """`$env`, else `<clone>/<name>`, if it holds `marker`; else a FileNotFoundError saying what to do."""
    folder = Path(os.environ[env]) if os.environ.get(env) else _CLONE / name
    if (folder / marker).exists():
        return folder
    raise FileNotFoundError(
        f"ezclip's {name}/ folder was not found at {folder}: ezclip runs from a clone of its repository "
        f"(git clone, then `make install` or `pip install -e .`); or set {env} to a copy of {name}/"
    )


def config_dir() -> Path:
    """The Hydra config folder (`conf/`)."""
    return _resource_dir("conf", "EZCLIP_CONF", "train.yaml")


def experiments_dir() -> Path:
    """The paper tables' folder (`experiments/`: expected numbers, sweeps, READMEs)."""
    return _resource_dir("experiments", "EZCLIP_EXPERIMENTS", "table1")


def register_resolvers() -> None:
    """`${run_id:}`: six random hex digits, the same everywhere in one config (run folder names)."""
    import secrets

    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: secrets.token_hex(3), use_cache=True)


def hydra_main(task: Callable[[Any], Any], config_name: str) -> Any:
    """Run `task(cfg)` as a Hydra app on `conf/<config_name>.yaml` with the command line's overrides.

    A config that cannot run (ConfigError) ends the program with its one-line message, no traceback.
    """
    import functools

    import hydra

    from ezclip.runs.checks import ConfigError

    @functools.wraps(task)
    def guarded(cfg):
        try:
            return task(cfg)
        except ConfigError as error:
            raise SystemExit(f"ezclip {config_name}: error: {error}") from None

    register_resolvers()
    sys.argv = as_ddp_rank_of_a_job(sys.argv)
    return hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(guarded)()


# Set by a job of a multirun for the DDP ranks Lightning starts: which job they belong to.
DDP_JOB_ENV = "EZCLIP_DDP_JOB"


# What Lightning's DDP launcher sets in the launching process: a job restores them when it ends.
DDP_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", DDP_JOB_ENV)


@contextlib.contextmanager
def distributed_job():
    """One job that may train or test under DDP, leaving nothing behind for the next job of a multirun.

    Inside a Hydra multirun it tells the DDP ranks Lightning starts which job they run (Lightning
    starts each extra rank by re-running the command line, which for a multirun is the whole sweep:
    `as_ddp_rank_of_a_job` turns it into this job alone). At the end it destroys the process group
    and restores the launcher's environment variables, so the next job starts its own ranks.
    """
    from hydra.core.hydra_config import HydraConfig

    saved = {name: os.environ.get(name) for name in DDP_VARIABLES}
    if HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN":
        hydra_cfg = HydraConfig.get()
        job = {"overrides": list(hydra_cfg.overrides.task), "output_dir": hydra_cfg.runtime.output_dir}
        os.environ[DDP_JOB_ENV] = json.dumps(job)
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def as_ddp_rank_of_a_job(argv: list[str]) -> list[str]:
    """The command line a process runs: a DDP rank started for one job of a multirun runs that job alone."""
    job = os.environ.get(DDP_JOB_ENV)
    if not job or os.environ.get("LOCAL_RANK", "0") == "0":
        return argv
    spec = json.loads(job)
    return [argv[0], *spec["overrides"], f"hydra.run.dir={spec['output_dir']}", "hydra.output_subdir=null"]


def compose(config_name: str, overrides: list[str] | tuple[str, ...] = (), return_hydra_config: bool = False):
    """The config `ezclip <config_name>` would run with `overrides`, composed outside a Hydra app.

    `hydra:` interpolations have no app to read from, so the paths a run reads them for are set
    here: the current folder is the root, and the output folder too unless an override says otherwise.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    fixed = [f"paths.root_dir={Path.cwd()}"]
    if not any(o.startswith("paths.output_dir=") for o in overrides):
        fixed.append(f"paths.output_dir={Path.cwd()}")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(
            config_name=config_name, overrides=fixed + list(overrides), return_hydra_config=return_hydra_config
        )


def instantiate_callbacks(callbacks_cfg) -> list:
    """One object per entry of the `callbacks` group (each must name a `_target_`)."""
    import hydra
    from omegaconf import DictConfig

    callbacks = []
    for name, cb_cfg in (callbacks_cfg or {}).items():
        if not (isinstance(cb_cfg, DictConfig) and "_target_" in cb_cfg):
            raise ValueError(f"callbacks.{name} has no _target_")
        callbacks.append(hydra.utils.instantiate(cb_cfg))
    return callbacks


def instantiate_loggers(logger_cfg, **wandb_kwargs: Any) -> list:
    """Every logger of the config; the W&B one also gets `wandb_kwargs` (run name, tags, group)."""
    import hydra
    from omegaconf import DictConfig

    loggers = []
    for name, lg_cfg in (logger_cfg or {}).items():
        if not (isinstance(lg_cfg, DictConfig) and "_target_" in lg_cfg):
            raise ValueError(f"logger.{name} has no _target_")
        extra = {k: v for k, v in wandb_kwargs.items() if v is not None} if "wandb" in lg_cfg._target_ else {}
        loggers.append(hydra.utils.instantiate(lg_cfg, **extra))
    return loggers


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from: a path (must exist), or `last` = the run folder's newest intact one.

    `last` tries `<run>/checkpoints/last.ckpt`, then the `epoch_*.ckpt` files newest first, and
    says which it took when it had to fall back (a kill can interrupt any write).
    """
    if not ckpt_path:
        return None
    if ckpt_path != "last":
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"checkpoint to resume from not found: {ckpt_path}")
        log.info("resuming from %s", ckpt_path)
        return str(ckpt_path)
    from ezclip.lit.callbacks import LAST, epoch_files

    folder = output_dir / "checkpoints"
    candidates = [folder / LAST, *reversed(epoch_files(folder))]
    problems = []
    for candidate in candidates:
        problem = _unreadable(candidate)
        if problem is None:
            if problems:
                log.warning("resuming from %s instead: %s", candidate, "; ".join(problems))
            else:
                log.info("resuming from %s", candidate)
            return str(candidate)
        problems.append(f"{candidate.name} {problem}")
    raise FileNotFoundError(
        f"no checkpoint to resume from in {folder} ({'; '.join(problems) or 'no files'}); resume needs the "
        "run's folder: hydra.run.dir=<run dir> ckpt_path=last"
    )


def _unreadable(path: Path) -> str | None:
    """None if `path` is a complete checkpoint file, else what is wrong with it."""
    import torch

    if not path.is_file():
        return "is missing"
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        return f"is unreadable ({type(error).__name__})"
    return None
