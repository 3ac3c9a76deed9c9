# Staffeln's documentation, built by `tox -e docs`.

extensions = [
    'openstackdocstheme',
]

openstackdocs_repo_name = 'vexxhost/staffeln'
openstackdocs_bug_project = 'staffeln'
openstackdocs_bug_tag = 'doc'
openstackdocs_auto_name = False

project = 'Staffeln'
copyright = '2026, Staffeln developers'
source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
exclude_patterns = []
pygments_style = 'native'
html_theme = 'openstackdocs'
