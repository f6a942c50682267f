"""Order of the gallery examples (sphinx-gallery ``within_subsection_order``)."""

ORDER = [
    "plot_quickstart.py",
    "plot_choose_alpha.py",
    "plot_compare_conditions.py",
    "plot_read_tiff.py",
    "plot_pipeline_classifier.py",
    "plot_dask_cluster.py",
]


class ExampleOrder:
    """Sort key: the examples in ``ORDER`` first, in that order, then the rest by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in ORDER:
            return (0, ORDER.index(filename), filename)
        return (1, 0, filename)

    def __repr__(self):
        return f"<{type(self).__name__}>"
