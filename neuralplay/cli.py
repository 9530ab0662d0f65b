"""The `neuralplay` command. Each subcommand imports what it needs when it runs, so that
playing never loads torch and `--help` is instant."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from neuralplay import __version__
from neuralplay.errors import UserError
from neuralplay.paths import user_data_dir

if TYPE_CHECKING:  # annotations only: importing the runtime loads onnxruntime
    from neuralplay.runtime.skiing import Sampling

PLAYABLE = ("tetris", "skiing")  # play, collect, bench
TRAINABLE = ("tetris", "skiing-tokenizer", "skiing-dynamics")  # train, export
FITTED = ("skier-state",)  # train only: tables fit straight into a model's folder, nothing to export
MASKGIT_HELP = "Skiing: MaskGIT passes a neural frame takes (default: the checkpoint's, recorded at export)"
TEMPERATURE_HELP = ("Skiing: draw each code from the model's distribution at this temperature instead of taking "
                    "the most likely one (default 0: the most likely)")
SKIER_BOX_HELP = ("Skiing: leave the skier's colour wherever the model draws it (default: painted over outside the "
                  "rows and columns the skier can be in, where the model's skier-state tables give them)")
SLOPE_SCROLL_HELP = ("Skiing: leave the frame before as the model drew it (default: its slope moved up by the "
                     "skier state's downhill motion before the next frame is drawn, where the model's skier-state "
                     "tables give it)")
COURSE_HELP = ("Skiing: bring the course's gates, trees and moguls in at the bottom of the moved slope, where the "
               "model's skier-state tables hold the course and the start is found on it (default: bare snow; the "
               "course scores better on skiing that moves and costs skier persistence, docs/skiing.md)")
FALLS_HELP = ("Skiing: never let the skier fall (default: it falls where the skier-state tables' fall rules say, "
              "a tree or a flag passing it, where the start is found on the course)")
SKIER_HOLD_HELP = ("Skiing: show the frame as the model drew it where it loses the skier (default: a frame with no "
                   "skier, or a sliver of one, keeps the last skier drawn at the skier state's column)")
EVALUATED = ("tetris", "skiing-tokenizer", "skiing")  # eval (skiing: the dynamics with its tokenizer)
PRECISIONS = ("auto", "bf16", "fp32")  # of training's forward pass: training.loop.resolve_precision
TETRIS_EVENTS = ("none", "left", "right", "rotate", "soft_drop", "hard_drop")  # games.tetris.EVENT_NAMES; a test keeps them equal
SKIING_STEERING = ("heading", "direct")  # training.skiing_data.STEERING; a test keeps them equal


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def default_data(game: str) -> Path:
    return user_data_dir() / "data" / game


def training_data(args, game: str) -> Path:
    """The one data folder a trainer reads (`--data`, default the user data folder's); only
    `train skier-state` fits on several."""
    if args.data and len(args.data) > 1:
        raise UserError(f"train {args.game} reads one --data folder, not {len(args.data)}: only skier-state "
                        "fits on several")
    return Path(args.data[0]) if args.data else default_data(game)


def default_run(game: str) -> Path:
    return user_data_dir() / "runs" / game


def maskgit_passes(args) -> int | None:
    """--maskgit-steps, checked; None where not given."""
    if args.maskgit_steps is not None and args.maskgit_steps < 1:
        raise UserError(f"--maskgit-steps {args.maskgit_steps}: a frame takes 1 MaskGIT pass or more")
    return args.maskgit_steps


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """Neural Skiing's decoding options, as play, eval and bench take them."""
    parser.add_argument("--maskgit-steps", type=int, metavar="N", help=MASKGIT_HELP)
    parser.add_argument("--temperature", type=float, default=0.0, metavar="T", help=TEMPERATURE_HELP)
    parser.add_argument("--no-skier-box", action="store_true", help=SKIER_BOX_HELP)
    parser.add_argument("--no-slope-scroll", action="store_true", help=SLOPE_SCROLL_HELP)
    parser.add_argument("--course", action="store_true", help=COURSE_HELP)
    parser.add_argument("--no-falls", action="store_true", help=FALLS_HELP)
    parser.add_argument("--no-skier-hold", action="store_true", help=SKIER_HOLD_HELP)


def skiing_sampling(args) -> Sampling | None:
    """Neural Skiing's decoding as --maskgit-steps, --temperature, --no-skier-box,
    --no-slope-scroll, --course, --no-falls and --no-skier-hold ask; None where none is given
    (the checkpoint's passes, the most likely codes, the skier's box, the slope scrolled with
    bare snow coming in, the skier's falls, the skier held)."""
    from neuralplay.runtime.skiing import Sampling

    passes = maskgit_passes(args)
    if args.temperature < 0:
        raise UserError(f"--temperature {args.temperature}: 0 (the most likely code) or more")
    if passes is None and not args.temperature and not (args.no_skier_box or args.no_slope_scroll or args.course
                                                        or args.no_falls or args.no_skier_hold):
        return None
    return Sampling(steps=passes, temperature=args.temperature, skier_box=not args.no_skier_box,
                    slope_scroll=not args.no_slope_scroll, course=args.course, falls=not args.no_falls,
                    skier_hold=not args.no_skier_hold)


def cmd_play(args) -> int:
    from neuralplay.app.loop import LoopOptions, run
    from neuralplay.bench import FIRST_FRAME

    engine = "compare" if args.compare else args.engine
    model = starts = None
    if engine in ("neural", "compare") and args.game == "tetris":
        from neuralplay.runtime.tetris import NeuralTetris

        model = NeuralTetris(args.checkpoint, seed=args.seed, threads=args.threads, start_level=args.level)
    elif engine in ("neural", "compare"):
        from neuralplay.runtime.skiing import NeuralSkiing, load_starts

        model = NeuralSkiing(args.checkpoint, args.tokenizer, threads=args.threads, seed=args.seed,
                             sampling=skiing_sampling(args))
        starts = load_starts(model.step_ckpt.onnx_path.parent)
    import pygame  # the window's library; imported once the checkpoint is known to be good

    recorder = None
    if args.record is not None:
        from neuralplay.recording.writer import Recorder, default_path

        path = Path(args.record) if args.record else default_path(args.game, engine)
        panes = {"real": ["real"], "neural": ["neural"], "compare": ["real", "neural"]}[engine]
        recorder = Recorder(path, args.game, engine, panes, model.identity if model else None,
                            {"seed": args.seed})
        print(recorder.error or f"recording to {path}", flush=True)
    if args.game == "tetris":
        from neuralplay.app.tetris import PANE_SIZE, TetrisSession

        session = TetrisSession(engine, args.seed, pygame, model, autopilot=args.autopilot,
                                level=args.level, recorder=recorder)
    else:
        from neuralplay.app.skiing import PANE_SIZE, SkiingSession

        session = SkiingSession(engine, args.seed, pygame, model, starts, autopilot=args.autopilot,
                                frameskip=args.frameskip, recorder=recorder)
    n_panes = 2 if engine == "compare" else 1
    opts = LoopOptions(max_steps=args.max_steps, speed=args.speed, scale=args.scale,
                       title=f"neuralplay: {engine} {args.game}")
    try:
        run(session, PANE_SIZE, n_panes, opts, on_first_frame=lambda: print(FIRST_FRAME, flush=True))
    finally:
        if recorder is not None:
            recorder.close()
            print(recorder.error or f"recorded {recorder.steps} steps to {recorder.path}")
    print(f"played {session.played} steps of {engine} {args.game}")
    return 0


def cmd_replay(args) -> int:
    import pygame

    from neuralplay.app.loop import LoopOptions, run
    from neuralplay.app.replay import ReplaySession
    from neuralplay.recording.format import read

    rec = read(args.path)
    if "action" not in rec.arrays or not len(rec.arrays["action"]):
        raise UserError(f"{args.path} holds no steps ({rec.damaged or 'empty'}): nothing to replay")
    if not rec.complete:
        print(f"warning: {args.path} was cut short ({rec.damaged or 'no end marker'}); "
              f"replaying its {rec.steps} steps", file=sys.stderr)
    session = ReplaySession(rec, pygame)
    opts = LoopOptions(speed=args.speed, scale=args.scale, title=f"neuralplay replay: {Path(args.path).name}",
                       max_steps=session.last if args.exit_at_end else None)
    run(session, session.pane_size, len(session.names), opts)
    return 0


def cmd_recordings(args) -> int:
    from neuralplay.recording.library import describe, list_recordings

    if args.json:
        print(json.dumps(describe(Path(args.json)), indent=2))
        return 0
    folder = Path(args.dir) if args.dir else user_data_dir() / "recordings"
    rows = list_recordings(folder)
    if not rows:
        print(f"no recordings in {folder}: record one with `neuralplay play tetris --record`")
        return 0
    print(f"{'game':8} {'engine':8} {'steps':>7} {'seconds':>8} {'KB':>8}  {'date':19}  path")
    for r in rows:
        print(f"{r['game']:8} {r['engine']:8} {r['steps']:7d} {r['duration_s']:8.1f} "
              f"{r['bytes'] / 1024:8.1f}  {r['date']:19}  {r['path']}{'' if r['complete'] else '  (cut short)'}")
    return 0


def cmd_collect(args) -> int:
    out = Path(args.out) if args.out else default_data(args.game)
    if args.game == "skiing":
        return collect_skiing(args, out)
    from neuralplay.training.tetris_data import CollectConfig, collect, collect_recordings

    if args.from_recordings:
        facts = collect_recordings(Path(args.from_recordings), out)
        print(f"recorded: {facts['transitions']} transitions from {facts['recordings']} recordings, "
              f"spawns {facts['spawn_fraction']:.1%}; wrote {out}/recorded.npz (train uses it beside train.npz)")
        return 0
    cfg = CollectConfig(out=str(out), train_steps=args.train_steps, test_steps=args.test_steps,
                        seed=args.seed, spawn_fraction=args.spawn_fraction,
                        landing_fraction=args.landing_fraction,
                        hard_drop_fraction=args.hard_drop_fraction)
    summary = collect(cfg, show_progress=sys.stderr.isatty())
    for name, facts in summary["sets"].items():
        print(f"{name}: {facts['transitions']} transitions, spawns {facts['spawn_fraction']:.1%}, "
              f"events {facts['events']}")
    print(f"wrote {out}/{{train,test_train,test_play}}.npz and summary.json")
    return 0


def collect_skiing(args, out: Path) -> int:
    from neuralplay.training.skiing_data import SkiingCollectConfig, collect, collect_recordings

    if args.from_recordings:
        facts = collect_recordings(Path(args.from_recordings), out)
        print(f"recorded: {facts['steps']} steps from {facts['recordings']} recordings; "
              f"wrote {out}/train/recorded-*.npz (training reads them with the agents' episodes)")
        return 0
    cfg = SkiingCollectConfig(out=str(out), episodes_per_policy=args.episodes, seed=args.seed,
                              max_steps=args.max_episode_steps, steering=args.steering)
    summary = collect(cfg, show_progress=sys.stderr.isatty())
    for split, policies in summary["splits"].items():
        print(f"{split}: " + ", ".join(f"{p} {f['episodes']} episodes / {f['steps']} steps "
                                       f"({f['still_steps'] / max(f['steps'], 1):.0%} still)"
                                       for p, f in policies.items()))
    print(f"wrote {out}/train/*.npz, {out}/heldout/*.npz and summary.json")
    return 0


def schedule_options(args) -> dict:
    """The training options given on the command line; the rest keep each model's defaults."""
    given = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "eval_every": args.eval_every}
    return {k: v for k, v in given.items() if v is not None}


def train_skiing(args) -> int:
    """The Skiing tokenizer or dynamics: the same options, each its own config and loop."""
    if args.game == "skiing-tokenizer":
        from neuralplay.models.vqvae import VQVAEConfig, token_rows
        from neuralplay.games.skiing import HUD_ROWS
        from neuralplay.training.skiing_tokenizer import TokenizerTrainConfig as Config, train
        given = {"codebook_size": args.codebook_size, "groups": args.codebook_groups,
                 "hud_band": token_rows(HUD_ROWS) if args.hud_apart else None,
                 "local_encoder": True if args.local_encoder else None}
        model = VQVAEConfig(**{k: v for k, v in given.items() if v is not None})
        if model.codebook_size < 2 or model.groups < 1 or model.code_dim % model.groups:
            raise UserError(f"--codebook-size {model.codebook_size} --codebook-groups {model.groups}: a codebook "
                            f"needs 2 codes or more, and the groups must divide the code's {model.code_dim} "
                            "dimensions (1, 2, 4, 8, 16 or 32)")
        extra = {"model": model, "skier_weight": args.skier_weight, "precision": args.precision,
                 "init_from": args.init_from, "codebook_size": args.codebook_size}
    else:
        from neuralplay.models.st_transformer import STConfig
        from neuralplay.training.skiing_dynamics import DynamicsTrainConfig as Config, train
        if args.context is not None and args.context < 2:
            raise UserError(f"--context {args.context}: the model needs a past frame and the one it predicts (2 or more)")
        extra = {"tokenizer": args.tokenizer, "init_from": args.init_from, "model": STConfig(), "context": args.context,
                 "change_weight": args.change_weight, "skier_weight": args.skier_weight,
                 "hud_weight": args.hud_weight, "every_frame": args.every_frame, "layers": args.layers,
                 "stale_context": args.stale_context, "open_loop_context": args.open_loop_context,
                 "skier_motion": args.skier_motion, "shifted_context": args.shifted_context,
                 "recent_noise": args.recent_noise, "fresh_lr_scale": args.fresh_lr_scale}
        if not 0 <= args.stale_context < 1:
            raise UserError(f"--stale-context {args.stale_context}: a share of tokens, 0 or more and below 1")
        if not 0 <= args.open_loop_context <= 1:
            raise UserError(f"--open-loop-context {args.open_loop_context}: a share of training steps, 0 to 1")
        if not 0 <= args.shifted_context <= 1:
            raise UserError(f"--shifted-context {args.shifted_context}: a share of clips, 0 to 1")
        if not 0 <= args.recent_noise < float("inf"):  # NaN fails the comparison too
            raise UserError(f"--recent-noise {args.recent_noise}: pixels a step, 0 or more")
        pasts = [flag for flag, on in (("--stale-context", args.stale_context), ("--open-loop-context",
                 args.open_loop_context), ("--shifted-context", args.shifted_context)) if on]
        if len(pasts) > 1:
            raise UserError(f"{' and '.join(pasts)} are ways to show the model an imperfect past: give one of them")
    if not 0 < args.fresh_lr_scale < float("inf"):
        raise UserError(f"--fresh-lr-scale {args.fresh_lr_scale}: a multiple of --lr, above 0")
    for key in ("skier_weight", "change_weight", "hud_weight"):  # the loss weights this model takes
        if extra.get(key) is not None and extra[key] <= 0:
            raise UserError(f"--{key.replace('_', '-')} {extra[key]}: a loss weight is a positive number")
    data = training_data(args, "skiing")
    run_dir = Path(args.run) if args.run else default_run(args.game)
    cfg = Config(data=str(data), run_dir=str(run_dir), max_minutes=args.max_minutes, threads=args.threads,
                 seed=args.seed, **schedule_options(args), **extra)
    result = train(cfg, resume=args.resume, show_progress=sys.stderr.isatty())
    print(f"trained to step {result['step']}; run folder {run_dir} (TensorBoard logs in {run_dir / 'logs'})")
    return 0


def train_skier_state(args) -> int:
    """The skier-state tables, fit on ALE replays of the training episodes of every --data
    folder, into --out."""
    from neuralplay.training.skier_tables import train_skier_state as fit

    if not args.out:
        raise UserError("train skier-state needs --out FOLDER: the folder of a --skier-motion dynamics model's "
                        "graphs, whose runtime then carries the skier's column by them")
    path = fit([Path(d) for d in args.data] if args.data else [default_data("skiing")], Path(args.out))
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def cmd_train(args) -> int:
    if args.game == "skier-state":
        return train_skier_state(args)
    if args.layers is not None and args.layers < 1:
        raise UserError(f"--layers {args.layers}: a model has 1 layer or more")
    if args.game.startswith("skiing-"):
        return train_skiing(args)
    from neuralplay.models.tetris_gan import TetrisGANConfig
    from neuralplay.training.tetris_train import TrainConfig, source_model_config, train

    data = training_data(args, args.game)
    run_dir = Path(args.run) if args.run else default_run(args.game)
    model = TetrisGANConfig(d_model=args.d_model, n_layers=args.layers or TetrisGANConfig.n_layers, d_ff=2 * args.d_model,
                            columns=args.columns, piece_from_noise=args.piece_from_noise)
    if args.resume and (run_dir / "config.json").exists():  # a resumed run keeps its model
        model = TetrisGANConfig(**json.loads((run_dir / "config.json").read_text())["model"])
    elif args.init_from:  # a warm start takes the size of what it starts from
        source = source_model_config(Path(args.init_from))
        model = TetrisGANConfig(**{**source, "columns": args.columns or source.get("columns", 0),
                                   "piece_from_noise": args.piece_from_noise or source.get("piece_from_noise", False)})
    if not 0 <= model.columns <= model.n_layers:
        raise UserError(f"--columns {model.columns}: the column stream runs in 0 to {model.n_layers} "
                        "(the model's --layers) layers")
    cfg = TrainConfig(data=str(data), run_dir=str(run_dir), adv_weight=args.adv_weight, max_minutes=args.max_minutes,
                      threads=args.threads, seed=args.seed, model=model, init_from=args.init_from,
                      focus_event=args.focus_event, focus_share=args.focus_share, ema_decay=args.ema_decay,
                      fresh_lr_scale=args.fresh_lr_scale, **schedule_options(args))
    result = train(cfg, resume=args.resume, show_progress=sys.stderr.isatty())
    print(f"trained to step {result['step']}; run folder {run_dir} (TensorBoard logs in {run_dir / 'logs'})")
    return 0


def cmd_export(args) -> int:
    if args.target == "skiing-tokenizer":
        from neuralplay.training.skiing_tokenizer import export as export_tokenizer

        run_dir = Path(args.run) if args.run else default_run(args.target)
        data = Path(args.data) if args.data else default_data("skiing")
        out_dir = Path(args.out).parent if args.out.endswith(".onnx") else Path(args.out)
        for path in export_tokenizer(run_dir, out_dir, data):
            print(f"wrote {path} and {path.with_suffix('.onnx')}")
        return 0
    if args.target == "skiing-dynamics":
        from neuralplay.training.skiing_dynamics import export as export_dynamics

        run_dir = Path(args.run) if args.run else default_run(args.target)
        data = Path(args.data) if args.data else default_data("skiing")
        out_dir = Path(args.out).parent if args.out.endswith(".onnx") else Path(args.out)
        from neuralplay.runtime.skiing import Sampling

        passes = maskgit_passes(args)  # what export records; drawing codes is the player's choice, not the checkpoint's
        sampling = Sampling(steps=passes) if passes else None
        for path in export_dynamics(run_dir, out_dir, data, args.tokenizer, sampling=sampling,
                                    vocabulary=not args.any_token):
            print(f"wrote {path} and {path.with_suffix('.onnx')}")
        return 0
    if args.target != "tetris":
        return export_recording(args)
    if args.video:
        raise UserError("--video exports a recording: `neuralplay export PATH.nprec --video out.mp4`")
    from neuralplay.training.tetris_export import export

    args.game = args.target
    run_dir = Path(args.run) if args.run else default_run(args.game)
    data = Path(args.data) if args.data else default_data(args.game)
    meta_path = export(run_dir, Path(args.out), data, closed_loop_steps=args.closed_loop_steps)
    print(f"wrote {Path(args.out)} and {meta_path}")
    return 0


def export_recording(args) -> int:
    from neuralplay.app.replay import pane_renderer
    from neuralplay.recording.format import read
    from neuralplay.recording.video import export_video

    if not args.video:
        raise UserError(f"{args.target} is not a model ({', '.join(TRAINABLE)}); to export a recording "
                        "as a video add --video out.mp4 (or .gif)")
    rec = read(args.target)
    if "action" not in rec.arrays:
        raise UserError(f"{args.target} holds no steps ({rec.damaged or 'empty'}): nothing to export")
    render, _ = pane_renderer(rec.header["game"])
    n = export_video(rec, render, Path(args.video), fps=args.fps, scale=args.video_scale)
    print(f"wrote {args.video}: {n} frames at {args.fps:g} fps" + ("" if rec.complete else " (recording cut short)"))
    return 0


def cmd_eval(args) -> int:
    if args.game == "skiing-tokenizer":
        from neuralplay.training.skiing_tokenizer_eval import evaluate_checkpoint as evaluate_tokenizer

        data = Path(args.data) if args.data else default_data("skiing")
        result = evaluate_tokenizer(args.checkpoint, data, threads=args.threads)
        print(json.dumps(result, indent=2) if args.json else
              "\n".join(f"{k}: {v}" for k, v in result.items()))
        return 0
    if args.game == "skiing":
        from neuralplay.training.skiing_dynamics_eval import evaluate_checkpoint as evaluate_dynamics
        from neuralplay.training.skiing_dynamics_eval import headline as dynamics_headline

        if args.rollouts < 1:
            raise UserError(f"--rollouts {args.rollouts}: the eval needs 1 rollout or more")
        data = Path(args.data) if args.data else default_data("skiing")
        result = evaluate_dynamics(args.checkpoint, args.tokenizer, data, threads=args.threads,
                                   report=Path(args.report) if args.report else None,
                                   rollouts=args.rollouts, sampling=skiing_sampling(args))
        print(json.dumps(result, indent=2) if args.json else dynamics_headline(result))
        return 0
    from neuralplay.training.tetris_eval import evaluate_checkpoint, headline

    data = Path(args.data) if args.data else default_data(args.game)
    result = evaluate_checkpoint(args.checkpoint, data, closed_loop_steps=args.closed_loop_steps,
                                 threads=args.threads, report=Path(args.report) if args.report else None)
    print(json.dumps(result, indent=2) if args.json else headline(result))
    return 0


def cmd_bench(args) -> int:
    from neuralplay.bench import bench_skiing, bench_tetris

    if args.game == "skiing":
        result = bench_skiing(args.checkpoint, args.tokenizer, steps=args.steps or 10_000, threads=args.threads,
                              sampling=skiing_sampling(args))
    else:
        result = bench_tetris(args.checkpoint, steps=args.steps or 3000, threads=args.threads)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def build_parser() -> Parser:
    p = Parser(prog="neuralplay", description="Games whose every frame is produced by a neural network.")
    p.add_argument("--version", action="version", version=f"neuralplay {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    play = sub.add_parser("play", help="play a game in a window (neural by default)")
    play.add_argument("game", choices=PLAYABLE)
    play.add_argument("--engine", choices=("neural", "real"), default="neural",
                      help="neural: the world model draws every frame; real: the real engine")
    play.add_argument("--compare", action="store_true",
                      help="real and neural side by side, driven by the same keys")
    play.add_argument("--checkpoint", help="checkpoint name, .json or .onnx (default: the shipped one); "
                      "Skiing: the folder of the dynamics graphs")
    play.add_argument("--tokenizer", help="Skiing: folder of the tokenizer's graphs (default: shipped)")
    play.add_argument("--autopilot", action="store_true", help="the heuristic agent presses the keys")
    play.add_argument("--max-steps", type=int, help="quit after this many engine steps")
    play.add_argument("--speed", type=float, default=1.0, help="game time per real time (default 1)")
    play.add_argument("--scale", type=float, default=1.0, help="initial window size factor (resizable)")
    play.add_argument("--level", type=int, default=1, help="Tetris: starting level (gravity speed)")
    play.add_argument("--frameskip", type=int, default=4,
                      help="Skiing: console frames per step (4: 15 steps/s, as ALE's default)")
    play.add_argument("--seed", type=int, default=0)
    add_decoding_arguments(play)
    play.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    play.add_argument("--record", nargs="?", const="", metavar="PATH",
                      help="record the session (default path: the user data folder's recordings/)")
    play.set_defaults(func=cmd_play)

    replay = sub.add_parser("replay", help="replay a recording in the app")
    replay.add_argument("path")
    replay.add_argument("--speed", type=float, default=1.0)
    replay.add_argument("--scale", type=float, default=1.0)
    replay.add_argument("--exit-at-end", action="store_true", help="quit when the replay reaches its end")
    replay.set_defaults(func=cmd_replay)

    recs = sub.add_parser("recordings", help="list recorded sessions")
    recs.add_argument("--json", metavar="PATH", help="print one recording's facts as JSON")
    recs.add_argument("--dir", help="folder to list (default: the user data folder's recordings/)")
    recs.set_defaults(func=cmd_recordings)

    collect = sub.add_parser("collect", help="play the real game with agents and write data sets")
    collect.add_argument("game", choices=PLAYABLE)
    collect.add_argument("--out", help="output folder (default: the user data folder)")
    collect.add_argument("--train-steps", type=int, default=600_000, help="Tetris: training transitions")
    collect.add_argument("--test-steps", type=int, default=40_000, help="Tetris: transitions per test set")
    collect.add_argument("--spawn-fraction", type=float,
                         help="resample the train set to this share of spawns (0.2: the seed's 80/20)")
    collect.add_argument("--landing-fraction", type=float, default=0.1,
                         help="Tetris: add this share of pieces-landing steps (locks, line clears) to train")
    collect.add_argument("--hard-drop-fraction", type=float, default=0.0,
                         help="Tetris: add this share of hard drops of new pieces onto the train stacks "
                              "(the player's placement or any reachable one) to train")
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument("--episodes", type=int, default=6, help="Skiing: training episodes per policy")
    collect.add_argument("--max-episode-steps", type=int, default=1500, help="Skiing: steps per episode at most")
    collect.add_argument("--steering", choices=SKIING_STEERING, default="heading",
                         help="Skiing: how the gates and crash players steer: by the skier's heading "
                              "(they ski the slope), or holding the key toward the target (the skier "
                              "ends up standing sideways; the shipped models' data)")
    collect.add_argument("--from-recordings", metavar="DIR",
                         help="turn the real-engine recordings in DIR into training data "
                              "(Tetris: recorded.npz; Skiing: train/recorded-*.npz)")
    collect.set_defaults(func=cmd_collect)

    train = sub.add_parser("train", help="train a world model (needs the [train] extra)")
    train.add_argument("game", choices=TRAINABLE + FITTED)
    train.add_argument("--out", help="skier-state: the folder the tables are written to (skier_state.npz): a "
                       "--skier-motion dynamics model's exported folder, whose runtime then reads the skier's "
                       "state off the real frames at reset and moves it by the keys")
    train.add_argument("--tokenizer", help="skiing-dynamics: folder of the tokenizer's graphs (default: shipped)")
    train.add_argument("--data", action="append",
                       help="data folder from `collect` (default: the user data folder); skier-state: "
                            "repeat it to fit on the training episodes of several")
    train.add_argument("--run", help="run folder: checkpoints and TensorBoard logs")
    train.add_argument("--steps", type=int, help="steps to train to (defaults: Tetris 14000, "
                       "tokenizer 4000, dynamics 6000)")
    train.add_argument("--batch-size", type=int, help="defaults: Tetris 128, tokenizer 32, dynamics 16")
    train.add_argument("--lr", type=float, help="peak learning rate (defaults: 1e-3, dynamics 5e-4)")
    train.add_argument("--adv-weight", type=float, default=0.02, help="weight of the GAN loss")
    train.add_argument("--codebook-size", type=int,
                       help="skiing-tokenizer: codes per codebook (default 512; with --init-from the source's, "
                            "or fresh codebooks of this many codes)")
    train.add_argument("--codebook-groups", type=int,
                       help="skiing-tokenizer: codebooks of a product quantiser; a token is one code of each "
                            "(default 1)")
    train.add_argument("--hud-apart", action="store_true",
                       help="skiing-tokenizer: code the HUD's two rows of tokens apart from the slope's, so "
                            "the timer cannot change the slope's codes (a resumed run keeps its own)")
    train.add_argument("--local-encoder", action="store_true",
                       help="skiing-tokenizer: the encoder sees only each token's own 8x8 patch, so a code "
                            "changes only when its patch does (with --init-from, the source's 3x3 kernels keep "
                            "their centres; a resumed run keeps its own)")
    train.add_argument("--skier-weight", type=float,
                       help="skiing-tokenizer: loss weight of the skier's pixels (default 20; snow 1, the rest 5); "
                            "skiing-dynamics: of the tokens that show the skier in the frame or the one before, "
                            "times --change-weight (default 1); also on --resume, where the rest of the model "
                            "comes from the run, and on --init-from")
    train.add_argument("--change-weight", type=float,
                       help="skiing-dynamics: loss weight of the tokens that differ from the frame before (as "
                            "the model reads it, under --stale-context or --open-loop-context), the others' "
                            "being 1 (default: 1 for a new run, the run's own on --resume, the source's on "
                            "--init-from)")
    train.add_argument("--hud-weight", type=float,
                       help="skiing-dynamics: loss weight of the tokens of the HUD's rows (gates left, the timer), "
                            "times --change-weight (default 1; --resume and --init-from as above)")
    train.add_argument("--d-model", type=int, default=128)
    train.add_argument("--layers", type=int,
                       help="model layers (Tetris default 5, skiing-dynamics 4); skiing-dynamics with --init-from: "
                            "more than the source's adds layers after its own, which start as identity")
    train.add_argument("--eval-every", type=int, help="steps between evaluations (default 1000, Skiing 500)")
    train.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this long")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --run (it keeps its model and what it started from)")
    train.add_argument("--init-from", metavar="RUN|CHECKPOINT",
                       help="Tetris: start a new run from a run folder's models or an exported checkpoint's "
                            "generator (e.g. the shipped `tetris`); skiing-dynamics: from a dynamics run "
                            "folder's model or an exported one's folder (e.g. `checkpoints`, the shipped one); "
                            "skiing-tokenizer: from an exported tokenizer's folder (e.g. `checkpoints`); "
                            "the model size comes from it")
    train.add_argument("--every-frame", action="store_true",
                       help="skiing-dynamics: mask and predict every frame of each clip from the clean frames "
                            "before it (a second, masked stream through the model), not only the last: "
                            "context - 1 predictions a clip, a step taking about three times as long")
    train.add_argument("--stale-context", type=float, default=0.0, metavar="R",
                       help="skiing-dynamics: the model reads the past frames of each clip with up to this share "
                            "of their tokens (drawn per clip) kept from the frame before, as an open loop that "
                            "missed a change shows them; the targets stay real (default 0: none; a resumed run "
                            "takes it again from the command)")
    train.add_argument("--open-loop-context", type=float, default=0.0, metavar="P",
                       help="skiing-dynamics: in this share of the training steps the model reads its own open "
                            "loop as the past: after 1 to context - 2 real frames, each past frame is its "
                            "one-pass guess from the frames before; the target stays the real next frame. A "
                            "step reading it takes about 1.5 times as long (default 0: never; a resumed run "
                            "takes it again from the command)")
    train.add_argument("--shifted-context", type=float, default=0.0, metavar="S",
                       help="skiing-dynamics: in this share of the clips the past's skier is moved 1 to 6 pixels "
                            "sideways (the same in every past frame; with --skier-motion its column with it) "
                            "while the frame predicted stays real, so the model learns to draw the skier where "
                            "its column says; those frames are encoded again each step (default 0: never; a "
                            "resumed run takes it again from the command)")
    train.add_argument("--skier-motion", action="store_true",
                       help="skiing-dynamics: condition each frame on the skier's column and learn its velocity "
                            "under each action, which the runtime integrates as a float, so that motion slower "
                            "than a pixel a step can add up; with --init-from, the model starts as its source "
                            "and learns the new parts (a resumed run keeps what it had)")
    train.add_argument("--recent-noise", type=float, default=0.0, metavar="N",
                       help="skiing-dynamics, a --skier-motion model: the velocity head reads the skier's recent "
                            "motion with Gaussian noise of N px a step added, so that it leans on it less: in the "
                            "open loop it is the motion the runtime integrated, fed back (default 0; a resumed "
                            "run takes it again from the command)")
    train.add_argument("--context", type=int,
                       help="skiing-dynamics: frames the model sees, the predicted one included (default: with "
                            "--init-from the source's, else 4); with --init-from it may differ from the source's; "
                            "a resumed run keeps its own")
    train.add_argument("--columns", type=int, default=0, metavar="N",
                       help="Tetris: a column stream in the first N layers (10 column tokens the rows read "
                            "from; with --init-from a model with fewer such layers it starts as that model)")
    train.add_argument("--fresh-lr-scale", type=float, default=1.0,
                       help="with --init-from: the learning rate of the parameters the source lacks, as a "
                            "multiple of --lr (Tetris: the column layers of --columns; skiing-dynamics: the "
                            "layers --layers adds, the parts --skier-motion adds, and a token embedding and head "
                            "that start fresh; default 1)")
    train.add_argument("--piece-from-noise", action="store_true",
                       help="Tetris: the generator sees only which piece the noise picks (its argmax), "
                            "so steps without a spawn cannot depend on the noise")
    train.add_argument("--focus-event", choices=TETRIS_EVENTS,
                       help="Tetris: an event that gets --focus-share of every batch")
    train.add_argument("--focus-share", type=float, default=0.0, help="Tetris: share of each batch for --focus-event")
    train.add_argument("--ema-decay", type=float, default=0.0, metavar="D",
                       help="Tetris: keep a moving average of the generator's weights (e.g. 0.999); it is the "
                            "generator evaluated, exported and warm-started from (default 0: none; a resumed run keeps its own)")
    train.add_argument("--threads", type=int, default=2)
    train.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="skiing-tokenizer: the forward pass in bf16 or fp32; auto (default) is bf16 where the CPU "
                            "has bf16 instructions (AVX512-BF16, AMX), several times faster there")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="export a trained run to ONNX, or a recording to a video")
    export.add_argument("target", help="tetris, skiing-tokenizer or skiing-dynamics for ONNX, "
                        "or a recording PATH with --video")
    export.add_argument("--video", metavar="OUT", help="write the recording as OUT.mp4 or OUT.gif")
    export.add_argument("--fps", type=float, default=20.0)
    export.add_argument("--video-scale", type=int, default=2, help="integer upscaling of the video")
    export.add_argument("--run", help="run folder (default: the user data folder's)")
    export.add_argument("--data", help="data folder, for the metrics stored with the checkpoint")
    export.add_argument("--out", default="checkpoints/tetris.onnx",
                        help="the ONNX file (the Skiing models write their graphs to this folder)")
    export.add_argument("--tokenizer", help="skiing-dynamics: folder of the tokenizer's graphs (default: shipped)")
    export.add_argument("--closed-loop-steps", type=int, default=5000)
    export.add_argument("--maskgit-steps", type=int, metavar="N",
                        help="skiing-dynamics: MaskGIT passes a frame takes, recorded with the checkpoint "
                             "for the runtime (default 3)")
    export.add_argument("--any-token", action="store_true",
                        help="skiing-dynamics: record no token vocabulary, so that decoding takes each codebook "
                             "group's most likely code on its own, even where together they make a token the "
                             "tokenizer never gives a real frame (default: keep to the tokens of the training "
                             "frames of --data)")
    export.set_defaults(func=cmd_export)

    ev = sub.add_parser("eval", help="measure a checkpoint against the real game")
    ev.add_argument("game", choices=EVALUATED)
    ev.add_argument("--checkpoint", help="checkpoint name, .json or .onnx (default: the shipped one); "
                    "for the Skiing models the folder of their graphs")
    ev.add_argument("--tokenizer", help="skiing: folder of the tokenizer's graphs (default: shipped)")
    ev.add_argument("--data", help="data folder from `collect` (default: the user data folder)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--report", help="write PNG pictures and charts to this folder")
    ev.add_argument("--closed-loop-steps", type=int, default=5000)
    add_decoding_arguments(ev)
    ev.add_argument("--rollouts", type=int, default=6, metavar="R",
                    help="skiing: open-loop rollouts of 300 steps, shared round the held-out episodes (default 6)")
    ev.add_argument("--threads", type=int, default=2)
    ev.set_defaults(func=cmd_eval)

    bench = sub.add_parser("bench", help="measure speed and start-up time")
    bench.add_argument("game", choices=PLAYABLE)
    bench.add_argument("--checkpoint", help="Tetris: checkpoint; Skiing: folder of the dynamics graphs")
    bench.add_argument("--tokenizer", help="Skiing: folder of the tokenizer's graphs (default: shipped)")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--steps", type=int, help="neural steps (default: Tetris 3000, Skiing 10000)")
    bench.add_argument("--threads", type=int, default=1)
    add_decoding_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"neuralplay: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neuralplay: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except ModuleNotFoundError as err:
        print(f"neuralplay: error: {err.name} is not installed: "
              f"`pip install 'neuralplay[train]'` for training commands", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
