"""Design-space analysis: error EDFs, comparison of spaces, refinement of a space from its best models."""

from nasforge.design.compare import SpaceResult, compare_spaces, sample_in_flops, write_comparison
from nasforge.design.edf import complexity_weights, edf, edf_area
from nasforge.design.refine import Refinement, refine

__all__ = ["Refinement", "SpaceResult", "compare_spaces", "complexity_weights", "edf", "edf_area", "refine",
           "sample_in_flops", "write_comparison"]
