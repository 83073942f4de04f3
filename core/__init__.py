"""hizkit: compare classifiers of high-redshift galaxies and brown dwarfs in JWST NIRCam data.

The core package holds the plugin contracts, the registry and the benchmark harness; every
data source, preprocessor, classifier and evaluator is a plugin (see ``hizkit.plugins``).
"""

from hizkit.contracts import (
    Classifier,
    DataSource,
    Diagnostics,
    Evaluation,
    Evaluator,
    PlotView,
    Plugin,
    Preprocessor,
)
from hizkit.dataset import (
    CLASSES,
    NIRCAM_BANDS,
    Z_HIGH,
    Dataset,
    Split,
    ab_mag,
    balanced_class_weights,
    colour_features,
    column_fill,
    detection_index,
    flux_col,
    fluxerr_col,
    impute,
    limit_magnitudes,
    make_split,
    radius_col,
)
from hizkit.errors import HizkitError
from hizkit.hookspecs import hookimpl

__version__ = "0.1.0"

# after __version__: the model module records it
from hizkit.model import TrainedModel, load_model
from hizkit.training import train

__all__ = [
    "CLASSES",
    "NIRCAM_BANDS",
    "Z_HIGH",
    "Classifier",
    "DataSource",
    "Dataset",
    "Diagnostics",
    "Evaluation",
    "Evaluator",
    "HizkitError",
    "PlotView",
    "Plugin",
    "Preprocessor",
    "Split",
    "TrainedModel",
    "__version__",
    "ab_mag",
    "balanced_class_weights",
    "colour_features",
    "column_fill",
    "detection_index",
    "flux_col",
    "fluxerr_col",
    "hookimpl",
    "impute",
    "limit_magnitudes",
    "load_model",
    "make_split",
    "radius_col",
    "train",
]
