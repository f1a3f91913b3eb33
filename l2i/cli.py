"""The command line: the jobs people run outside a notebook.

Book: the API reference ("Command line"); the README shows a session. ``python -m l2i`` or ``l2i``::

    l2i dictionary clips/ -o dictionary.pt                     # learn W from a folder of audio
    l2i layers --classifier mypkg.models:trained               # the layers one can read
    l2i train clips/ --classifier mypkg.models:trained --layers block2 block4 \\
        --dictionary dictionary.pt -o interpreter.pt           # train an interpreter (or --method lmac)
    l2i explain new_clips/ --classifier mypkg.models:trained \\
        --interpreter interpreter.pt -o explained/             # WAV files and explained/index.html

``--classifier`` names a factory, ``package.module:name`` (or ``path/to/file.py:name``), that
returns the trained classifier: an ``nn.Module`` from waveforms ``(batch, samples)`` to logits,
(its ``classes`` and ``sample_rate`` attributes are used where it has them). Under ``torchrun``
the ``dictionary`` and ``train`` commands use every rank (:mod:`l2i.distributed`).

Every check of the API applies; a bad input ends the command with the API's message and exit
status 2, before anything is trained or written, and outputs are never half-written.
"""

from __future__ import annotations

import argparse
import html
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["load_classifier", "main", "parse_layer"]

_ERRORS = (ValueError, OSError, ImportError)


def load_classifier(spec: str):
    """The trained classifier a factory returns, from ``package.module:name`` or ``file.py:name``.

    ``name`` is a callable taking no arguments (or an ``nn.Module`` itself). The current folder is
    searched first, as ``python -m`` does.
    """
    from torch import nn

    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--classifier {spec!r}: give package.module:factory or path/to/file.py:factory")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise FileNotFoundError(f"--classifier {spec!r}: there is no file {path}")
        loader = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[path.stem] = module
        loader.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise ImportError(f"--classifier {spec!r}: cannot import {module_name} ({err}); run from the folder "
                              "that holds it or add that folder to PYTHONPATH") from err
    if not hasattr(module, attr):
        raise ValueError(f"--classifier {spec!r}: {module_name} has no {attr!r}")
    made = getattr(module, attr)
    if not isinstance(made, nn.Module):
        if not callable(made):
            raise ValueError(f"--classifier {spec!r}: {attr} is neither an nn.Module nor a function returning one")
        made = made()
    if not isinstance(made, nn.Module):
        raise ValueError(f"--classifier {spec!r}: {attr}() returned {type(made).__name__}, not a torch.nn.Module")
    return made.eval()


def parse_layer(text: str):
    """A :class:`l2i.reading.Layer` from ``name``, ``name:time=N``, ``name:pooled`` or
    ``name:select=K`` (token grids need the Python API)."""
    from .reading import Layer

    name, *options = text.split(":")
    kwargs = {}
    for option in options:
        key, _, value = option.partition("=")
        if key == "pooled" and not value:
            kwargs["pooled"] = True
        elif key in ("time", "select") and re.fullmatch(r"-?\d+", value):
            kwargs[key] = int(value)
        elif key == "select" and value:
            kwargs[key] = value
        else:
            raise ValueError(f"layer {text!r}: options are name:time=N, name:pooled and name:select=K; got {option!r}")
    return Layer(name, **kwargs)


# ---------------------------------------------------------------------------------------- commands
def _dictionary(args) -> None:
    from torch.utils.data import Subset

    from . import distributed
    from .audio import Spectrogram
    from .datasets import AudioFiles
    from .nmf import NMF, FrameBlocks

    _check_output(args.output, args.force)
    clips = AudioFiles(args.folder, args.sample_rate, args.duration)
    spectrogram = Spectrogram(clips.sample_rate, args.n_fft, args.hop_length)
    nmf = NMF(args.components, beta=args.beta, sparsity=args.sparsity, n_iter=args.iterations, seed=args.seed,
              device=args.device, solver=args.solver)
    distributed.setup()
    part = distributed.shard(len(clips))  # the whole in a single process
    _say(f"{len(clips)} clips at {clips.sample_rate} Hz"
         + (f", {len(part)} on each of {distributed.world_size()} ranks" if distributed.active() else ""))
    blocks = FrameBlocks(Subset(clips, part), spectrogram, progress=True)
    nmf.fit(blocks, spectrogram=spectrogram, sharded=True)
    nmf.save(args.output)
    _say(f"dictionary of {nmf.n_components} patterns ({nmf.W.shape[0]} bins), loss {nmf.loss_history[0]:.4g} -> "
         f"{nmf.loss_history[-1]:.4g}: {args.output}")


def _layers(args) -> None:
    from .reading import describe_layers

    classifier = load_classifier(args.classifier)
    rate = args.sample_rate or getattr(classifier, "sample_rate", None)
    if rate is None:
        raise ValueError("the classifier has no sample_rate attribute: give --sample-rate")
    rows = describe_layers(classifier, int(round(args.seconds * int(rate))))
    width = max(len(r["name"]) for r in rows + [{"name": "layer"}])
    print(f"{'layer':<{width}}  {'output (dry run)':<20}  how l2i reads it")
    for r in rows:
        shape = "x".join(map(str, r["shape"])) if r["shape"] else "-"
        print(f"{r['name']:<{width}}  {shape:<20}  {r['layout'] or 'cannot be read: ' + r['error'].splitlines()[0]}")


def _train(args) -> None:
    from . import distributed
    from .audio import Spectrogram
    from .datasets import AudioFiles
    from .interpreter import Interpreter
    from .lmac import LMAC
    from .nmf import NMF

    _check_output(args.output, args.force)
    if args.method == "l2i" and args.dictionary is None:
        raise ValueError("--method l2i needs --dictionary (learn one with `l2i dictionary`)")
    distributed.setup()
    classifier = load_classifier(args.classifier).to(_device(args.device))
    dictionary = NMF.load(args.dictionary) if args.dictionary else None
    spectrogram = dictionary.spectrogram if dictionary is not None else None
    if spectrogram is None:
        rate = args.sample_rate or getattr(classifier, "sample_rate", None)
        if rate is None:
            raise ValueError("give --dictionary, --sample-rate, or a classifier with a sample_rate attribute")
        spectrogram = Spectrogram(int(rate), args.n_fft, args.hop_length)
    train = AudioFiles(args.folder, spectrogram.sample_rate, args.duration)
    if args.val is not None:
        val = AudioFiles(args.val, spectrogram.sample_rate, args.duration)
    else:
        if not 0 < args.val_share < 1:
            raise ValueError(f"--val-share is the share of clips kept for validation, between 0 and 1; got {args.val_share}")
        train, val = _split(train, args.val_share, args.seed)
    layers = [parse_layer(t) for t in args.layers]
    classes = tuple(args.classes) if args.classes else getattr(classifier, "classes", None)
    _say(f"{len(train)} training and {len(val)} validation clips at {spectrogram.sample_rate} Hz"
         + (f", on {distributed.world_size()} ranks" if distributed.active() else ""))
    common = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
    if args.lr is not None:
        common["lr"] = args.lr
    if args.method == "l2i":
        model = Interpreter(classifier, layers, dictionary, classes=classes)
        history = model.fit(train, val, lam_in=args.lam_in, lam_out=args.lam_out, **common)
        result = f"validation fidelity {history.best_val_fidelity:.3f}"
    else:
        model = LMAC(classifier, layers, spectrogram, classes=classes)
        history = model.fit(train, val, **common)
        result = f"validation input fidelity {max(history.val_input_fidelity):.3f}"
    model.save(args.output)
    _say(f"{model.name}, best epoch {history.best_epoch + 1} of {args.epochs}, {result}: {args.output}")


def _explain(args) -> None:
    import torch
    from tqdm.auto import tqdm

    from .datasets import AudioFiles
    from .persistence import read_format

    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise FileExistsError(f"{out} exists and is not an empty folder: give another -o, or --force to replace what is there")
    classifier = load_classifier(args.classifier).to(_device(args.device))
    kind = read_format(args.interpreter)
    if kind == "l2i.interpreter":
        from .interpreter import Interpreter as Method
    elif kind == "l2i.lmac":
        from .lmac import LMAC as Method
    else:
        raise ValueError(f"{args.interpreter} holds an l2i {kind!r}, not an interpreter: train one with `l2i train`")
    model = Method.load(args.interpreter, classifier, map_location=_device(args.device))
    clips = AudioFiles(args.folder, model.spectrogram.sample_rate, args.duration)
    settings = {"threshold": args.threshold, "binarize": args.binarize}
    if args.top_k is not None:
        settings["top_k"] = args.top_k
    if args.target is not None:
        settings["target"] = _target(args.target, model.classes)
    names = _item_names(clips)
    rows = []
    with torch.no_grad(), tqdm(total=len(clips), desc="explain") as bar:
        for batch in _equal_length_batches(clips, args.batch_size):
            x = torch.stack([clips[i].waveform for i in batch])
            explanation = model.explain(x, **settings)
            for j, i in enumerate(batch):
                item = explanation[j]
                files = item.save(out / names[i], n_components=args.components, overwrite=args.force)
                rows.append((clips.files[i], item.summary(0), [f.relative_to(out) for f in files]))
            bar.update(len(batch))
    page = _page(rows, model.name, clips.root)
    from .persistence import atomic_path

    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    _say(f"{len(rows)} clips explained by {model.name}: open {out / 'index.html'}")


# ---------------------------------------------------------------------------------------- helpers
def _say(text: str) -> None:
    from . import distributed

    if distributed.is_main():
        print(text, file=sys.stderr, flush=True)


def _device(name: str | None):
    import torch

    from . import distributed
    from .training import default_device

    if name is not None:
        return torch.device(name)
    device = default_device()
    if device.type == "cuda" and distributed.active():  # torchrun: LOCAL_RANK's GPU (set by setup)
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _check_output(path: str, force: bool) -> None:
    """Refuse an existing file before hours of work, and a folder that cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"-o {path} is a folder: give the file to write, e.g. {path / 'model.pt'}")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists: give another -o, or --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"cannot write {path}: {path.parent} is not writable; give another -o")


def _split(clips, share: float, seed: int):
    import torch
    from torch.utils.data import Subset

    if len(clips) < 2:
        raise ValueError(f"{clips.root} has {len(clips)} clip: training needs some to validate on too (or --val)")
    order = torch.randperm(len(clips), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(len(clips) - 1, max(1, round(share * len(clips))))
    return Subset(clips, sorted(order[n_val:])), Subset(clips, sorted(order[:n_val]))


def _target(text: str, classes):
    if re.fullmatch(r"\d+", text):
        return int(text)
    if classes and text in classes:
        return classes.index(text)
    known = f"one of {', '.join(classes)}" if classes else "a class number (the interpreter has no class names)"
    raise ValueError(f"--target {text!r} is not a class: give {known}")


def _item_names(clips) -> list[str]:
    """One folder name per clip, from its path under the root (unique, safe on every filesystem)."""
    names = []
    for f in clips.files:
        stem = str(f.relative_to(clips.root).with_suffix(""))
        names.append(re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "clip")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[i] = f"{name}_{seen[name]}"
    return names


def _equal_length_batches(clips, batch_size: int):
    """Indices in order, in batches of clips of one length (so nothing is padded or cut)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    batch, length = [], None
    for i in range(len(clips)):
        n = clips[i].waveform.shape[-1]
        if batch and (n != length or len(batch) == batch_size):
            yield batch
            batch = []
        batch.append(i)
        length = n
    if batch:
        yield batch


def _page(rows, method: str, root: Path) -> str:
    """index.html: one row per clip, its summary and players of the WAV files beside it."""
    body = []
    for path, summary, files in rows:
        players = "".join(
            f'<figure><figcaption>{html.escape(f.stem.split("_", 1)[1].replace("_", " "))}</figcaption>'
            f'<audio controls preload="none" src="{html.escape(f.as_posix())}"></audio></figure>'
            for f in files
        )
        body.append(f"<section><h2>{html.escape(str(path.relative_to(root)))}</h2>"
                    f"<p>{html.escape(summary)}</p><div class=players>{players}</div></section>")
    style = ("body{font:14px sans-serif;margin:2em;max-width:70em}h2{font-size:15px;margin:1.2em 0 .2em}"
             "p{margin:.2em 0}.players{display:flex;flex-wrap:wrap}figure{margin:4px 12px 4px 0}"
             "figcaption{font-size:12px}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>l2i: {html.escape(method)} on "
            f"{html.escape(root.name)}</title><style>{style}</style></head><body>"
            f"<h1>{html.escape(method)}: what the classifier relied on, {len(rows)} clips of {html.escape(str(root))}</h1>"
            "<p>Loudness is as computed: clips are not normalised one by one.</p>" + "".join(body) + "</body></html>\n")


# ---------------------------------------------------------------------------------------- parser
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="l2i", description="Listen to Interpret: listenable interpretations of audio "
                                  "classifiers. Each command has --help.")
    from . import __version__

    top.add_argument("--version", action="version", version=f"l2i {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="command")

    def spectrogram_options(p):
        p.add_argument("--sample-rate", type=int, help="resample clips to this rate (default: the first file's, or the "
                       "classifier's sample_rate)")
        p.add_argument("--n-fft", type=int, default=1024, help="STFT size (default 1024)")
        p.add_argument("--hop-length", type=int, default=None, help="STFT hop (default n_fft / 4)")

    def classifier_option(p):
        p.add_argument("--classifier", required=True, help="package.module:factory (or file.py:factory) returning the "
                       "trained classifier")

    def common(p, folder_help, output_help, classifier=True):
        p.add_argument("folder", help=folder_help)
        if classifier:
            classifier_option(p)
        p.add_argument("-o", "--output", required=True, help=output_help)
        p.add_argument("--force", action="store_true", help="replace an existing output")
        p.add_argument("--duration", type=float, help="pad or cut every clip to this many seconds")
        p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: the GPU when there is one)")

    d = commands.add_parser("dictionary", help="learn an NMF dictionary from a folder of audio",
                            description="Learn the dictionary W by NMF from every audio file under FOLDER (log1p "
                            "magnitude spectrograms). Under torchrun each rank reads its share of the files.")
    common(d, "folder of .wav/.flac/.ogg files (sub-folders searched too)", "the dictionary file to write (e.g. "
           "dictionary.pt)", classifier=False)
    spectrogram_options(d)
    d.add_argument("--components", type=int, default=64, help="K, patterns in the dictionary (default 64)")
    d.add_argument("--iterations", type=int, default=200, help="multiplicative updates (default 200)")
    d.add_argument("--beta", default="frobenius", help="frobenius, kullback-leibler, itakura-saito or a number")
    d.add_argument("--sparsity", type=float, default=0.0, help="L1 weight on the activations (default 0)")
    d.add_argument("--solver", choices=("mu", "hals"), default="mu", help="multiplicative updates (default) or "
                   "HALS (Frobenius only: a given loss in fewer iterations)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(run=_dictionary)

    la = commands.add_parser("layers", help="list a classifier's layers and how l2i would read them",
                             description="Dry-run the classifier and list every sub-module with its output shape "
                             "and layout: the names to give `l2i train --layers`.")
    classifier_option(la)
    la.add_argument("--sample-rate", type=int, help="the classifier's rate (default: its sample_rate attribute)")
    la.add_argument("--seconds", type=float, default=1.0, help="length of the dry runs' clips (default 1)")
    la.set_defaults(run=_layers)

    t = commands.add_parser("train", help="train an interpreter (L2I) or a mask decoder (L-MAC) for a classifier",
                            description="Train an interpreter of CLASSIFIER on the clips under FOLDER: it mimics the "
                            "classifier's decisions, so the clips need no labels. Under torchrun every rank trains "
                            "one model together (DistributedDataParallel).")
    common(t, "training clips (.wav/.flac/.ogg, sub-folders searched too)", "the interpreter file to write (e.g. "
           "interpreter.pt)")
    t.add_argument("--layers", nargs="+", required=True, metavar="LAYER", help="hidden layers to read (see `l2i "
                   "layers`); name, name:time=N, name:pooled or name:select=K")
    t.add_argument("--dictionary", help="the NMF dictionary (`l2i dictionary`); needed by L2I")
    t.add_argument("--method", choices=("l2i", "lmac"), default="l2i", help="L2I (default) or L-MAC")
    t.add_argument("--val", help="a folder of validation clips (default: --val-share of FOLDER)")
    t.add_argument("--val-share", type=float, default=0.1, help="share of FOLDER kept for validation (default 0.1)")
    t.add_argument("--classes", nargs="+", help="class names, in the order of the logits (default: the classifier's "
                   "classes attribute)")
    t.add_argument("--epochs", type=int, default=35, help="(default 35)")
    t.add_argument("--batch-size", type=int, default=32, help="per rank under torchrun (default 32)")
    t.add_argument("--lr", type=float, help="learning rate (default: the method's)")
    t.add_argument("--lam-in", type=float, default=0.0, help="L2I's input-fidelity term (default 0, the original)")
    t.add_argument("--lam-out", type=float, default=0.0, help="L2I's output term (default 0)")
    t.add_argument("--seed", type=int, default=0)
    spectrogram_options(t)
    t.set_defaults(run=_train)

    e = commands.add_parser("explain", help="explain a folder of clips into WAV files and an HTML page of players",
                            description="Explain the classifier's decision on every clip under FOLDER: per clip a "
                            "folder of WAV files (input, interpretation, residual, its most relevant components) "
                            "and one index.html that plays them.")
    common(e, "clips to explain (.wav/.flac/.ogg, sub-folders searched too)", "the folder to write (WAV files and "
           "index.html)")
    e.add_argument("--interpreter", required=True, help="the file `l2i train` wrote")
    e.add_argument("--target", help="class to explain, a number or a name (default: each clip's decision)")
    e.add_argument("--threshold", type=float, default=0.2, help="relevance above which components are kept (0.2)")
    e.add_argument("--top-k", type=int, help="keep at most this many components")
    e.add_argument("--binarize", type=float, help="a binary mask: keep the bins the kept components explain at "
                   "least this share of")
    e.add_argument("--components", type=int, default=3, help="most relevant components written per clip (default 3)")
    e.add_argument("--batch-size", type=int, default=16)
    e.set_defaults(run=_explain)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input exits with status 2 and the API's message."""
    p = parser()
    args = p.parse_args(argv)
    try:
        args.run(args)
    except _ERRORS as err:
        p.exit(2, f"l2i {args.command}: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
