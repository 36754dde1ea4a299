"""Sphinx configuration of the course site; built by ``python -m course_utils.authoring.site`` (``make book``)."""
project = "Visual explanations for CNNs"
author = "the course kit's authors"
copyright = "the course kit's authors; HMT data: Kather et al. 2016, CC BY 4.0"

# myst_nb reads Markdown pages and notebooks; the MathJax copy of sphinx-mathjax-offline is served by the site
# itself, so equations render without the internet.
extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks were executed by `make course`
nb_merge_streams = True
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_title = "Visual explanations for CNNs"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme_options = {
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
}
html_last_updated_fmt = None
