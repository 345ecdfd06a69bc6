"""One config per stage: presets in code, YAML files and papermill parameters hold only what they change."""
from pathlib import Path
import pytest, yaml, papermill as pm
from anitalker.stage1.train import Stage1TrainConfig
from anitalker.stage2.train import Stage2TrainConfig
from anitalker.jobs.runner import EXPERIMENTS_DIR, route_parameters

STAGES = {"stage1_train": Stage1TrainConfig, "stage2_train": Stage2TrainConfig}
PARAMS = {"tiny_cpu": "stage1_train", "paper_gpu": "stage1_train", "stage2_tiny_cpu": "stage2_train",
          "stage2_paper_gpu": "stage2_train"}

@pytest.mark.parametrize("name", sorted(STAGES))
def test_presets_build_and_round_trip(name):
    cls = STAGES[name]
    assert cls.PRESETS == ("tiny", "quickstart", "paper")
    for p in cls.PRESETS:
        cfg = cls.preset(p)
        assert cls.from_yaml(cfg.to_yaml()) == cfg and cls.from_params({"config": p, **cfg.to_flat()}) == cfg
        assert set(cfg.to_dict()) == {"model", "loss", "optim", "data", "train"}
    assert len(cls.key_groups()) == len(cls.tiny().to_flat())          # every flat key in exactly one group

@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_parameters_cell_holds_no_config_default(name):
    "The notebook takes a preset name and overrides; a default restated there would be a second place that can disagree."
    params = pm.inspect_notebook(str(EXPERIMENTS_DIR/f"{name}.ipynb"))
    keys = set(STAGES[name].tiny().to_flat())
    assert {"config", "overrides"} <= set(params)
    assert not (set(params) & keys), f"{name}'s parameters cell restates config keys {sorted(set(params) & keys)}"
    assert params["config"]["default"].strip("\"'") in STAGES[name].PRESETS

@pytest.mark.parametrize("preset", sorted(PARAMS))
def test_yaml_presets_hold_only_overrides(preset):
    P = yaml.safe_load((EXPERIMENTS_DIR/"params"/f"{preset}.yaml").read_text())
    nb, cls = PARAMS[preset], STAGES[PARAMS[preset]]
    assert P.get("config") in cls.PRESETS, f"{preset}.yaml names no preset of {cls.__name__}"
    base = cls.preset(P["config"]).to_flat()
    own = set(pm.inspect_notebook(str(EXPERIMENTS_DIR/f"{nb}.ipynb")))
    for k, v in P.items():
        if k == "config": continue
        assert k in base or k in own, f"{preset}.yaml: {k!r} is neither a config key nor a parameter of {nb}"
        if k in base: assert v != base[k], f"{preset}.yaml restates {k}={v!r}, the {P['config']} preset's own value"
    routed = route_parameters(EXPERIMENTS_DIR/f"{nb}.ipynb", P)
    cfg = cls.from_params({"config": P["config"], **routed.get("overrides", {})})
    assert all(cfg.to_flat()[k] == v for k, v in routed.get("overrides", {}).items())

def test_quickstart_steps_come_from_the_presets():
    from anitalker.jobs.quickstart import QuickstartConfig, _quickstart_params
    ph, held = _quickstart_params(QuickstartConfig(), Path("/r"))
    assert ph["stage1"][1]["steps"] == Stage1TrainConfig.quickstart().train.steps
    assert ph["stage2"][1]["steps"] == Stage2TrainConfig.quickstart().train.steps
    assert held == Stage1TrainConfig.quickstart().data.held_out
