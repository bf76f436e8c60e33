"""Sphinx settings of the course's website: the committed notebooks as pages, never executed again."""

project = "One CNN, two datasets: MNIST vs Fashion-MNIST"
author = "the course's authors"
extensions = ["myst_nb"]
root_doc = "index"
# The outputs are the published runs': a build reads them and runs nothing.
nb_execution_mode = "off"
nb_merge_streams = True  # a fit log reads as one block, as in JupyterLab
myst_heading_anchors = 3
html_theme = "sphinx_book_theme"
html_title = "One CNN, two datasets"
html_theme_options = {
    "use_download_button": True,  # each page offers its .ipynb
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
html_copy_source = True  # the download button's .ipynb
