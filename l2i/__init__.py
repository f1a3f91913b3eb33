"""l2i: listen to what an audio classifier heard.

Post-hoc, listenable interpretations of audio classifiers with Listen to Interpret (L2I,
Parekh et al., NeurIPS 2022). The package mirrors the book's chapters:

* :mod:`l2i.audio` -- loading, the log1p spectrogram ``X`` and its inverse, mixing ("Listening to the data")
* :mod:`l2i.datasets` -- synthetic sound scenes, FSDD, ESC-50, your own folders ("Listening to the data")
* :mod:`l2i.downloads` -- the cache directory, checked downloads, archives put in place atomically
* :mod:`l2i.nmf` -- the dictionary ``W`` by NMF, on the GPU when there is one ("Learning the dictionary")
* :mod:`l2i.models` -- a reference classifier and its training loop ("Training the classifier")
* :mod:`l2i.interpreter`, :mod:`l2i.explanation` -- L2I itself ("Training the interpreter",
  "Listening to interpretations")
* :mod:`l2i.metrics` -- fidelity, faithfulness, input fidelity, AI/AD/AG, sparseness, SI-SDR
* :mod:`l2i.book.artifacts` -- the book's trained models, cached under content keys
* :mod:`l2i.plotting`, :mod:`l2i.widgets` -- figures and audio players used across the book
"""

__version__ = "0.1.0"

from .audio import Spectrogram
from .interpreter import Interpreter
from .nmf import NMF, FrameBlocks

__all__ = ["Spectrogram", "NMF", "FrameBlocks", "Interpreter", "__version__"]
