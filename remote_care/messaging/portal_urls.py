from django.urls import path

from remote_care.messaging import portal_views

app_name = "portal"
urlpatterns = [
    path("", portal_views.home_view, name="home"),
    path("messages/", portal_views.messages_view, name="messages"),
    path("messages/new/", portal_views.thread_new_view, name="thread_new"),
    path("messages/<int:pk>/", portal_views.thread_view, name="thread"),
    path("messages/photos/<int:pk>/", portal_views.photo_view, name="photo"),
    path(
        "activate/<uidb64>/<token>/",
        portal_views.ActivateView.as_view(),
        name="activate",
    ),
]
