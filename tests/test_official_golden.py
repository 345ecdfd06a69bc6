"""The kit's models on official-layout weights give the official code's outputs.

The golden files in tests/fixtures/official/ were computed by the official AniTalker code on weights rebuilt from the
manifests by the rule in that folder's README (copied from ../shared/reference/fixtures). Here the same weights are rebuilt,
written as an official-layout checkpoint, loaded through the kit's official loaders and run on the same inputs.
"""
import math
from pathlib import Path
import pytest, torch
from anitalker.core import load_manifest
from anitalker.stage1.model import MotionAutoencoder
from anitalker.stage2.generator import MotionGenerator, VARIANTS
from anitalker.stage2.schedulers import DDIMScheduler
from anitalker.audio.features import mfcc39, mfcc_for_video

FIX = Path(__file__).parent/"fixtures"/"official"


def golden(name): return torch.load(FIX/f"official_{name}_golden.pt", weights_only=False)


def stage1_rule_weights(seed=0) -> dict:
    "Stage-1 weights by the fixture rule (README): one generator, every parameter in manifest order; buffers from the model."
    g, own, out = torch.Generator().manual_seed(seed), MotionAutoencoder().state_dict(), {}
    for k, e in load_manifest("stage1")["keys"].items():
        if e["kind"] != "parameter": out[k] = own[k].clone(); continue
        t = torch.randn(e["shape"], generator=g, dtype=torch.float32)
        if k.endswith("modulation.bias"): t = 1 + 0.1 * t
        elif k.endswith(".bias"): t = 0.1 * t
        elif k.startswith("enc.net_decouping.") and t.dim() == 2: t = t / math.sqrt(e["shape"][1])
        out[k] = t
    return out


def stage2_rule_weights(variant, seed=0) -> dict:
    "`ema_model.*` weights of a stage-2 variant by the fixture rule, in manifest order."
    g, out = torch.Generator().manual_seed(seed), {}
    for k, e in load_manifest(f"stage2_{variant}")["keys"].items():
        if not k.startswith("ema_model."): continue
        shape = e["shape"]
        if e["kind"] == "buffer":
            if k.endswith("running_mean"): out[k] = 0.2 * torch.randn(shape, generator=g)
            elif k.endswith("running_var"): out[k] = 0.5 + torch.rand(shape, generator=g)
            else: out[k] = torch.tensor(0, dtype=torch.long)             # num_batches_tracked: no draw (unused in eval mode)
            continue
        t = torch.randn(shape, generator=g)
        if k == "ema_model.weights": pass
        elif k.endswith("bias") or ".bias_" in k or k.endswith(("pos_bias_u", "pos_bias_v")): t = 0.1 * t
        elif len(shape) == 1: t = 1 + 0.1 * t
        else:
            t = t / math.sqrt(math.prod(shape[1:]))
            if k == "ema_model.t_encoder.0.weight": t = t * 1e-3
        out[k] = t
    return out


def test_stage1_rule_rebuild_matches_weight_sums():
    gold = golden("stage1"); sums = gold.get("weight_sums")
    if sums is None: pytest.fail("the stage-1 golden file has no weight_sums")     # the rebuild check the README names
    w = stage1_rule_weights(0)
    bad = [k for k, s in sums.items() if abs(float(w[k].double().sum()) - float(s)) > 1e-6 * max(1.0, abs(float(s)))]
    assert not bad, f"rebuilt weights differ from the golden weight sums: {bad[:5]}"


def test_stage1_official_outputs(tmp_path):
    "w_a and α to 1e-5, the render to < 1e-2 max abs, through `load_official` of an official-layout file."
    gold = golden("stage1")
    ck = tmp_path/"stage1.ckpt"; torch.save({"state_dict": {"lia." + k: v for k, v in stage1_rule_weights(0).items()}}, ck)
    m = MotionAutoencoder.load_official(ck)
    with torch.no_grad():
        src, alpha_d = m.encode(gold["source"]), m.motion(gold["driving"])
        out = m.render(src, alpha_d)
    err = lambda a, b: float((a - b).abs().max())
    assert err(src["w_a"], gold["w_a"]) < 1e-5, err(src["w_a"], gold["w_a"])
    assert err(src["alpha"], gold["alpha_source"]) < 1e-5, err(src["alpha"], gold["alpha_source"])
    assert err(alpha_d, gold["alpha_driving"]) < 1e-5, err(alpha_d, gold["alpha_driving"])
    assert err(out, gold["render"]) < 1e-2, err(out, gold["render"])
    assert m.cfg.drive == "absolute"                                     # official checkpoints keep the official drive


def _controls(variant, inp):
    have = VARIANTS[variant][1]
    c = {"pose": inp.get("pose"), "location": inp.get("face_location"), "scale": inp.get("face_scale")}
    return {k: v for k, v in c.items() if k in have}


def _rel(a, b): return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stage2_official_outputs(variant, tmp_path):
    "ε, the adapter's predictions and every DDIM step of the five official variants, to 1e-4 relative."
    gold = golden(f"stage2_{variant}"); inp = gold["inputs"]
    ema = stage2_rule_weights(variant, 0)
    bad = [k for k, v in gold["weight_sums"].items() if abs(float(ema[k].double().sum()) - float(v)) > 1e-6 * max(1.0, abs(float(v)))]
    assert not bad, f"rebuilt weights differ from the golden weight sums: {bad[:5]}"
    sd = {**ema, **{"model." + k[len("ema_model."):]: v + 0.5 for k, v in ema.items()}, "x_T": torch.zeros(1)}
    ck = tmp_path/"stage2.ckpt"; torch.save({"state_dict": sd}, ck)
    gen = MotionGenerator.load_official(ck, variant)
    if "wav" in inp:                                                     # the kit's MFCC-39 of the wav is the official one
        assert float((torch.as_tensor(mfcc39(inp["wav"].numpy())).float() - inp["mfcc_untrimmed"]).abs().max()) < 1e-4
    ctrl_modes = ["control_off"] + (["control_on"] if VARIANTS[variant][1] else [])
    for mode in ctrl_modes:
        controls = _controls(variant, inp) if mode == "control_on" else None
        with torch.no_grad():
            eps, cond = gen(inp["x_t"], int(inp["t"]), inp["audio"], inp["alpha_start"], inp["wa_start"], controls=controls, return_cond=True)
            assert _rel(eps, gold["eps"][mode]) < 1e-4, (mode, _rel(eps, gold["eps"][mode]))
            if mode == "control_off":
                for k, v in gold.get("predictions", {}).items(): assert _rel(cond["predictions"][k], v) < 1e-4, (k, _rel(cond["predictions"][k], v))
            sched = DDIMScheduler(); sched.set_timesteps(int(inp["ddim_steps"]))
            x = inp["x_T"].clone(); traj = []
            for t in sched.timesteps:
                x = sched.step(gen.denoise(x, int(t), cond, inp["alpha_start"], inp["wa_start"]), int(t), x).prev_sample
                traj.append(x[0])
        traj = torch.stack(traj)
        assert traj.shape == gold["ddim_traj"][mode].shape
        assert _rel(traj, gold["ddim_traj"][mode]) < 1e-4, (mode, _rel(traj, gold["ddim_traj"][mode]))
        assert _rel(traj[-1:], gold["ddim"][mode]) < 1e-4
