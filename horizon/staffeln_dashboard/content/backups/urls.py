from django.urls import re_path

from staffeln_dashboard.content.backups import views

urlpatterns = [
    re_path(r'^$', views.IndexView.as_view(), name='index'),
]
