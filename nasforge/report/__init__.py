"""Tables and plots of a run, made from its stored trials only."""

from nasforge.report.pareto import pareto_figure, write_pareto_plot

__all__ = ["pareto_figure", "write_pareto_plot"]
