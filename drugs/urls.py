from django.urls import path

from drugs import views

app_name = "drugs"
urlpatterns = [
    path("", views.home_view, name="home"),
    path("datasets/new/", views.dataset_create_view, name="dataset_create"),
    path("datasets/<int:pk>/", views.dataset_detail_view, name="dataset_detail"),
    path("runs/new/", views.run_create_view, name="run_create"),
    path("runs/<int:pk>/", views.run_detail_view, name="run_detail"),
    path("runs/<int:pk>/live/", views.run_live_view, name="run_live"),
    path("runs/<int:pk>/molecules/", views.run_molecules_view, name="run_molecules"),
    path("runs/<int:pk>/export/", views.run_export_view, name="run_export"),
    path("runs/<int:pk>/generate/", views.run_sample_view, name="run_sample"),
    path("molecules/<int:pk>/", views.molecule_detail_view, name="molecule_detail"),
    path("molecules/<int:pk>/shortlist/", views.shortlist_save_view, name="shortlist_save"),
    path(
        "molecules/<int:pk>/shortlist/remove/",
        views.shortlist_remove_view,
        name="shortlist_remove",
    ),
    path("shortlist/", views.shortlist_view, name="shortlist"),
    path("predictors/", views.predictors_view, name="predictors"),
    path("structure.svg", views.structure_view, name="structure"),
]
