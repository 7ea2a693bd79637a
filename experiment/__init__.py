"""The experiment spec below the layers that use it: YAML read within limits (`yamlio`), the typed sections
(`schema`), `--set` overrides, the dataset registry. Whole-spec checks that need the layer vocabulary live one
layer up, in `archs.check`."""
from dlx.experiment.datasets import DATASETS, Dataset
from dlx.experiment.load import (choice_hint, expand_shorthands, key_path, parse_sections, read_spec_file,
                                 spec_to_dict, validation_error)
from dlx.experiment.overrides import apply_overrides, get_path, set_path
from dlx.experiment.schema import DataSpec, ExperimentSpec, ModelSpec, TrainSpec
from dlx.experiment.yamlio import dump_yaml, load_yaml_mapping, parse_yaml, read_text

__all__ = ["DATASETS", "DataSpec", "Dataset", "ExperimentSpec", "ModelSpec", "TrainSpec", "apply_overrides",
           "choice_hint", "dump_yaml", "expand_shorthands", "get_path", "key_path", "load_yaml_mapping",
           "parse_sections", "parse_yaml", "read_spec_file", "read_text", "set_path", "spec_to_dict",
           "validation_error"]
