"""Development exploration for the critic-quality experiments (issue 4).

Trains a small model with a plain loop over Transformer.step (until icalign.train lands),
saves it, and prints held-out error, self-check accuracy and the three experiments.
Usage: python scripts/critic_explore.py E L H STEPS LR REWARD_WEIGHT OUT.npz [BATCH] [TRAIN_NOISE] [SEED]
"""
import json
import sys
import time

import numpy as np

import icalign as ica
from icalign import critic as C

ica.set_num_threads(1)
E, L, H, steps = (int(a) for a in sys.argv[1:5])
lr, rw = float(sys.argv[5]), float(sys.argv[6])
out = sys.argv[7]
B = int(sys.argv[8]) if len(sys.argv) > 8 else 64
noise = float(sys.argv[9]) if len(sys.argv) > 9 else 0.0
seed = int(sys.argv[10]) if len(sys.argv) > 10 else 0
cfg = ica.ModelConfig(n_embd=E, n_layer=L, n_head=H, reward_head=rw > 0)
task = ica.AlignmentTask()
model = ica.Transformer(cfg, seed=seed)
held = task.sample(256, seed=123, offset=10**9)
t0 = time.time()
for s in range(steps):
    b = task.sample(B, seed=seed, offset=s * B, reward_noise=noise)
    loss = model.step(b.xs, b.ys, b.rs, lr=lr, reward_weight=rw if rw > 0 else 1.0)
    if (s + 1) % max(steps // 10, 1) == 0 or s == steps - 1:
        pred = model.predict(held.xs, held.ys, held.rs)
        err = ica.normalized_error(pred, held.ystar).mean(axis=0)
        msg = f"step {s+1} loss {loss:.4f} err t=2 {err[2]:.3f} t=4 {err[4]:.3f} t=8 {err[8]:.3f} t=15 {err[15]:.3f}"
        if cfg.reward_head:
            sc = C.self_check_accuracy(model, held)
            msg += f" selfcheck acc {sc['accuracy']:.3f} corr {sc['corr']:.3f}"
        print(msg, f"{time.time()-t0:.0f}s", flush=True)
np.savez(out, config=json.dumps(cfg.to_dict()), **model.state_dict())
print("saved", out)
