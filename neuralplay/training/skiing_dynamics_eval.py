"""Evaluate exported neural Skiing (dynamics graphs + tokenizer, on onnxruntime) against ALE.

Held-out episodes are ALE's own frames under their actions, and ALE Skiing is
deterministic, so an episode is the ground truth for any rollout started from any of its
frames under its actions. What is measured:

- teacher-forced next frame: the model is reset on the real frames before frame t (and
  the actions between them), stepped once with the action that led to t, and its frame is
  compared with the real frame t; `token_accuracy` is the share of its predicted tokens
  equal to the tokenizer's tokens of the real frame t (`copy_previous_token_accuracy`: the
  share of the real frame t - 1's tokens equal to them; `changed_token_accuracy`: the share
  right of the tokens that differ from frame t - 1's, `changed_tokens_per_frame` of them a
  frame, where copying is always wrong); `teacher_forced_error_share_by_token_row`
  is the share of the squared error in each band of rows a row of tokens covers.
- open loop: the model is reset on real frames at a start and stepped with the episode's
  own actions, never re-synced; its frame k steps ahead is compared with the real one
  (`psnr_by_horizon`, `rollout_psnr_db_15`, `rollout_psnr_db_60`).
- skier persistence: the share of open-loop neural frames in which the skier's colour
  appears, in the rows ALE draws its skier in (`SKIER_ROWS`: the course's last gate has
  flags of that colour, elsewhere), with its centroid within 3 pixels (each axis, at
  105x80) of ALE's skier centroid; frames where ALE shows no skier pixels are not counted.
  `skier_persistence_by_rollout` gives the same share for each rollout, in the order of
  `rollout_starts`. `skier_misses` splits the frames lost: `no_skier` (no skier-coloured
  pixel in those rows), `row` (the centroid's row is off, as where the model draws
  skier-coloured pixels above or below the skier), `column` (the row is right, the column
  is off: the skier went sideways elsewhere); shares of the frames counted, which add up
  with persistence to 1.
  `skier_held_share`: the share of the open-loop frames in which the model lost the skier
  and the runtime kept the last one drawn (`NeuralSkiing.hold_skier`; 0 with `--no-skier-hold`).
  `skier_sideways_px_per_step` (`real_skier_sideways_px_per_step` for ALE's frames): the
  mean change of the skier's centroid column from one open-loop frame to the next where both
  show it, at 105x80; a model whose skier stands while ALE's drifts loses it.
- motion: `changed_pixel_share` (`real_changed_pixel_share` for ALE's frames), the share of
  an open-loop frame's pixels that differ from the frame before, over all steps;
  `changed_pixels_by_horizon` (`real_`) the same at each step. A world that stops
  scrolling while ALE's goes on shows here first.
- baselines that know nothing of the dynamics, on the same frames: `copy_previous_psnr_db`
  (the real frame t - 1 offered as frame t) beside the teacher-forced PSNR, and the start
  frame held still for the whole rollout (`frozen_rollout_psnr_db_15`, `_60`,
  `frozen_skier_persistence`) beside the open loop. A model must beat them to have learned
  anything of how the slope moves.

PSNR, everywhere here: the PSNR of the mean squared error over all the frames evaluated
(the RGB renderings, values in [0, 1]; the same scale as the tokenizer's `psnr_db`),
capped at 60 dB, which it reaches when the frames are identical. Averaging errors before
taking the log keeps one perfect frame from dominating the mean.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import (
    PSNR_CAP_DB, difference_image, error_shares, frame_mse, psnr_db, psnr_from_mse, skier_pixels, to_rgb,
)
from neuralplay.runtime.skiing import NeuralSkiing, Sampling
from neuralplay.training.skiing_data import load_episode

SKIER_TOLERANCE_PX = 3.0
REPORT_HORIZONS = (0, 5, 15, 30, 60)


# ---- metrics on frames -------------------------------------------------------------------

def horizon_psnr_db(mse: np.ndarray) -> list[float]:
    """Per-step errors of rollouts (R, H) -> PSNR at each step 1..H over the R rollouts."""
    return [psnr_from_mse(float(m)) for m in np.asarray(mse, np.float64).mean(axis=0)]


def skier_centroid(frame: np.ndarray) -> tuple[float, float] | None:
    """(row, column) mean of the skier's pixels of a palette frame (`skier_pixels`: the
    skier-coloured ones in the rows ALE draws the skier in), or None."""
    rows, cols = skier_pixels(frame)
    return (float(rows.mean()), float(cols.mean())) if len(rows) else None


def centroid_column(centroid: tuple[float, float] | None) -> float:
    """A skier centroid's column, NaN where the frame shows no skier."""
    return np.nan if centroid is None else centroid[1]


def sideways_px_per_step(tracks: list[np.ndarray]) -> float | None:
    """Mean |change of the skier's column| between consecutive frames that both show it."""
    steps = np.concatenate([np.abs(np.diff(t)) for t in tracks]) if tracks else np.zeros(0)
    steps = steps[~np.isnan(steps)]
    return float(steps.mean()) if len(steps) else None


def centroids_match(got: tuple[float, float] | None, want: tuple[float, float] | None,
                    tolerance: float = SKIER_TOLERANCE_PX) -> bool | None:
    """Whether a skier centroid is within `tolerance` pixels (each axis) of the real one;
    None when the real frame shows no skier."""
    return None if want is None else miss_kind(got, want, tolerance) is None


def miss_kind(got: tuple[float, float] | None, want: tuple[float, float],
              tolerance: float = SKIER_TOLERANCE_PX) -> str | None:
    """Why a neural skier centroid fails to match the real one (`skier_misses`); None if it matches."""
    if got is None:
        return "no_skier"
    if abs(got[0] - want[0]) > tolerance:
        return "row"
    return "column" if abs(got[1] - want[1]) > tolerance else None


def skier_match(pred: np.ndarray, true: np.ndarray, tolerance: float = SKIER_TOLERANCE_PX) -> bool | None:
    """Whether the neural frame shows the skier where the real one does (`centroids_match`)."""
    return centroids_match(skier_centroid(pred), skier_centroid(true), tolerance)


def skier_persistence(pred: np.ndarray, true: np.ndarray, tolerance: float = SKIER_TOLERANCE_PX) -> float | None:
    """Share of frame pairs (N, H, W) whose skier matches, over those where the real frame
    has a skier; None when none has."""
    matches = [m for m in (skier_match(p, t, tolerance) for p, t in zip(pred, true)) if m is not None]
    return float(np.mean(matches)) if matches else None


# ---- held-out episodes ---------------------------------------------------------------------

def heldout_paths(heldout: Path) -> list[Path]:
    """The held-out episode files, or a UserError naming the folder and the fix."""
    paths = sorted(Path(heldout).glob("*.npz")) if Path(heldout).is_dir() else []
    if not paths:
        raise UserError(f"no held-out Skiing episodes in {heldout}: run `neuralplay collect skiing` first")
    return paths


def policy_of(path: Path) -> str:
    """`crash-2001.npz` -> `crash`, `held-random-1.npz` -> `held-random`."""
    return path.stem.rsplit("-", 1)[0]


def seed_of(path: Path) -> int:
    """`crash-2001.npz` -> 2001: the seed the episode was collected with, which replays it in
    ALE; a UserError naming the file where its name holds none."""
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        raise UserError(f"{path.name}: no seed in its name (policy-SEED.npz): collect again with "
                        "`neuralplay collect skiing`") from None


def interleave_policies(paths: list[Path]) -> list[int]:
    """Episode indices taking each policy in turn (crash first), so that a few rollouts
    already cover every policy, the crashes included."""
    groups: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(policy_of(path), []).append(i)
    order = sorted(groups, key=lambda p: (p != "crash", p))
    longest = max(len(g) for g in groups.values())
    return [groups[p][k] for k in range(longest) for p in order if k < len(groups[p])]


def context_before(episode: dict, s: int, past: int) -> tuple[np.ndarray, np.ndarray]:
    """The real frames up to and including frame s (at most `past`) and the actions between."""
    lo = max(0, s - past + 1)
    return episode["frames"][lo:s + 1], episode["actions"][lo:s]


def plan_rollouts(lengths: list[int], order: list[int], rollouts: int, horizon: int, past: int,
                  rng: np.random.Generator) -> tuple[list[tuple[int, int]], int]:
    """(episode, start frame) for each rollout, and the horizon they share.

    A start leaves `past` real frames of context before it (the start frame included) and
    `horizon` real frames after it. The horizon is shortened to the longest that some
    episode allows; episodes too short for it take no rollout. Rollouts go round the
    episodes (see interleave_policies); those sharing an episode start in equal slices of it.
    """
    room = {e: lengths[e] - (past - 1) for e in order}  # steps available after the first full context
    horizon = min(horizon, max(room.values()))
    if horizon < 1:
        raise UserError(f"the held-out Skiing episodes are too short for a rollout (need more than {past} steps): "
                        "collect again with `neuralplay collect skiing`")
    eligible = [e for e in order if room[e] >= horizon]
    chosen = [eligible[i % len(eligible)] for i in range(rollouts)]
    plan = []
    for i, e in enumerate(chosen):
        k, m = chosen[:i].count(e), chosen.count(e)
        lo, hi = past - 1, lengths[e] - horizon  # start frames allowed, inclusive
        edges = np.linspace(lo, hi + 1, m + 1)
        a, b = int(edges[k]), max(int(edges[k]) + 1, int(edges[k + 1]))
        plan.append((e, int(rng.integers(a, min(b, hi + 1)))))
    return plan, horizon


# ---- the evaluation ------------------------------------------------------------------------

def _timed_step(model: NeuralSkiing, action: int, times: list[float]) -> np.ndarray:
    t = time.perf_counter()
    frame = model.step(int(action))
    times.append(time.perf_counter() - t)
    return frame


def teacher_forced(model: NeuralSkiing, episodes: list[dict], n: int, rng: np.random.Generator,
                   times: list[float]) -> dict:
    """Next-frame PSNR and token accuracy on n sampled (episode, t), t with a full context."""
    past = model.context - 1
    candidates = [(e, t) for e, ep in enumerate(episodes) for t in range(past, len(ep["actions"]) + 1)]
    picks = np.sort(rng.choice(len(candidates), size=min(n, len(candidates)), replace=False))
    if not len(picks):
        return {"teacher_forced_psnr_db": None, "copy_previous_psnr_db": None, "token_accuracy": None,
                "copy_previous_token_accuracy": None, "changed_token_accuracy": None, "changed_tokens_per_frame": None,
                "teacher_forced_pixel_accuracy": None, "teacher_forced_frames": 0,
                "teacher_forced_error_share_by_token_row": None}
    predicted, frames, targets, previous = [], [], [], []
    for i in picks:
        e, t = candidates[i]
        ep = episodes[e]
        model.reset(*context_before(ep, t - 1, model.frames_read))
        frames.append(_timed_step(model, ep["actions"][t - 1], times))
        predicted.append(model.tokens.copy())
        targets.append(ep["frames"][t])
        previous.append(ep["frames"][t - 1])
    pred, true = np.stack(frames), np.stack(targets)
    encoded, encoded_before = model.tokenizer.encode(true), model.tokenizer.encode(np.stack(previous))
    shares = error_shares(pred, true, encoded.shape[1])["error_share_by_token_row"]
    encoded, encoded_before = encoded.reshape(len(true), -1), encoded_before.reshape(len(true), -1)
    right, changed = np.stack(predicted) == encoded, encoded_before != encoded
    return {"teacher_forced_psnr_db": psnr_db(pred, true), "copy_previous_psnr_db": psnr_db(np.stack(previous), true),
            "token_accuracy": float(right.mean()),
            "copy_previous_token_accuracy": float((~changed).mean()),
            "changed_token_accuracy": float(right[changed].mean()) if changed.any() else None,
            "changed_tokens_per_frame": float(changed.sum(axis=1).mean()),
            "teacher_forced_pixel_accuracy": float((pred == true).mean()),
            "teacher_forced_frames": len(picks),
            "teacher_forced_error_share_by_token_row": shares}


def open_loop(model: NeuralSkiing, episodes: list[dict], plan: list[tuple[int, int]], horizon: int,
              times: list[float], keep: int = 2) -> tuple[dict, list[dict], list[dict]]:
    """Rollouts under the episodes' own actions; returns the metrics, for the first `keep`
    rollouts the real and neural frames at REPORT_HORIZONS, and for every rollout the
    skier's column in ALE's and the model's frames at each step (the start included). The
    same figures for the start frame held still are the `frozen_` baseline."""
    past = model.context - 1
    shown = [h for h in REPORT_HORIZONS if h <= horizon]
    mse, frozen_mse = np.zeros((len(plan), horizon)), np.zeros((len(plan), horizon))
    motion, real_motion = np.zeros((len(plan), horizon)), np.zeros((len(plan), horizon))
    matches: list[list[bool]] = [[] for _ in plan]  # each rollout's frames where ALE shows the skier
    frozen_matches: list[bool] = []
    misses = {"no_skier": 0, "row": 0, "column": 0}
    skier_held = 0  # neural frames in which the runtime kept the last skier drawn
    strips, tracks = [], []
    for r, (e, s) in enumerate(plan):
        ep = episodes[e]
        pred = model.reset(*context_before(ep, s, model.frames_read))
        strip = {"episode": e, "start": s, "horizons": shown, "real": [], "neural": []}
        track = {"episode": e, "start": s, "real": np.full(horizon + 1, np.nan), "neural": np.full(horizon + 1, np.nan)}
        held = skier_centroid(ep["frames"][s])  # the start frame's, for the frozen baseline
        for k in range(horizon + 1):
            if k:
                before = pred
                pred = _timed_step(model, ep["actions"][s + k - 1], times)
                motion[r, k - 1] = np.mean(pred != before)
                real_motion[r, k - 1] = np.mean(ep["frames"][s + k] != ep["frames"][s + k - 1])
            true = ep["frames"][s + k]
            got, want = skier_centroid(pred), skier_centroid(true)
            track["real"][k], track["neural"][k] = centroid_column(want), centroid_column(got)
            if k:
                mse[r, k - 1] = frame_mse(pred, true)
                frozen_mse[r, k - 1] = frame_mse(ep["frames"][s], true)
                match = centroids_match(got, want)
                if match is not None:
                    matches[r].append(match)
                    if not match:
                        misses[miss_kind(got, want)] += 1
                    frozen_matches.append(bool(centroids_match(held, want)))
            if r < keep and k in shown:
                strip["real"].append(true.copy())
                strip["neural"].append(pred.copy())
        skier_held += model.skier_held
        if r < keep:
            strips.append(strip)
        tracks.append(track)
    by_horizon = horizon_psnr_db(mse) if len(plan) else []
    frozen_by_horizon = horizon_psnr_db(frozen_mse) if len(plan) else []

    def at(curve: list[float], k: int) -> float | None:
        return curve[k - 1] if len(curve) >= k else None

    counted = [m for rollout in matches for m in rollout]
    return {"rollout_psnr_db_15": at(by_horizon, 15), "rollout_psnr_db_60": at(by_horizon, 60),
            "psnr_by_horizon": by_horizon,
            "frozen_rollout_psnr_db_15": at(frozen_by_horizon, 15),
            "frozen_rollout_psnr_db_60": at(frozen_by_horizon, 60), "frozen_psnr_by_horizon": frozen_by_horizon,
            "skier_persistence": float(np.mean(counted)) if counted else None,
            "frozen_skier_persistence": float(np.mean(frozen_matches)) if frozen_matches else None,
            "skier_persistence_by_rollout": [float(np.mean(m)) if m else None for m in matches],
            "skier_sideways_px_per_step": sideways_px_per_step([t["neural"] for t in tracks]),
            "real_skier_sideways_px_per_step": sideways_px_per_step([t["real"] for t in tracks]),
            "changed_pixel_share": float(motion.mean()) if len(plan) else None,
            "real_changed_pixel_share": float(real_motion.mean()) if len(plan) else None,
            "changed_pixels_by_horizon": motion.mean(axis=0).tolist() if len(plan) else [],
            "real_changed_pixels_by_horizon": real_motion.mean(axis=0).tolist() if len(plan) else [],
            "skier_misses": {kind: n / len(counted) for kind, n in misses.items()} if counted else None,
            "skier_frames_counted": len(counted),
            "skier_held_share": skier_held / (len(plan) * horizon) if len(plan) and horizon else None,
            "rollouts": len(plan), "rollout_horizon": horizon}, strips, tracks


def _evaluate(model: NeuralSkiing, heldout: Path, teacher_forced_n: int, rollouts: int, horizon: int,
              seed: int) -> tuple[dict, dict]:
    paths = heldout_paths(heldout)
    episodes = [load_episode(p) for p in paths]
    rng = np.random.default_rng(seed)
    past = model.context - 1
    plan, horizon = plan_rollouts([len(ep["actions"]) for ep in episodes], interleave_policies(paths),
                                  rollouts, horizon, past, rng)
    times: list[float] = []
    result = teacher_forced(model, episodes, teacher_forced_n, rng, times)
    loop, strips, tracks = open_loop(model, episodes, plan, horizon, times)
    result.update(loop)
    result["rollout_starts"] = [f"{paths[e].name}@{s}" for e, s in plan]
    result["step_ms_p50"] = round(float(np.median(times)) * 1e3, 3) if times else None
    for part in strips + tracks:
        part["episode"] = paths[part["episode"]].name
    return result, {"strips": strips, "tracks": tracks}


def evaluate_dynamics(model: NeuralSkiing, heldout: Path, teacher_forced: int = 200, rollouts: int = 6,
                      horizon: int = 300, seed: int = 0) -> dict:
    """All metrics of a neural Skiing against the held-out episodes in `heldout` (see the
    module docstring); the same seed samples the same frames and starts."""
    return _evaluate(model, heldout, teacher_forced, rollouts, horizon, seed)[0]


def evaluate_checkpoint(folder: str | None, tokenizer: str | None, data_dir: Path, threads: int = 2,
                        report: Path | None = None, teacher_forced: int = 200, rollouts: int = 6,
                        horizon: int = 300, seed: int = 0, sampling: Sampling | None = None) -> dict:
    """Evaluate the dynamics graphs in `folder` (default: shipped) with their tokenizer on
    `data_dir/heldout`, with the checkpoint's MaskGIT passes or `sampling`'s; with
    `report`, also write PNGs there."""
    heldout_paths(Path(data_dir) / "heldout")  # fail on missing data before loading models
    model = NeuralSkiing(folder, tokenizer, threads=threads, seed=seed, sampling=sampling)
    metrics, shown = _evaluate(model, Path(data_dir) / "heldout", teacher_forced, rollouts, horizon, seed)
    result = {"checkpoint": model.identity, "data": str(data_dir), **model.decoding, **metrics}
    if report is not None:
        write_report(Path(report), result, shown["strips"], shown["tracks"])
        result["report"] = str(report)
    return result


def px(v: float | None) -> str:
    """A distance in pixels for a person ("n/a" where there is none)."""
    return "n/a" if v is None else f"{v:.3f} px"


def summary_lines(result: dict) -> list[str]:
    """The headline figures, one per line, for a person."""
    def db(v) -> str:
        return "n/a" if v is None else f"{v:.2f} dB"

    def pct(v) -> str:
        return "n/a" if v is None else f"{100 * v:.2f}%"

    return [
        f"{result.get('checkpoint')} on {result.get('data')} (held-out episodes)",
        f"  teacher-forced next frame: PSNR {db(result['teacher_forced_psnr_db'])}, "
        f"token accuracy {pct(result['token_accuracy'])} over {result['teacher_forced_frames']} frames "
        f"(the frame before, copied: {db(result['copy_previous_psnr_db'])}, "
        f"{pct(result['copy_previous_token_accuracy'])})",
        f"  tokens that change from the frame before ({result['changed_tokens_per_frame'] or 0:.1f} a frame): "
        f"{pct(result['changed_token_accuracy'])} predicted right",
        f"  open loop ({result['rollouts']} rollouts of {result['rollout_horizon']} steps): "
        f"PSNR {db(result['rollout_psnr_db_15'])} at 15 steps, {db(result['rollout_psnr_db_60'])} at 60 "
        f"(the start frame held: {db(result['frozen_rollout_psnr_db_15'])}, "
        f"{db(result['frozen_rollout_psnr_db_60'])})",
        f"  skier persistence: {pct(result['skier_persistence'])} "
        f"(the start frame held: {pct(result['frozen_skier_persistence'])}); it moves sideways "
        f"{px(result['skier_sideways_px_per_step'])} a step (ALE's: {px(result['real_skier_sideways_px_per_step'])})",
        "  frames where it is lost: " + ("n/a" if not result["skier_misses"] else ", ".join(
            f"{pct(share)} {why}" for why, share in (("with no skier", result["skier_misses"]["no_skier"]),
                                                      ("off in row", result["skier_misses"]["row"]),
                                                      ("off in column only", result["skier_misses"]["column"])))),
        "  frames where the model lost the skier and the last one drawn was kept: "
        + ("off" if not result.get("skier_hold") else pct(result["skier_held_share"])),
        f"  pixels that change from the frame before, in the open loop: {pct(result['changed_pixel_share'])} "
        f"(ALE's: {pct(result['real_changed_pixel_share'])})",
        f"  one step: {result['step_ms_p50']} ms (median)",
        "  the skier's colour: " + ("left wherever the model draws it" if not result.get("skier_box") else
                                     "kept to rows {top}-{bottom}, {half_width:.2f} px either side of the told column"
                                     .format(**result["skier_box"])),
        "  the slope: " + ("moved up by the skier state's downhill motion before each frame is drawn, "
                           + ("the course coming in at the bottom" if result.get("course") else "bare snow coming in")
                           if result.get("slope_scroll") else "as the model draws it"),
    ]


def headline(result: dict) -> str:
    """The headline figures, one per line, for a person."""
    return "\n".join(summary_lines(result))


# ---- the report ----------------------------------------------------------------------------

def write_report(folder: Path, result: dict, strips: list[dict], tracks: list[dict]) -> None:
    """rollout_strips.png (ALE, neural, differences at a few horizons), psnr_by_horizon.png
    (with the share of pixels that change a step beneath) and skier_tracks.png (the skier's
    column in each rollout, ALE's and the model's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    cols = max([len(s["horizons"]) for s in strips] + [1])
    rows = max(1, 3 * len(strips))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 2.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for n, strip in enumerate(strips):
        for c, (k, real, neural) in enumerate(zip(strip["horizons"], strip["real"], strip["neural"])):
            images = (to_rgb(real), to_rgb(neural), difference_image(neural, real))
            for r, (image, label) in enumerate(zip(images, ("ALE", "neural", "differ"))):
                ax = axes[3 * n + r, c]
                ax.imshow(image, interpolation="nearest")
                ax.set_title(f"{label} +{k}" + (f"\n{strip['episode']}@{strip['start']}" if r == c == 0 else ""),
                             fontsize=7)
    fig.suptitle("open-loop rollouts under the episodes' own actions", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / "rollout_strips.png", dpi=90)
    plt.close(fig)

    fig, (ax, moved) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=(3, 2))
    curve = result["psnr_by_horizon"]
    ax.plot(np.arange(1, len(curve) + 1), curve, label="open-loop rollout")
    frozen = result["frozen_psnr_by_horizon"]
    ax.plot(np.arange(1, len(frozen) + 1), frozen, color="grey", label="the start frame held")
    ax.axhline(result["teacher_forced_psnr_db"], color="k", linestyle="--", label="teacher-forced next frame")
    for k in (15, 60):
        if k <= len(curve):
            ax.axvline(k, color="grey", linewidth=0.5)
    ax.set_ylabel(f"PSNR (dB, capped at {PSNR_CAP_DB:g})")
    ax.set_title(f"PSNR over the horizon ({result['rollouts']} rollouts)")
    ax.legend(fontsize=8)
    for key, label, colour in (("changed_pixels_by_horizon", "open-loop rollout", "tab:blue"),
                               ("real_changed_pixels_by_horizon", "ALE", "k")):
        share = 100 * np.asarray(result[key])
        moved.plot(np.arange(1, len(share) + 1), share, color=colour, linewidth=0.8, label=label)
    moved.set_xlabel("steps ahead")
    moved.set_ylabel("pixels changed (%)")
    moved.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "psnr_by_horizon.png", dpi=90)
    plt.close(fig)
    write_skier_tracks(folder / "skier_tracks.png", result, tracks)


def write_skier_tracks(path: Path, result: dict, tracks: list[dict]) -> None:
    """One small chart a rollout: the skier's column over the steps in ALE's frames and the
    model's, with the band within which persistence counts the model's skier as there."""
    import matplotlib.pyplot as plt

    cols = min(6, max(1, len(tracks)))
    rows = max(1, -(-len(tracks) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.8 * rows), squeeze=False, sharey=True)
    for ax in axes.ravel()[len(tracks):]:
        ax.axis("off")
    kept = result.get("skier_persistence_by_rollout") or [None] * len(tracks)
    for ax, track, share in zip(axes.ravel(), tracks, kept):
        steps = np.arange(len(track["real"]))
        ax.fill_between(steps, track["real"] - SKIER_TOLERANCE_PX, track["real"] + SKIER_TOLERANCE_PX,
                        color="grey", alpha=0.3, linewidth=0)
        ax.plot(steps, track["real"], color="k", linewidth=0.8, label="ALE")
        ax.plot(steps, track["neural"], color="tab:red", linewidth=0.8, label="neural")
        kept_text = "" if share is None else f", kept {100 * share:.0f}%"
        ax.set_title(f"{track['episode']}@{track['start']}{kept_text}", fontsize=6)
        ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("skier column (px of 80)", fontsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"the skier's column in open-loop rollouts; ALE's moves {px(result['real_skier_sideways_px_per_step'])} "
                 f"a step, the model's {px(result['skier_sideways_px_per_step'])}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
