"""Validation of one run: the whole val set through the model (loss, decoded probabilities, imgcls.metrics scores
per head and over the final classes), and the val_predictions.csv frame predict / ensemble read back."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from imgcls import metrics
from imgcls.console import progress_bar
from imgcls.device import nhwc
from imgcls.model_meta import ModelMeta
from imgcls.train.heads import as_list, decode_proba


def final_code(y: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """The final class code of head targets [N, H] (mixed radix over the heads, the decode's order)."""
    if y.shape[1] == 1:
        return y[:, 0]
    code = torch.zeros_like(y[:, 0])
    for h, k in enumerate(sizes):
        code = code * k + y[:, h]
    return code


@torch.no_grad()
def evaluate(model, loader, meta, sizes, crits, head_w, device, channels_last=False, use_amp=False,
             amp_dtype=torch.bfloat16, desc: str | None = None) -> dict:
    """Loss, probabilities and imgcls.metrics scores over the loader (a transient bar `desc` unless --quiet).
    `skipped`: [(item, why)] of the images a file loader (--cache none) could not read, left out of every score."""
    model.eval()
    outs_all = [[] for _ in sizes]
    ys, skipped = [], []
    with progress_bar(desc, len(loader), transient=True) as advance:
        for batch in loader:
            x, y = batch[0], batch[1]
            if len(batch) > 2:
                skipped += batch[2]
            if x is None:
                advance()
                continue
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = nhwc(x)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                outs = as_list(model(x))
            for h, o in enumerate(outs):
                outs_all[h].append(o.float())
            ys.append(y.to(device))
            advance()
    if not ys:
        from imgcls.errors import UserError
        raise UserError(f"none of the {len(skipped)} validation images can be read any more (the first: "
                        f"{loader.dataset.paths[skipped[0][0]]}: {skipped[0][1]}); check the data")
    y = torch.cat(ys)
    outs = [torch.cat(o) for o in outs_all]
    loss = sum(w * c(o, F.one_hot(y[:, h], k).float())
               for h, (w, c, o, k) in enumerate(zip(head_w, crits, outs, sizes)))
    proba = decode_proba(outs if len(outs) > 1 else outs[0], meta).cpu().numpy()
    y_np = y.cpu().numpy()
    table = {t: i for i, t in enumerate(meta.decode_table())}
    y_final = np.array([table[tuple(r)] for r in y_np]) if len(sizes) > 1 else y_np[:, 0]
    heads = [metrics.scores(y_np[:, h], outs[h].argmax(1).cpu().numpy(), k) for h, k in enumerate(sizes)]
    return {"loss": float(loss), "proba": proba, "y_final": y_final, "heads": heads,
            "final": metrics.scores(y_final, proba.argmax(1), list(meta.classes)), "skipped": skipped}


def val_predictions_frame(data, proba: np.ndarray, meta: ModelMeta, fold: int | None,
                          skipped=()) -> pd.DataFrame:
    """One row per validated image: `proba` is over the val rows less `skipped` (evaluate's, unreadable)."""
    val_idx = np.delete(data.val_idx, [i for i, _ in skipped])
    rows = data.frame.iloc[val_idx]
    classes = list(meta.classes)
    df = pd.DataFrame({"path": rows["path"].values, "root": rows["root"].values,
                       # the true class as the model's classes spell it, the one its scores count: its target's
                       # value, or a product decode's joined head classes ('1_0' for heads mask, gender), not the
                       # rows' own label column (a profile id, none of those classes)
                       "label": [classes[i] for i in data.final[val_idx]],
                       "fold": "" if fold is None else fold,
                       "pred": [classes[i] for i in proba.argmax(1)]})
    probs = pd.DataFrame(proba, columns=[f"p_{c}" for c in classes])
    return pd.concat([df, probs], axis=1)
