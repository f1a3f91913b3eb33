"""The range each figure the book checks must fall in (:func:`l2i.book.figures.check`).

Written by ``python benchmarks/book_spread.py --ranges benchmarks/results/book_spread.jsonl``:
each range is that of the recorded runs (the book's recipes from several seeds, on this CPU's
arithmetic and on ATen's generic kernels) widened on each side by the larger of its own width and a
floor for its kind (0.08 for shares, 2 dB for SI-SDR improvements, 8 points of AD, 4 components),
clipped to the figure's natural bounds. ``tests/test_book.py`` checks against the committed results
that every run falls inside and that a broken interpreter falls outside in every chapter that has
one. Shares are in [0, 1], SI-SDR improvements in dB.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    """``low <= value <= high``; ``what`` names the figure in an error."""

    low: float
    high: float
    what: str


EXPECTED: dict[str, Expected] = {
    # 02_learning_the_dictionary
    'nmf_relative_error': Expected(0, 0.154, "chapter 'Learning the dictionary': NMF loss relative to the data's energy"),
    'nmf_test_error_min': Expected(0.117, 0.277, "chapter 'Learning the dictionary': smallest relative reconstruction error of a test clip"),
    'nmf_test_error_max': Expected(0.256, 0.416, "chapter 'Learning the dictionary': largest relative reconstruction error of a test clip"),
    # 03_training_the_classifier
    'scenes_classifier_val_accuracy': Expected(0.92, 1, "the scenes classifier's validation accuracy"),
    'scenes_classifier_test_accuracy': Expected(0.92, 1, "the scenes classifier's test accuracy"),
    # 04_training_the_interpreter
    'scenes_interpreter_val_fidelity': Expected(0.92, 1, "the scenes interpreter's validation fidelity"),
    'scenes_interpreter_test_fidelity': Expected(0.915, 1, "the scenes interpreter's test fidelity"),
    'scenes_l2i_test_fidelity': Expected(0.915, 1, 'the scenes L2I on test clips: fidelity'),
    'scenes_l2i_test_FF': Expected(-0.0727, 0.0961, 'the scenes L2I on test clips: FF'),
    'scenes_l2i_test_Fid_In': Expected(0.645, 1, 'the scenes L2I on test clips: Fid-In'),
    'scenes_l2i_test_AD': Expected(8.54, 42.2, 'the scenes L2I on test clips: AD'),
    'scenes_l2i_test_components': Expected(0, 8.46, 'the scenes L2I on test clips: components'),
    'scenes_l2i_in_test_fidelity': Expected(0.92, 1, 'the scenes L2I + input fidelity on test clips: fidelity'),
    'scenes_l2i_in_test_FF': Expected(-0.0629, 0.11, 'the scenes L2I + input fidelity on test clips: FF'),
    'scenes_l2i_in_test_Fid_In': Expected(0.91, 1, 'the scenes L2I + input fidelity on test clips: Fid-In'),
    'scenes_l2i_in_test_AD': Expected(0, 14.1, 'the scenes L2I + input fidelity on test clips: AD'),
    'scenes_l2i_in_test_components': Expected(1, 9.5, 'the scenes L2I + input fidelity on test clips: components'),
    # 05_listening_to_interpretations
    'scenes_clips_agreeing': Expected(0.92, 1, "chapter 'Listening to interpretations': share of the eight clips where the interpreter agrees"),
    'scenes_clips_components': Expected(0, 8.88, "chapter 'Listening to interpretations': mean number of components kept on the eight clips"),
    'scenes_mix_threshold_10_SI_SDRi': Expected(-2.71, 4.94, "chapter 'Listening to interpretations': 50 mixtures: threshold-10-SI-SDRi"),
    'scenes_mix_threshold_20_SI_SDRi': Expected(-3.1, 2.81, "chapter 'Listening to interpretations': 50 mixtures: threshold-20-SI-SDRi"),
    'scenes_mix_threshold_35_SI_SDRi': Expected(-6.04, 2.29, "chapter 'Listening to interpretations': 50 mixtures: threshold-35-SI-SDRi"),
    'scenes_mix_threshold_50_SI_SDRi': Expected(-8.99, 1.86, "chapter 'Listening to interpretations': 50 mixtures: threshold-50-SI-SDRi"),
    'scenes_mix_log1p_SI_SDRi': Expected(-3.1, 2.81, "chapter 'Listening to interpretations': 50 mixtures: log1p-SI-SDRi"),
    'scenes_mix_log1p_FF': Expected(0.0062, 0.288, "chapter 'Listening to interpretations': 50 mixtures: log1p-FF"),
    'scenes_mix_log1p_Fid_In': Expected(0.56, 1, "chapter 'Listening to interpretations': 50 mixtures: log1p-Fid-In"),
    'scenes_mix_magnitude_SI_SDRi': Expected(-2.15, 3.6, "chapter 'Listening to interpretations': 50 mixtures: magnitude-SI-SDRi"),
    'scenes_mix_magnitude_FF': Expected(0.0387, 0.322, "chapter 'Listening to interpretations': 50 mixtures: magnitude-FF"),
    'scenes_mix_magnitude_Fid_In': Expected(0.48, 1, "chapter 'Listening to interpretations': 50 mixtures: magnitude-Fid-In"),
    'scenes_mix_binary_05_SI_SDRi': Expected(-1.14, 4.36, "chapter 'Listening to interpretations': 50 mixtures: binary-05-SI-SDRi"),
    'scenes_mix_binary_05_FF': Expected(0.162, 0.657, "chapter 'Listening to interpretations': 50 mixtures: binary-05-FF"),
    'scenes_mix_binary_05_Fid_In': Expected(0.54, 1, "chapter 'Listening to interpretations': 50 mixtures: binary-05-Fid-In"),
    'scenes_mix_binary_30_SI_SDRi': Expected(-2.8, 3.09, "chapter 'Listening to interpretations': 50 mixtures: binary-30-SI-SDRi"),
    'scenes_mix_binary_30_FF': Expected(0.0908, 0.513, "chapter 'Listening to interpretations': 50 mixtures: binary-30-FF"),
    'scenes_mix_binary_30_Fid_In': Expected(0.4, 1, "chapter 'Listening to interpretations': 50 mixtures: binary-30-Fid-In"),
    # 06_real_recordings
    'fsdd_classifier_val_accuracy': Expected(0.92, 1, "the FSDD classifier's validation accuracy"),
    'fsdd_classifier_unseen_accuracy': Expected(0.716, 0.908, "the FSDD classifier's accuracy on the unseen speaker"),
    'fsdd_interpreter_test_fidelity': Expected(0.76, 0.978, "the FSDD interpreter's fidelity on the unseen speaker"),
    'fsdd_agree_sure': Expected(0.896, 1, "the FSDD interpreter's agreement where the classifier is 95% sure"),
    'fsdd_agree_unsure': Expected(0.277, 0.75, "the FSDD interpreter's agreement where the classifier is below 80% sure"),
    'fsdd_mix_SI_SDRi': Expected(-9.26, -4.86, "chapter 'Real recordings': SI-SDR improvement on two-speaker mixtures"),
    'fsdd_mix_Fid_In': Expected(0, 0.475, "chapter 'Real recordings': Fid-In on two-speaker mixtures"),
    # 07_the_crying_baby_and_the_dog
    'esc10_classifier_test_accuracy': Expected(0.757, 0.93, "the ESC-10 classifier's test accuracy"),
    'esc10_interpreter_test_fidelity': Expected(0.783, 1, "the ESC-10 interpreter's test fidelity"),
    'esc10_baby_share_binary': Expected(0.406, 0.593, "chapter 'The crying baby and the dog', binary mask: the baby's share"),
    'esc10_baby_SI_SDRi_binary': Expected(-4.2, 1.47, "chapter 'The crying baby and the dog', binary mask: the baby's SI_SDRi"),
    'esc10_baby_share_soft': Expected(0.409, 0.619, "chapter 'The crying baby and the dog', soft mask: the baby's share"),
    'esc10_baby_SI_SDRi_soft': Expected(-9.46, -2.48, "chapter 'The crying baby and the dog', soft mask: the baby's SI_SDRi"),
    'esc10_dog_share_binary': Expected(0.529, 0.714, "chapter 'The crying baby and the dog', binary mask: the dog's share"),
    'esc10_dog_SI_SDRi_binary': Expected(-4.08, 0.925, "chapter 'The crying baby and the dog', binary mask: the dog's SI_SDRi"),
    'esc10_dog_share_soft': Expected(0.41, 0.705, "chapter 'The crying baby and the dog', soft mask: the dog's share"),
    'esc10_dog_SI_SDRi_soft': Expected(-12.8, -2.47, "chapter 'The crying baby and the dog', soft mask: the dog's SI_SDRi"),
    'esc10_says_baby': Expected(0.608, 0.83, "chapter 'The crying baby and the dog': share of mixtures heard as a crying baby"),
    # 08_your_own_classifier
    'w2v_test_accuracy': Expected(0.86, 1, "chapter 'Your own classifier': the wav2vec2's test accuracy"),
    'w2v_interpreter_test_fidelity': Expected(0.66, 1, "chapter 'Your own classifier': the wav2vec2 interpreter's test fidelity"),
    'w2v_energy_following': Expected(0.563, 0.784, "chapter 'Your own classifier': the wav2vec2 interpreter's H against the input's energy"),
    'wavecnn_test_accuracy': Expected(0.845, 1, "chapter 'Your own classifier': the WaveCNN's test accuracy"),
    'wavecnn_interpreter_test_fidelity': Expected(0.635, 0.83, "chapter 'Your own classifier': the WaveCNN interpreter's test fidelity"),
    # 09_evaluating_interpretations
    'eval12_l2i_binary_FF': Expected(0.419, 0.615, "chapter 'Evaluating interpretations', L2I + input fidelity, binary mask: FF"),
    'eval12_l2i_binary_Fid_In': Expected(0.667, 1, "chapter 'Evaluating interpretations', L2I + input fidelity, binary mask: Fid-In"),
    'eval12_l2i_binary_SI_SDRi': Expected(-1.01, 3.71, "chapter 'Evaluating interpretations', L2I + input fidelity, binary mask: SI-SDRi"),
    'eval12_l2i_FF': Expected(-0.0051, 0.186, "chapter 'Evaluating interpretations', L2I: FF"),
    'eval12_l2i_Fid_In': Expected(0.75, 1, "chapter 'Evaluating interpretations', L2I: Fid-In"),
    'eval12_l2i_SI_SDRi': Expected(-4.14, 2.88, "chapter 'Evaluating interpretations', L2I: SI-SDRi"),
    'eval12_slime_FF': Expected(0.571, 0.845, "chapter 'Evaluating interpretations', SLIME: FF"),
    'eval12_slime_Fid_In': Expected(0.833, 1, "chapter 'Evaluating interpretations', SLIME: Fid-In"),
    'eval12_slime_SI_SDRi': Expected(-6.49, 3.74, "chapter 'Evaluating interpretations', SLIME: SI-SDRi"),
    'eval12_oracle_FF': Expected(0.636, 0.871, "chapter 'Evaluating interpretations', oracle: FF"),
    'eval12_oracle_Fid_In': Expected(0.92, 1, "chapter 'Evaluating interpretations', oracle: Fid-In"),
    'eval12_oracle_SI_SDRi': Expected(12.6, 18.4, "chapter 'Evaluating interpretations', oracle: SI-SDRi"),
    'eval12_random_FF': Expected(-0.0812, 0.107, "chapter 'Evaluating interpretations', random components: FF"),
    'eval12_random_Fid_In': Expected(0.0833, 0.833, "chapter 'Evaluating interpretations', random components: Fid-In"),
    'eval12_random_SI_SDRi': Expected(-21.3, -3.79, "chapter 'Evaluating interpretations', random components: SI-SDRi"),
    'eval12_ig_FF': Expected(0.181, 0.411, "chapter 'Evaluating interpretations', Integrated Gradients: FF"),
    'eval12_ig_Fid_In': Expected(0.167, 0.917, "chapter 'Evaluating interpretations', Integrated Gradients: Fid-In"),
    'eval12_ig_SI_SDRi': Expected(-8.76, -2.63, "chapter 'Evaluating interpretations', Integrated Gradients: SI-SDRi"),
}
