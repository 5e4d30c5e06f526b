"""The documentation site (Sphinx with MyST Markdown): `scripts/docs` builds it into
site/, with warnings as errors, so a broken cross-reference, a page missing from every
table of contents or an unknown option fails the build."""

import pangeo_binder

project = "pangeo-binder"
copyright = "pangeo-binder contributors"
release = version = pangeo_binder.__version__

extensions = ["myst_parser", "sphinx_click"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
# Links to a page's sections by their titles ([text](page.md#a-section-title)), checked.
myst_heading_anchors = 3
nitpicky = True

html_theme = "pydata_sphinx_theme"
html_title = "pangeo-binder"
html_theme_options = {
    "github_url": "https://github.com/pangeo-data/pangeo-binder",
    "navigation_with_keys": False,
}
html_show_sourcelink = False
