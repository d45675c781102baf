"""SIGKILL at a chosen point of a training or reproduce run (for tests/test_crash.py).

``python tests/killhook.py SPEC -- train ARGS...`` or ``... -- cli ARGS...``

SPEC is ``none`` or ``EVENT:K``; the process kills itself with SIGKILL (no
cleanup, no atexit, no flush: as if the machine lost power for this process)
at the K-th occurrence (1-based) of EVENT:

  step       before the K-th optimisation step (Transformer.step)
  partial    inside the K-th .npz write, after half of its bytes reached the
             temporary file
  fsync      after the K-th file's data are written and fsync'ed, before the
             rename that publishes it
  replace    right after the K-th rename (the new file is published, the
             caller has not returned yet)
  timer      K milliseconds after start-up (icalign imported), wherever the
             process then is: in a C step, a write, a rename, Python code

``train`` runs ``icalign.train`` on a tiny model with a checkpoint written
after every step and saves the final state to OUT.npz; ``cli`` runs
``icalign.cli.main(ARGS)``.
"""
import io
import os
import signal
import sys


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def install(spec: str) -> None:
    if spec == "none":
        return
    event, k = spec.split(":")
    k = int(k)
    count = {"n": 0}

    def hit() -> bool:
        count["n"] += 1
        return count["n"] == k

    import numpy as np

    if event == "timer":
        import threading

        import icalign  # noqa: F401 - the delay counts from a loaded package
        timer = threading.Timer(k / 1000.0, _die)
        timer.daemon = True
        timer.start()
    elif event == "step":
        from icalign.model import Transformer
        original_step = Transformer.step

        def step(self, *a, **kw):
            if hit():
                _die()
            return original_step(self, *a, **kw)

        Transformer.step = step
    elif event == "partial":
        original_savez = np.savez

        def savez(file, *a, **kw):
            if not hit():
                return original_savez(file, *a, **kw)
            buf = io.BytesIO()
            original_savez(buf, *a, **kw)
            data = buf.getvalue()
            file.write(data[:len(data) // 2])
            file.flush()
            os.fsync(file.fileno())
            _die()

        np.savez = savez
    elif event in ("fsync", "replace"):
        original_replace = os.replace

        def replace(src, dst, *a, **kw):
            if event == "fsync" and hit():
                _die()
            original_replace(src, dst, *a, **kw)
            if event == "replace" and hit():
                _die()

        os.replace = replace
    else:
        raise SystemExit(f"unknown kill event {event!r}")


def train_main(checkpoint: str, out: str, steps: int) -> int:
    import numpy as np

    import icalign as ica
    model = ica.Transformer(TRAIN_CONFIG(), seed=3)
    task = ica.AlignmentTask(n_dims=3, n_points=6)
    history = ica.train(model, task, steps=steps, batch_size=4, lr=3e-3, seed=5, progress=False,
                        checkpoint=checkpoint, checkpoint_every=1e-9, lr_schedule="cosine")
    opt = model.optimizer_state()
    np.savez(out, losses=np.asarray(history), adam_m=opt["adam_m"], adam_v=opt["adam_v"],
             adam_steps=opt["adam_steps"], **{"param/" + k: v
                                               for k, v in model.state_dict().items()})
    return 0


def TRAIN_CONFIG():
    import icalign as ica
    return ica.ModelConfig(n_dims=3, n_points=6, n_embd=8, n_layer=2, n_head=2)


if __name__ == "__main__":
    spec, sep, mode, *rest = sys.argv[1:]
    assert sep == "--"
    install(spec)
    if mode == "train":
        sys.exit(train_main(rest[0], rest[1], int(rest[2])))
    from icalign.cli import main
    sys.exit(main(rest))
