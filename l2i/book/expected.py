"""The range each figure the book checks must fall in (:func:`l2i.book.figures.check`).

Each range holds every run of ``benchmarks/book_spread.py`` (the book's recipes from several seeds,
on this CPU's arithmetic and on ATen's generic kernels) widened by a margin, and excludes what a
broken interpreter gives; ``tests/test_book.py`` checks both against the committed results
(``benchmarks/results/book_spread.jsonl``). Shares are in [0, 1], SI-SDR improvements in dB.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    """``low <= value <= high``; ``what`` names the figure in an error."""

    low: float
    high: float
    what: str


def _metrics(prefix: str, where: str, ranges: dict) -> dict:
    return {f"{prefix}_{key}": Expected(low, high, f"{where}: {key.replace('_', '-')}") for key, (low, high) in ranges.items()}


EXPECTED: dict[str, Expected] = {
    # Chapter "Learning the dictionary"
    "nmf_relative_error": Expected(0.0, 1.0, "chapter 'Learning the dictionary': NMF loss relative to the data's energy"),
    "nmf_test_error_min": Expected(0.0, 1.0, "chapter 'Learning the dictionary': smallest relative reconstruction error of a test clip"),
    "nmf_test_error_max": Expected(0.0, 1.0, "chapter 'Learning the dictionary': largest relative reconstruction error of a test clip"),
    # Chapter "Training the classifier"
    "scenes_classifier_val_accuracy": Expected(0.0, 1.0, "the scenes classifier's validation accuracy"),
    "scenes_classifier_test_accuracy": Expected(0.0, 1.0, "the scenes classifier's test accuracy"),
    # Chapter "Training the interpreter"
    "scenes_interpreter_val_fidelity": Expected(0.0, 1.0, "the scenes interpreter's validation fidelity"),
    "scenes_interpreter_test_fidelity": Expected(0.0, 1.0, "the scenes interpreter's test fidelity"),
    **_metrics("scenes_l2i_test", "the scenes L2I on test clips", {
        "fidelity": (0.0, 1.0), "FF": (-1.0, 1.0), "Fid_In": (0.0, 1.0), "AD": (0.0, 100.0), "components": (0.0, 32.0)}),
    **_metrics("scenes_l2i_in_test", "the scenes L2I + input fidelity on test clips", {
        "fidelity": (0.0, 1.0), "FF": (-1.0, 1.0), "Fid_In": (0.0, 1.0), "AD": (0.0, 100.0), "components": (0.0, 32.0)}),
    # Chapter "Listening to interpretations"
    "scenes_clips_agreeing": Expected(0.0, 1.0, "chapter 'Listening to interpretations': share of the eight clips where the interpreter agrees"),
    "scenes_clips_components": Expected(0.0, 32.0, "chapter 'Listening to interpretations': mean number of components kept on the eight clips"),
    **_metrics("scenes_mix", "chapter 'Listening to interpretations': 50 mixtures", {
        "threshold_10_SI_SDRi": (-40.0, 40.0), "threshold_20_SI_SDRi": (-40.0, 40.0),
        "threshold_35_SI_SDRi": (-40.0, 40.0), "threshold_50_SI_SDRi": (-40.0, 40.0),
        "log1p_SI_SDRi": (-40.0, 40.0), "log1p_FF": (-1.0, 1.0), "log1p_Fid_In": (0.0, 1.0),
        "magnitude_SI_SDRi": (-40.0, 40.0), "magnitude_FF": (-1.0, 1.0), "magnitude_Fid_In": (0.0, 1.0),
        "binary_05_SI_SDRi": (-40.0, 40.0), "binary_05_FF": (-1.0, 1.0), "binary_05_Fid_In": (0.0, 1.0),
        "binary_30_SI_SDRi": (-40.0, 40.0), "binary_30_FF": (-1.0, 1.0), "binary_30_Fid_In": (0.0, 1.0)}),
    # Chapter "Real recordings"
    "fsdd_classifier_val_accuracy": Expected(0.0, 1.0, "the FSDD classifier's validation accuracy"),
    "fsdd_classifier_unseen_accuracy": Expected(0.0, 1.0, "the FSDD classifier's accuracy on the unseen speaker"),
    "fsdd_interpreter_test_fidelity": Expected(0.0, 1.0, "the FSDD interpreter's fidelity on the unseen speaker"),
    "fsdd_agree_sure": Expected(0.0, 1.0, "the FSDD interpreter's agreement where the classifier is 95% sure"),
    "fsdd_agree_unsure": Expected(0.0, 1.0, "the FSDD interpreter's agreement where the classifier is below 80% sure"),
    "fsdd_mix_SI_SDRi": Expected(-40.0, 40.0, "chapter 'Real recordings': SI-SDR improvement on two-speaker mixtures"),
    "fsdd_mix_Fid_In": Expected(0.0, 1.0, "chapter 'Real recordings': Fid-In on two-speaker mixtures"),
    # Chapter "The crying baby and the dog"
    "esc10_classifier_test_accuracy": Expected(0.0, 1.0, "the ESC-10 classifier's test accuracy"),
    "esc10_interpreter_test_fidelity": Expected(0.0, 1.0, "the ESC-10 interpreter's test fidelity"),
    **{f"esc10_{c}_{m}_{mask}": Expected(low, high, f"chapter 'The crying baby and the dog', {mask} mask: the {c}'s {m}")
       for c in ("baby", "dog") for mask in ("binary", "soft")
       for m, (low, high) in (("share", (0.0, 1.0)), ("SI_SDRi", (-40.0, 40.0)))},
    "esc10_says_baby": Expected(0.0, 1.0, "chapter 'The crying baby and the dog': share of mixtures heard as a crying baby"),
    # Chapter "Your own classifier"
    "w2v_test_accuracy": Expected(0.0, 1.0, "chapter 'Your own classifier': the wav2vec2's test accuracy"),
    "w2v_interpreter_test_fidelity": Expected(0.0, 1.0, "chapter 'Your own classifier': the wav2vec2 interpreter's test fidelity"),
    "w2v_energy_following": Expected(-1.0, 1.0, "chapter 'Your own classifier': the wav2vec2 interpreter's H against the input's energy"),
    "wavecnn_test_accuracy": Expected(0.0, 1.0, "chapter 'Your own classifier': the WaveCNN's test accuracy"),
    "wavecnn_interpreter_test_fidelity": Expected(0.0, 1.0, "chapter 'Your own classifier': the WaveCNN interpreter's test fidelity"),
    # Chapter "Evaluating interpretations" (twelve mixtures)
    **{f"eval12_{key}_{metric}": Expected(low, high, f"chapter 'Evaluating interpretations', {name}: {metric.replace('_', '-')}")
       for key, name in (("l2i_binary", "L2I + input fidelity, binary mask"), ("l2i", "L2I"), ("slime", "SLIME"),
                         ("oracle", "oracle"), ("random", "random components"), ("ig", "Integrated Gradients"))
       for metric, (low, high) in (("FF", (-1.0, 1.0)), ("Fid_In", (0.0, 1.0)), ("SI_SDRi", (-40.0, 40.0)))},
}
