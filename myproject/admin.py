"""Admin writes go through the model's service, so they publish the same events as the API."""

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from myproject.services import ModelService


class ServiceAdmin(admin.ModelAdmin):
    service: ModelService

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        self.service.save(obj, created=not change)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        self.service.delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.service.bulk_delete(queryset)
