# API reference of staffeln-api, built by `tox -e api-ref` with os-api-ref.

extensions = [
    'os_api_ref',
    'openstackdocstheme',
]

html_theme = 'openstackdocs'
html_theme_options = {
    'sidebar_mode': 'toc',
}

# openstackdocstheme
openstackdocs_repo_name = 'vexxhost/staffeln'
openstackdocs_bug_project = 'staffeln'
openstackdocs_bug_tag = 'api-ref'
openstackdocs_auto_name = False

project = 'Staffeln API Reference'
copyright = '2026, Staffeln developers'
source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
pygments_style = 'native'
