# Adds Staffeln's Backups panel to the Project dashboard, in the Volumes
# group, beside Horizon's own Volume Backups panel.
PANEL = 'staffeln_backups'
PANEL_DASHBOARD = 'project'
PANEL_GROUP = 'volumes'
ADD_PANEL = 'staffeln_dashboard.content.backups.panel.Backups'
ADD_INSTALLED_APPS = ['staffeln_dashboard']
