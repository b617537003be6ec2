import torch

from irl_vla.models.vla.loss import winning_anchor
from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config

STEPS = 100


def test_tiny_model_overfits_a_handful_of_batches():
    cfg = tiny_config()
    batches = [synthetic_batch(cfg, 4, seed) for seed in range(2)]
    model = ready_model(cfg, batches, seed=0).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, foreach=True)
    generator = torch.Generator().manual_seed(0)
    history: list[dict[str, float]] = []
    for step in range(STEPS):
        features, targets = batches[step % len(batches)]
        losses = model.compute_loss(model(features, targets, generator=generator), targets)
        optimiser.zero_grad()
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    first = {k: sum(h[k] for h in history[:2]) / 2 for k in history[0]}
    last = {k: sum(h[k] for h in history[-2:]) / 2 for k in history[0]}
    assert last["loss"] < 0.45 * first["loss"], (first, last)
    ratios = {"trajectory_reg": 0.7, "lm": 0.1, "meta_action": 0.1, "bev_semantic": 0.5, "agent_class": 0.9}
    ratios["trajectory_cls"] = 0.9  # starts at the 1 / K prior (bias init), so it falls from there
    for term, ratio in ratios.items():
        assert last[term] < ratio * first[term], (term, first[term], last[term])
    model.eval()  # the denoised mode of the expert's anchor lands near the expert
    features, targets = batches[0]
    with torch.no_grad():
        out = model(features)
    expert = targets["trajectory"]
    mode = out["modes"][torch.arange(expert.shape[0]), winning_anchor(model.planner.anchors, expert)]
    err = (mode - expert)[..., :2].norm(dim=-1).mean()
    spread = (expert - expert.mean(0))[..., :2].norm(dim=-1).mean()
    assert err < 0.35 * spread, (float(err), float(spread))
