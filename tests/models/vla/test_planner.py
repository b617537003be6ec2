import math

import pytest
import torch
from diffusers.schedulers.scheduling_ddim import DDIMScheduler

from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config

B = 2


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config(planner={"num_denoising_steps": 3, "denoising_stride": 4, "eta": 1.0, "std_min": 0.05})
    batches = [synthetic_batch(cfg, B, seed) for seed in range(3)]
    return cfg, batches, ready_model(cfg, batches).eval()


def test_denoising_timesteps_come_from_the_scheduler(setup):
    _, _, model = setup
    assert model.planner.timesteps == [8, 4, 0]  # stride * (S - 1), ..., 0
    assert isinstance(model.planner.scheduler, DDIMScheduler)


def test_sampled_chain_log_prob_equals_a_direct_gaussian_computation(setup):
    cfg, batches, model = setup
    f, _ = batches[0]
    with torch.no_grad():
        out = model(f, stochastic=True, generator=torch.Generator().manual_seed(1))
        ctx, _ = model.encode(f, None, with_aux=False)
    chain = out["chain"]  # (B, K, S + 1, T, 3)
    k, s, t = cfg.planner.num_anchors, len(model.planner.timesteps), cfg.inputs.num_poses
    assert chain.shape == (B, k, s + 1, t, 3) and out["chain_log_probs"].shape == (B, k, s)
    scheduler, alphas = model.planner.scheduler, model.planner.scheduler.alphas_cumprod.double()
    for step, timestep in enumerate(model.planner.timesteps):
        x = chain[:, :, step]
        with torch.no_grad():
            x0, _ = model.planner.denoise(x, torch.full((B,), timestep), ctx)
        # DDIM by hand (Song et al.): sigma, the mean at eta, the floored std, then the Gaussian log-density.
        prev = timestep - cfg.planner.denoising_stride
        a_t = float(alphas[timestep])
        a_prev = float(alphas[prev]) if prev >= 0 else 1.0
        sigma = cfg.planner.eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        eps = (x.double() - math.sqrt(a_t) * x0.double()) / math.sqrt(1 - a_t)
        mean = math.sqrt(a_prev) * x0.double() + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        std = max(sigma, cfg.planner.std_min)
        z = (chain[:, :, step + 1].double() - mean) / std
        direct = (-0.5 * z**2 - math.log(std) - 0.5 * math.log(2 * math.pi)).sum(dim=(-2, -1))
        torch.testing.assert_close(out["chain_log_probs"][:, :, step].double(), direct, rtol=1e-4, atol=1e-3)
        assert float(out["chain_stds"][step]) == pytest.approx(std, rel=1e-5)
        # the scheduler's own DDIM step gives the same mean
        ref = scheduler.step(x0, timestep, x, eta=cfg.planner.eta, variance_noise=torch.zeros_like(x)).prev_sample
        torch.testing.assert_close(ref.double(), mean, rtol=1e-4, atol=1e-4)
    modes = model.planner.trajectory_norm.inverse(chain[:, :, -1])
    torch.testing.assert_close(out["modes"], modes)


def test_chain_log_prob_re_evaluates_the_chain_with_gradients(setup):
    _, batches, model = setup
    f, _ = batches[1]
    with torch.no_grad():
        out = model(f, stochastic=True, generator=torch.Generator().manual_seed(2))
    log_probs = model.chain_log_prob(f, out["chain"])
    torch.testing.assert_close(log_probs, out["chain_log_probs"], rtol=1e-4, atol=1e-3)
    log_probs.sum().backward()
    grad = model.planner.offset_head[0].weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    model.zero_grad()
    with pytest.raises(ValueError, match="chain: expected shape"):
        model.chain_log_prob(f, out["chain"][:, :, 1:])


def test_sampling_is_seeded_and_deterministic_mode_has_zero_log_prob(setup):
    _, batches, model = setup
    f, _ = batches[0]
    with torch.no_grad():
        a = model(f, stochastic=True, generator=torch.Generator().manual_seed(7))
        b = model(f, stochastic=True, generator=torch.Generator().manual_seed(7))
        c = model(f, stochastic=True, generator=torch.Generator().manual_seed(8))
        det = model.planner.sample(model.encode(f, None, with_aux=False)[0])
    torch.testing.assert_close(a["chain"], b["chain"], rtol=0, atol=0)
    assert not torch.allclose(a["chain"], c["chain"])
    assert float(det.log_probs.abs().sum()) == 0.0
    # deterministic: anchors scaled to the start timestep without noise, and the last step lands on x0
    anchors = model.planner.trajectory_norm(model.planner.anchors)
    a_start = float(model.planner.scheduler.alphas_cumprod[model.planner.timesteps[0]])
    torch.testing.assert_close(det.chain[0, :, 0], math.sqrt(a_start) * anchors)
