"""The launcher presets in conf/hydra/launcher/ compose with Hydra's launcher plugins."""
import importlib.util

import pytest
import yaml
from hydra import compose, initialize_config_dir

from optrepro.core.config import conf_dir
from optrepro.core.runner import _register_resolvers


def launcher(choice: str, *overrides: str):
    _register_resolvers()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["paper=amsgrad", f"hydra/launcher={choice}", *overrides],
                      return_hydra_config=True)
    return cfg.hydra.launcher


def test_joblib_is_the_default_launcher():
    _register_resolvers()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["paper=amsgrad"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")


def test_slurm_preset_asks_for_one_gpu_per_job_and_takes_overrides():
    cfg = launcher("slurm", "hydra.launcher.partition=gpu")
    assert cfg._target_.endswith("SlurmLauncher")
    assert (cfg.gpus_per_node, cfg.tasks_per_node, cfg.partition) == (1, 1, "gpu")
    assert cfg.timeout_min >= 30  # the full-profile budget on one GPU


def test_ray_preset_builds_on_the_plugins_config():
    preset = yaml.safe_load((conf_dir() / "hydra" / "launcher" / "ray_cluster.yaml").read_text())
    assert preset["defaults"] == ["ray"]
    assert preset["ray"]["init"]["address"] == "auto" and preset["ray"]["remote"]["num_gpus"] == 1
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None:
        cfg = launcher("ray_cluster")
        assert cfg._target_.endswith("RayLauncher") and cfg.ray.remote.num_gpus == 1
    else:
        with pytest.raises(Exception, match="ray"):
            launcher("ray_cluster")  # without `pip install -e .[ray]` Hydra names the missing config
