# Release notes of Staffeln, built by `tox -e releasenotes` with reno's
# Sphinx extension from releasenotes/notes/.

extensions = [
    'openstackdocstheme',
    'reno.sphinxext',
]

# openstackdocstheme
openstackdocs_repo_name = 'vexxhost/staffeln'
openstackdocs_bug_project = 'staffeln'
openstackdocs_bug_tag = ''
openstackdocs_auto_name = False

project = 'Staffeln Release Notes'
copyright = '2026, Staffeln developers'
version = ''
release = ''

source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
exclude_patterns = []
pygments_style = 'native'
html_theme = 'openstackdocs'
html_static_path = ['_static']
templates_path = ['_templates']
locale_dirs = ['locale/']
